"""What the customer's pages say: the bay page, the session page, and the rules behind them.

Plain Python, no Home Assistant imports; time is passed in. The HA shell (``pages``) reads the
ledger and the bays, builds these views, and renders them (``pages_render``). Nothing here
trusts the client: prices are computed from the plan, minutes are checked against it, and a
session page is reached only with a token signed by the account's secret.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import parse_qsl

from .catalog import Plan, Quote, paise_to_rupees, rupees_to_paise
from .catalog_errors import CatalogError
from .intents import START, add_time
from .pages_site import CLOSED, FULL, SiteView
from .records import (
    KEPT_REFUNDS,
    LinkRecord,
    PaymentRecord,
    PaymentState,
    RefundRecord,
    RefundState,
    SessionRecord,
    SessionState,
)

LANGUAGES = ("en", "hi")
DEFAULT_LANGUAGE = "en"
# A link with less than this left before it expires is not handed to another customer: they
# need time to pay. Links live 20 minutes, so one link serves a bay, plan and intent for 10.
REUSE_MARGIN_S = 10 * 60
# No more unpaid links than this per bay at once (a crowd trying every minute of a rate plan).
MAX_OPEN_LINKS_PER_BAY = 30
# The body of a form POST: a plan, some minutes, a language. Anything longer is refused.
MAX_FORM_BODY = 2048


# -- language ----------------------------------------------------------------------------------


def choose_language(asked: str | None, accept_language: str | None) -> str:
    """The page's language: the switch on the page (``lang=``), else the browser's preference."""
    if asked in LANGUAGES:
        return asked
    best: tuple[float, str] | None = None
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        if lang not in LANGUAGES:
            continue
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        if best is None or weight > best[0]:
            best = (weight, lang)
    return best[1] if best else DEFAULT_LANGUAGE


# -- money and time as shown -------------------------------------------------------------------


def rupees(paise: int) -> str:
    """₹20 or ₹20.50."""
    value = paise_to_rupees(paise)
    return f"₹{value:.0f}" if paise % 100 == 0 else f"₹{value:.2f}"


def minutes_left(until: float, now: float) -> int:
    """Whole minutes still to come, rounded up."""
    return max(math.ceil((until - now) / 60), 0)


# -- the bay page ------------------------------------------------------------------------------


class BayState(StrEnum):
    """What the bay page says about the bay."""

    FREE = "free"
    BUSY = "busy"  # charging: time can be added
    HELD = "held"  # free, but held for a customer who is paying now (``holds``)
    STARTING = "starting"  # a session is paid or switching on: nothing is sold for a moment
    OUT_OF_ORDER = "out_of_order"
    CLOSED = CLOSED  # its site is closed (``pages_site``): it says when it opens
    FULL = FULL  # its site's load cap has no room for it: it says when power is free


@dataclass(frozen=True, slots=True)
class Offer:
    """A plan as the page offers it: fixed (one price) or per minute (the customer chooses)."""

    plan: Plan  # priced in the band of the moment the page is made
    base: Plan  # before bands: today's bands are shown from it (``Plan.banded``)

    @property
    def code(self) -> str:
        """The plan's code, sent back by the form."""
        return self.plan.code


@dataclass(frozen=True, slots=True)
class BayView:
    """The bay page's content."""

    bay_id: str
    name: str
    state: BayState
    offers: tuple[Offer, ...]
    until: float | None = None
    running_session_id: str | None = None
    # Most minutes that may still be added to the running session.
    room_minutes: int | None = None
    # A bay with a dynamic QR code whose page was not opened with a valid password: it sells
    # nothing and says to scan the code on the bay's screen.
    locked: bool = False
    site: SiteView | None = None  # what the page says of the bay's site

    @property
    def selling(self) -> bool:
        """Whether the page shows Pay buttons."""
        return self.state in (BayState.FREE, BayState.BUSY) and not self.locked

    @property
    def intent(self) -> str:
        """What a payment made from this page does: starts a session, or adds time."""
        if self.state is BayState.BUSY and self.running_session_id is not None:
            return add_time(self.running_session_id)
        return START


