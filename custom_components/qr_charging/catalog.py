"""Plans and bays: what is sold and where. Plain Python, no Home Assistant imports."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import tzinfo
from decimal import Decimal
from typing import Any

from .catalog_errors import ID_PATTERN, CatalogError
from .metering import (
    DEFAULT_FULL_BELOW_W,
    DEFAULT_FULL_GRACE_MIN,
    DEFAULT_FULL_SETTLE_MIN,
    DEFAULT_MAX_POWER_W,
    MAX_ENERGY_AMOUNT_PAISE,
    MAX_PRICE_PER_KWH_PAISE,
    Metering,
    energy_wh_for,
    metering_problem,
)
from .relays import MqttRelay, Relay, checked_relay, relay_from_data, relay_to_data
from .sites import DEFAULT_SITE_ID, PriceBand, band_at, banded_paise, format_spans, parse_bands
from .totp import DEFAULT_VALIDITY_S, MAX_VALIDITY_S, MIN_VALIDITY_S, new_secret

# A bay's rated power when the form is left as it is: a 16 A socket's 3.3 kW charger.
DEFAULT_RATED_W = 3300
MIN_RATED_W = 100
MAX_RATED_W = 22_000
# Razorpay refuses payment links under one rupee.
MIN_PRICE_PAISE = 100
MAX_PLAN_MINUTES = 24 * 60
CURRENCY = "INR"
# How long a bay is held for a customer who tapped Pay: their payment link's lifetime. Razorpay
# refuses a link that expires sooner than 15 minutes after it is made.
MIN_HOLD_MINUTES = 15
MAX_HOLD_MINUTES = 60
DEFAULT_HOLD_MINUTES = 20

# A plan form's field (and stored key) of its price bands' text.
CONF_BANDS = "bands"

PLAN_FIXED = "fixed"
PLAN_RATE = "rate"
PLAN_KWH = "kwh"  # energy (issue #24): the customer chooses the amount, which buys Wh


@dataclass(frozen=True, slots=True)
class Quote:
    """What one purchase of a plan costs and buys; always computed here, never taken from a form."""

    minutes: int
    price_paise: int
    # Energy bought (a per-kWh plan; 0 for time). Its ``minutes`` are then the time cap.
    energy_wh: int = 0

    @property
    def seconds(self) -> int:
        """Powered time bought (a per-kWh plan's time cap)."""
        return self.minutes * 60


@dataclass(frozen=True, slots=True)
class Plan:
    """A price for a length of time (fixed, or a rate per minute), or for energy (per kWh).

    A fixed plan uses ``minutes`` and ``price_paise``; a rate plan ``rate_paise`` (per minute)
    between ``min_minutes`` and ``max_minutes``, the customer choosing the minutes; a per-kWh
    plan ``price_per_kwh_paise``, the customer choosing an amount from ``min_paise`` to
    ``max_paise``, with ``minutes`` as the session's time cap.
    """

    code: str
    name: str
    minutes: int = 0
    price_paise: int = 0
    kind: str = PLAN_FIXED
    rate_paise: int = 0
    min_minutes: int = 0
    max_minutes: int = 0
    price_per_kwh_paise: int = 0
    min_paise: int = 0
    max_paise: int = 0
    # Time-of-day prices (issue #25): a share of the base price between two wall-clock times.
    bands: tuple[PriceBand, ...] = ()
    # The band's share (%) of ``rate_paise`` a rate plan is sold at: kept, not rounded into
    # the rate, so a purchase's total is rounded once (``quote``, ``seconds_for``).
    rate_percent: int = 100

    def in_band(self, band: PriceBand | None) -> Plan:
        """The plan as sold in a band: every price scaled (``sites.banded_paise``).

        A rate plan keeps its base rate and the band's percent: its total is rounded once.
        """
        if band is None:
            return self
        return replace(
            self,
            price_paise=banded_paise(self.price_paise, band),
            rate_percent=band.percent,
            price_per_kwh_paise=banded_paise(self.price_per_kwh_paise, band),
        )

    @property
    def minute_paise(self) -> int:
        """A rate plan's price per minute as shown (rounded: a total is rounded only once)."""
        return self.rate_total(1)

    def rate_total(self, minutes: int) -> int:
        """Paise of ``minutes`` of a rate plan: base rate x minutes x percent, rounded once."""
        return (self.rate_paise * minutes * self.rate_percent + 50) // 100

    @property
    def banded(self) -> tuple[tuple[PriceBand, Plan], ...]:
        """Each band (every day's, so today's) with the plan as sold in it."""
        return tuple((band, self.in_band(band)) for band in self.bands)

    def band_at(self, tz: tzinfo, now: float) -> PriceBand | None:
        """The band a sale at ``now`` (the site's wall clock) falls in, if any."""
        return band_at(self.bands, tz, now)

    @property
    def seconds(self) -> int:
        """Powered time a fixed plan buys (a per-kWh plan's time cap)."""
        return self.minutes * 60

    @property
    def is_energy(self) -> bool:
        """Whether it sells energy (per kWh): only a metered bay may offer it."""
        return self.kind == PLAN_KWH

    def quote_energy(self, paise: int) -> Quote:
        """What an amount buys of a per-kWh plan: whole paise within its bounds."""
        if not self.is_energy or not self.min_paise <= paise <= self.max_paise:
            raise CatalogError("amount", "invalid_amount")
        return Quote(self.minutes, paise, energy_wh_for(paise, self.price_per_kwh_paise))

    @property
    def is_rate(self) -> bool:
        """Whether the customer chooses the minutes."""
        return self.kind == PLAN_RATE

    def quote(self, minutes: int | None = None) -> Quote:
        """The price of a purchase; a rate plan needs whole minutes within its bounds."""
        if self.is_energy:
            raise CatalogError("amount", "invalid_amount")
        if not self.is_rate:
            if minutes not in (None, self.minutes):
                raise CatalogError("minutes", "invalid_minutes")
            return Quote(self.minutes, self.price_paise)
        if minutes is None or not self.min_minutes <= minutes <= self.max_minutes:
            raise CatalogError("minutes", "invalid_minutes")
        return Quote(minutes, self.rate_total(minutes))

    def seconds_for(self, paise: int) -> int | None:
        """Seconds a rate plan gives for any amount (a static UPI QR), or None outside bounds.

        Any amount from the minimum's price to the maximum's buys time pro rata at the exact
        rate (to the second, down), but at least the most whole minutes m whose price it covers
        (``rate_total(m) <= paise``, i.e. ``per * m + 50 < 100 * (paise + 1)``), at most the max.
        """
        if not self.is_rate or self.rate_paise <= 0 or self.rate_percent <= 0:
            return None
        if not self.rate_total(self.min_minutes) <= paise <= self.rate_total(self.max_minutes):
            return None
        covered = (paise * 100 + 49) // (per := self.rate_paise * self.rate_percent)
        return min(max(paise * 6000 // per, covered * 60), self.max_minutes * 60)


DEFAULT_OWNER_MINUTES = 30
DEFAULT_MAX_MINUTES = 240


@dataclass(frozen=True, slots=True)
class Bay:
    """A socket a customer pays for, and how its power is switched."""

    bay_id: str
    name: str
    plan_codes: tuple[str, ...]
    relay: Relay
    default_minutes: int = DEFAULT_OWNER_MINUTES
    max_minutes: int = DEFAULT_MAX_MINUTES
    # The bay's static UPI QR code at Razorpay (any amount buys time at its rate plan).
    qr_code_id: str | None = None
    qr_image_url: str | None = None
    # The tag (a ULID) in that code's notes (Razorpay copies them into its payments): tells a
    # ``payment.captured`` of this code from one of the bay's earlier, closed codes.
    qr_code_tag: str | None = None
    # A dynamic QR code on a display at the bay (``totp``): its password's validity and shared
    # secret, and the display page's token. Both secrets are generated, never typed or shown.
    dynamic_qr: bool = False
    qr_validity_s: int = DEFAULT_VALIDITY_S
    qr_secret: str | None = field(default=None, repr=False)
    display_token: str | None = field(default=None, repr=False)
    hold_minutes: int = DEFAULT_HOLD_MINUTES
    # A metered bay (issue #24): vehicle full is power below ``full_below_w`` for
    # ``full_settle_min`` minutes after ``full_grace_min`` from the start; ``prorata``: a
    # session sold by time that ends early (vehicle full) gets its unused minutes back.
    full_below_w: int = DEFAULT_FULL_BELOW_W
    full_settle_min: int = DEFAULT_FULL_SETTLE_MIN
    full_grace_min: int = DEFAULT_FULL_GRACE_MIN
    prorata: bool = True
    # A switch bay's meter: its plug's power (W), energy (kWh or Wh) sensors, rated power (W).
    power_sensor: str | None = None
    energy_sensor: str | None = None
    max_power_w: int = DEFAULT_MAX_POWER_W
    # Its site (issue #25), and the power it draws when on (W): what a site's load cap counts.
    site_id: str = DEFAULT_SITE_ID
    rated_w: int = DEFAULT_RATED_W

    @property
    def full_rule(self) -> dict[str, int]:
        """The vehicle-full rule as the agent's ``on`` carries it (``full``)."""
        return {
            "below_w": self.full_below_w,
            "settle_s": self.full_settle_min * 60,
            "grace_s": self.full_grace_min * 60,
        }

    @property
    def may_meter(self) -> bool:
        """An agent bay (its agent says whether it has a meter) or a switch bay with sensors."""
        return isinstance(self.relay, MqttRelay) or self.energy_sensor is not None

    @property
    def driver(self) -> str:
        """The kind of relay, as stored (``mqtt`` or ``switch``)."""
        return self.relay.kind

    def rate_plan(self, plans: Mapping[str, Plan]) -> Plan | None:
        """The first per-minute plan the bay offers (what its static QR code sells)."""
        return next((plans[c] for c in self.plan_codes if c in plans and plans[c].is_rate), None)


# Bay fields stored only when set, or when not their default (a bay of 0.2 has none of them).
_OPTIONAL_BAY_FIELDS = (
    "qr_code_id",
    "qr_image_url",
    "qr_code_tag",
    "qr_secret",
    "display_token",
    "power_sensor",
    "energy_sensor",
)
_DEFAULT_BAY_FIELDS = {
    "dynamic_qr": False,
    "qr_validity_s": DEFAULT_VALIDITY_S,
    "hold_minutes": DEFAULT_HOLD_MINUTES,
    # The metering settings' defaults (the sensors are optional fields, above).
    **{f.name: f.default for f in fields(Metering) if not f.name.endswith("_sensor")},
    "rated_w": DEFAULT_RATED_W,
    "site_id": DEFAULT_SITE_ID,
}


def rupees_to_paise(rupees: float | str | Decimal) -> int:
    """Convert a price entered in rupees to integer paise: finite, no fractions of a paisa."""
    try:
        paise = Decimal(str(rupees)) * 100
    except ArithmeticError as err:  # no number (InvalidOperation), a signalling NaN
        raise CatalogError("price", "invalid_price") from err
    if not paise.is_finite() or paise != paise.to_integral_value():  # infinities, NaN
        raise CatalogError("price", "invalid_price")
    return int(paise)


def paise_to_rupees(paise: int) -> Decimal:
    """Rupees, exact to the paisa, for integer paise."""
    return Decimal(paise).scaleb(-2)


def make_plan(code: str, name: str, minutes: int, price_paise: int) -> Plan:
    """Validate and build a plan (the id is checked by the caller against its siblings)."""
    if not ID_PATTERN.fullmatch(code):
        raise CatalogError("code", "invalid_id")
    if minutes <= 0 or minutes > MAX_PLAN_MINUTES:
        raise CatalogError("minutes", "invalid_minutes")
    if price_paise <= 0:
        raise CatalogError("price", "invalid_price")
    if price_paise < MIN_PRICE_PAISE:
        raise CatalogError("price", "price_below_minimum")
    return Plan(code=code, name=name.strip() or code, minutes=minutes, price_paise=price_paise)


def make_rate_plan(
    code: str, name: str, rate_paise: int, min_minutes: int, max_minutes: int
) -> Plan:
    """Validate and build a rate plan: paise per minute, the customer choosing the minutes."""
    if not ID_PATTERN.fullmatch(code):
        raise CatalogError("code", "invalid_id")
    if rate_paise <= 0:
        raise CatalogError("price", "invalid_price")
    if not 0 < min_minutes <= MAX_PLAN_MINUTES:
        raise CatalogError("min_minutes", "invalid_minutes")
    if not min_minutes <= max_minutes <= MAX_PLAN_MINUTES:
        raise CatalogError("max_minutes", "max_below_min")
    if min_minutes * rate_paise < MIN_PRICE_PAISE:
        # The cheapest purchase must be a payment Razorpay takes.
        raise CatalogError("min_minutes", "minimum_below_one_rupee")
    return Plan(
        code=code,
        name=name.strip() or code,
        kind=PLAN_RATE,
        rate_paise=rate_paise,
        min_minutes=min_minutes,
        max_minutes=max_minutes,
    )


def make_energy_plan(
    code: str,
    name: str,
    *,
    price_per_kwh_paise: int,
    min_paise: int,
    max_paise: int,
    cap_minutes: int,
) -> Plan:
    """Validate and build a per-kWh plan: the customer pays an amount, which buys energy."""
    if not ID_PATTERN.fullmatch(code):
        raise CatalogError("code", "invalid_id")
    if not 0 < price_per_kwh_paise <= MAX_PRICE_PER_KWH_PAISE:
        raise CatalogError("price", "invalid_price")
    if not MIN_PRICE_PAISE <= min_paise <= MAX_ENERGY_AMOUNT_PAISE:
        raise CatalogError("min_amount", "price_below_minimum")
    if not min_paise <= max_paise <= MAX_ENERGY_AMOUNT_PAISE:
        raise CatalogError("max_amount", "max_below_min")
    if not 0 < cap_minutes <= MAX_PLAN_MINUTES:
        raise CatalogError("minutes", "invalid_minutes")
    return Plan(
        code=code,
        name=name.strip() or code,
        minutes=cap_minutes,
        kind=PLAN_KWH,
        price_per_kwh_paise=price_per_kwh_paise,
        min_paise=min_paise,
        max_paise=max_paise,
    )


# What each kind of plan stores besides its code and name (a fixed plan as in version 0.2).
_PLAN_FIELDS = {
    PLAN_FIXED: ("minutes", "price_paise"),
    PLAN_RATE: ("rate_paise", "min_minutes", "max_minutes"),
    PLAN_KWH: ("minutes", "price_per_kwh_paise", "min_paise", "max_paise"),
}


def with_bands(plan: Plan, text: str) -> Plan:
    """A plan with the price bands of a form's text (field ``bands``), each one checked.

    In every band the cheapest purchase must stay a payment Razorpay takes (at least
    ``MIN_PRICE_PAISE``: ``band_below_minimum``). A per-kWh plan's amount is the customer's
    choice, so there a band changes what it buys: its price must stay from one paisa to
    ``MAX_PRICE_PER_KWH_PAISE``.
    """
    bands = parse_bands(CONF_BANDS, text)
    for band in bands:
        sold = plan.in_band(band)
        if sold.price_per_kwh_paise > MAX_PRICE_PER_KWH_PAISE:
            raise CatalogError(CONF_BANDS, "invalid_band_percent")
        if plan.is_energy:
            cheapest = MIN_PRICE_PAISE if sold.price_per_kwh_paise > 0 else 0
        else:
            cheapest = sold.rate_total(sold.min_minutes) if plan.is_rate else sold.price_paise
        if cheapest < MIN_PRICE_PAISE:
            raise CatalogError(CONF_BANDS, "band_below_minimum")
    return replace(plan, bands=bands)


def plan_to_data(plan: Plan) -> dict[str, Any]:
    """A plan as stored in its config subentry (a fixed plan as in version 0.2, no kind).

    Bands are stored as the form's text, and only when the plan has some.
    """
    data: dict[str, Any] = {"code": plan.code, "name": plan.name}
    if plan.kind != PLAN_FIXED:
        data["kind"] = plan.kind
    data |= {name: getattr(plan, name) for name in _PLAN_FIELDS[plan.kind]}
    if plan.bands:
        data[CONF_BANDS] = format_spans(plan.bands)
    return data


def plan_from_data(data: Mapping[str, Any]) -> Plan:
    """A plan from its config subentry; one without a kind is a fixed plan (version 0.2)."""
    # A band's percent belongs to a plan as sold (``in_band``), never to its stored data.
    known = {f.name for f in fields(Plan)} - {CONF_BANDS, "rate_percent"}
    plan = Plan(**{k: v for k, v in data.items() if k in known})
    return replace(plan, bands=parse_bands(CONF_BANDS, data.get(CONF_BANDS, "")))


def make_bay(
    bay_id: str,
    name: str,
    plan_codes: Iterable[str],
    known_plans: Iterable[str],
    *,
    relay: Relay,
    default_minutes: int = DEFAULT_OWNER_MINUTES,
    max_minutes: int = DEFAULT_MAX_MINUTES,
    dynamic_qr: bool = False,
    qr_validity_s: int = DEFAULT_VALIDITY_S,
    hold_minutes: int = DEFAULT_HOLD_MINUTES,
    meter: Metering | None = None,
    site_id: str = DEFAULT_SITE_ID,
    rated_w: int = DEFAULT_RATED_W,
) -> Bay:
    """Validate and build a bay that offers some of the known plans (secrets added later)."""
    if not ID_PATTERN.fullmatch(bay_id):
        raise CatalogError("bay_id", "invalid_id")
    codes = tuple(dict.fromkeys(plan_codes))
    if not codes:
        raise CatalogError("plans", "no_plans_selected")
    if not set(codes) <= set(known_plans):
        raise CatalogError("plans", "unknown_plan")
    relay = checked_relay(relay, bay_id)
    if not 0 < max_minutes <= MAX_PLAN_MINUTES:
        raise CatalogError("max_minutes", "invalid_minutes")
    if not 0 < default_minutes <= max_minutes:
        raise CatalogError("default_minutes", "invalid_minutes")
    _check_screen(qr_validity_s, hold_minutes)
    meter = _checked_meter(meter or Metering(), relay)
    if not MIN_RATED_W <= rated_w <= MAX_RATED_W:
        raise CatalogError("rated_w", "invalid_rated_power")
    return Bay(
        bay_id=bay_id,
        name=name.strip() or bay_id,
        plan_codes=codes,
        relay=relay,
        default_minutes=default_minutes,
        max_minutes=max_minutes,
        dynamic_qr=dynamic_qr,
        qr_validity_s=qr_validity_s,
        hold_minutes=hold_minutes,
        full_below_w=meter.full_below_w,
        full_settle_min=meter.full_settle_min,
        full_grace_min=meter.full_grace_min,
        prorata=meter.prorata,
        power_sensor=meter.power_sensor,
        energy_sensor=meter.energy_sensor,
        max_power_w=meter.max_power_w,
        site_id=site_id,
        rated_w=rated_w,
    )


def _checked_meter(meter: Metering, relay: Relay) -> Metering:
    """A bay's metering settings checked (``metering.problem``)."""
    if (problem := metering_problem(meter, on_agent=isinstance(relay, MqttRelay))) is not None:
        raise CatalogError(*problem)
    return meter


def _check_screen(qr_validity_s: int, hold_minutes: int) -> None:
    """A dynamic QR code's validity (OCPP's range), and a hold Razorpay's links can keep."""
    if not MIN_VALIDITY_S <= qr_validity_s <= MAX_VALIDITY_S:
        raise CatalogError("qr_validity_s", "invalid_validity")
    if not MIN_HOLD_MINUTES <= hold_minutes <= MAX_HOLD_MINUTES:
        raise CatalogError("hold_minutes", "invalid_hold")


def with_screen_secrets(
    data: Mapping[str, Any], before: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A bay's stored data with its generated secrets: those it had (``before``), else new.

    Every bay has them, however it was added (a form, an agent's discovery, a bay of 0.2 when
    the entry is migrated), so turning its dynamic QR code or display on needs nothing more.
    """
    had = data if before is None else before
    return {
        **data,
        "qr_secret": had.get("qr_secret") or new_secret(),
        "display_token": had.get("display_token") or secrets.token_urlsafe(24),
    }


def bay_to_data(bay: Bay) -> dict[str, Any]:
    """A bay as stored in its config subentry."""
    data = {f.name: getattr(bay, f.name) for f in fields(Bay) if f.name != "relay"}
    data["plans"] = list(data.pop("plan_codes"))
    data.update(relay_to_data(bay.relay))
    for name in _OPTIONAL_BAY_FIELDS:
        if data[name] is None:
            del data[name]
    for name, default in _DEFAULT_BAY_FIELDS.items():
        if data[name] == default:
            del data[name]
    return data


def bay_from_data(data: Mapping[str, Any]) -> Bay:
    """A bay from its config subentry (written by ``bay_to_data``; older ones lack defaults)."""
    known = {f.name for f in fields(Bay)} - {"relay", "plan_codes"}
    values = {k: v for k, v in data.items() if k in known}
    return Bay(**values, plan_codes=tuple(data["plans"]), relay=relay_from_data(data))