def bay_view(
    *,
    bay_id: str,
    name: str,
    plans: Iterable[Plan],
    running: SessionRecord | None,
    in_order: bool,
    limit_s: int,
    now: float,
    held: bool = False,
    as_sold: Callable[[Plan], Plan] = lambda plan: plan,
) -> BayView:
    """What the page of a bay shows now; ``held``: someone else is paying for the free bay.

    ``as_sold``: a plan as sold now (in its price band at the bay's site).
    """
    offers = tuple(Offer(as_sold(plan), plan) for plan in plans)
    if not in_order:
        return BayView(bay_id, name, BayState.OUT_OF_ORDER, offers)
    if running is None and held:
        return BayView(bay_id, name, BayState.HELD, offers)
    if running is None:
        return BayView(bay_id, name, BayState.FREE, offers, room_minutes=limit_s // 60)
    if running.state is not SessionState.ACTIVE or running.until is None:
        return BayView(bay_id, name, BayState.STARTING, offers)
    room = room_s(limit_s, running, now) // 60
    return BayView(
        bay_id,
        name,
        BayState.BUSY,
        offers,
        until=running.until,
        running_session_id=running.session_id,
        room_minutes=room,
    )


def room_s(limit_s: int, running: SessionRecord | None, now: float) -> int:
    """What may be sold at a bay now: its longest sale less what its running session has left.

    ``limit_s`` is the bay's longest session, cut to its site's closing; time bought at a
    busy bay is added to its running session.
    """
    if running is None or running.until is None:
        return limit_s
    return max(int(limit_s - (running.until - now)), 0)


def with_site(view: BayView, site: SiteView) -> BayView:
    """The view under its site: closed (a top-up, a held bay's sale too), or full if free."""
    if site.closed and view.state in (BayState.FREE, BayState.BUSY, BayState.HELD):
        return replace(view, state=BayState.CLOSED, site=site)
    if site.full and view.state is BayState.FREE:
        return replace(view, state=BayState.FULL, site=site)
    return replace(view, site=site)


# -- the form ----------------------------------------------------------------------------------


class FormError(ValueError):
    """A form the page cannot act on; ``key`` names the text that says why."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True, slots=True)
class Purchase:
    """What the customer asked to buy, priced by the server."""

    plan: Plan
    quote: Quote


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of a urlencoded form (the last of a repeated field)."""
    if len(body) > MAX_FORM_BODY:
        raise FormError("bad_request")
    try:
        text = body.decode("ascii")
        # parse_qsl raises ValueError past max_num_fields: a form of ours has fewer.
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=10))
    except ValueError as err:  # UnicodeDecodeError included
        raise FormError("bad_request") from err


def purchase(view: BayView, form: Mapping[str, str]) -> Purchase:
    """Check a Pay form against the page: a plan it offers, minutes within bounds and room."""
    offer = next((o for o in view.offers if o.code == form.get("plan")), None)
    if offer is None:
        raise FormError("unknown_plan")
    minutes: int | None = None
    if offer.plan.is_energy:
        quote = _energy_quote(offer.plan, form.get("amount", ""))
    else:
        if offer.plan.is_rate:
            raw = form.get("minutes", "").strip()
            # ASCII digits only: "²".isdigit() is true, but int("²") raises.
            if not (raw.isascii() and raw.isdigit()) or len(raw) > 5:
                raise FormError("bad_minutes")
            minutes = int(raw)
        try:
            quote = offer.plan.quote(minutes)
        except CatalogError as err:
            raise FormError("bad_minutes") from err
    room = view.room_minutes
    if room is not None and quote.minutes > room:
        # A per-kWh plan's time cap is cut to its site's closing, rather than refused.
        if not (offer.plan.is_energy and room > 0 and view.site and view.site.closes):
            raise FormError("too_long")
        quote = replace(quote, minutes=room)
    return Purchase(offer.plan, quote)


# Rupees as a customer types them: digits, and at most two of paise.
_RUPEES = re.compile(r"[0-9]{1,6}(\.[0-9]{1,2})?")


def _energy_quote(plan: Plan, raw: str) -> Quote:
    """A per-kWh plan's amount, in rupees within its bounds: what it buys."""
    raw = raw.strip()
    if not _RUPEES.fullmatch(raw):
        raise FormError("bad_amount")
    try:
        return plan.quote_energy(rupees_to_paise(raw))
    except CatalogError as err:
        raise FormError("bad_amount") from err


# -- links: reuse is also the rate limit -------------------------------------------------------


def reusable_link(
    links: Iterable[LinkRecord],
    *,
    bay_id: str,
    plan_code: str,
    quote: Quote,
    intent: str,
    now: float,
) -> LinkRecord | None:
    """An open unpaid link for the same purchase with time left to pay, if there is one."""
    for link in links:
        if (
            link.bay_id == bay_id
            and link.plan_code == plan_code
            and link.amount == quote.price_paise
            and link.seconds == quote.seconds
            and link.intent == intent
            and link.status == "created"
            and link.payment_id is None
            and link.expire_by - now > REUSE_MARGIN_S
        ):
            return link
    return None


def too_many_open(links: Iterable[LinkRecord], bay_id: str, now: float) -> bool:
    """Whether a bay already has as many open links as it may."""
    open_links = [
        link
        for link in links
        if link.bay_id == bay_id and link.status == "created" and link.expire_by > now
    ]
    return len(open_links) >= MAX_OPEN_LINKS_PER_BAY


# -- the session page --------------------------------------------------------------------------


class Stage(StrEnum):
    """Where the customer's payment and session are, as the session page tells it."""

    AWAITING = "awaiting"  # the link is not (known to be) paid yet
    EXPIRED = "expired"  # the link closed unpaid
    CANCELLED = "cancelled"  # the customer cancelled it on this page
    PAID = "paid"
    STARTING = "starting"
    CHARGING = "charging"
    ENDED = "ended"
    FAILED = "failed"  # refund not asked for (automatic refunds off)
    REFUND_INITIATED = "refund_initiated"
    REFUND_PROCESSED = "refund_processed"
    REVIEW = "review"  # the payment did not match: the owner looks at it


@dataclass(frozen=True, slots=True)
class SessionView:
    """The session page's content: only this customer's payment and its refunds."""

    bay_id: str
    stage: Stage
    paid_paise: int = 0
    refunded_paise: int = 0
    refund_settled: bool = False
    until: float | None = None
    ended_at: float | None = None
    # The running session time can be added to (this customer's, or the one theirs topped up).
    running_session_id: str | None = None
    minutes_bought: int = 0
    short_url: str | None = None
    # A metered session: the energy paid for and delivered (Wh), the price per kWh (0: sold
    # by time), the power now (W, while it runs) and why it ended.
    energy_paid_wh: int = 0
    energy_wh: float = 0.0
    price_per_kwh_paise: int = 0
    power_w: float | None = None
    end_reason: str | None = None

    @property
    def used_paise(self) -> int:
        """What the energy delivered costs so far (at the end: what was kept of the payment)."""
        if self.stage is Stage.ENDED:
            return self.paid_paise - self.refunded_paise
        billed = min(math.floor(self.energy_wh), self.energy_paid_wh)
        return min(-(-billed * self.price_per_kwh_paise // 1000), self.paid_paise)

    @property
    def end_note(self) -> str | None:
        """The text key that says why a metered session ended (vehicle full, ...)."""
        reason = self.end_reason or ""
        if self.stage is not Stage.ENDED or reason not in METERED_END_NOTES:
            return None
        return "end_meter_fault" if reason.startswith("meter_") else f"end_{reason}"


# Why a metered session ended, as its page says it (``end_<reason>``; any meter fault alike).
METERED_END_NOTES = frozenset(
    {
        "vehicle_full",
        "energy_reached",
        "time_cap",
        "meter_silent",
        "meter_invalid",
        "meter_backwards",
        "meter_overpower",
    }
)


def kwh(wh: float) -> str:
    """Energy for the customer: kWh to the Wh (``1.250``)."""
    return f"{wh / 1000:.3f}"


_RUNNING_STAGES = {
    SessionState.PAID: Stage.PAID,
    SessionState.STARTING: Stage.STARTING,
    SessionState.ACTIVE: Stage.CHARGING,
}


def session_view(
    link: LinkRecord,
    payment: PaymentRecord | None,
    session: SessionRecord | None,
    refunds: Iterable[RefundRecord],
    now: float,
) -> SessionView:
    """What the page of a link's payment says: paid → starting → charging → ended, or refunded."""
    bay = link.bay_id
    minutes = link.seconds // 60
    if payment is None or link.payment_id is None:
        waiting = link.status == "created" and link.expire_by > now
        closed = Stage.CANCELLED if link.status == "cancelled" else Stage.EXPIRED
        return SessionView(
            bay,
            Stage.AWAITING if waiting else closed,
            short_url=link.short_url if waiting else None,
            minutes_bought=minutes,
        )
    if payment.state is not PaymentState.SESSION or session is None:
        return SessionView(bay, Stage.REVIEW, paid_paise=payment.amount, minutes_bought=minutes)
    mine = [
        r for r in refunds if r.payment_id == payment.payment_id and r.state not in KEPT_REFUNDS
    ]
    refunded = sum(r.amount for r in mine)
    settled = bool(mine) and all(r.state is RefundState.PROCESSED for r in mine)
    view = SessionView(
        bay,
        Stage.FAILED,
        paid_paise=payment.amount,
        refunded_paise=refunded,
        refund_settled=settled,
        minutes_bought=minutes,
        energy_paid_wh=payment.energy_wh,
        energy_wh=session.energy_used_wh,
        price_per_kwh_paise=session.price_per_kwh_paise,
        end_reason=session.end_reason,
    )
    if session.running:
        active = session.state is SessionState.ACTIVE
        return replace(
            view,
            stage=_RUNNING_STAGES[session.state],
            until=session.until if active else None,
            running_session_id=session.session_id,
        )
    if session.state is SessionState.ENDED:
        return replace(view, stage=Stage.ENDED, ended_at=session.ended_at)
    if refunded:
        return replace(view, stage=Stage.REFUND_PROCESSED if settled else Stage.REFUND_INITIATED)
    return view
