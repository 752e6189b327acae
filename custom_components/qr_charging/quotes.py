"""What one purchase of a plan costs and buys, checked where a person asks for it.

The action ``create_payment_link`` (and the pages) ask for a link; the price is computed here
from the plan, never taken from the client. A per-kWh plan sells only at a metered bay: an
agent bay whose agent names a meter for it (``drivers.mqtt_agent``), or a switch bay with an
energy sensor; anywhere else it is refused before any payment. Under a site, the action sells
what a page would (``check_site``): nothing while closed or full, only what ends by closing.
"""

from __future__ import annotations

from typing import NoReturn

from homeassistant.exceptions import ServiceValidationError

from .catalog import (
    Plan,
    Quote,
    paise_to_rupees,
)
from .catalog_errors import CatalogError
from .const import DOMAIN
from .ledger import Ledger
from .pages_site import CLOSED, FULL, sale_limit_s, sale_refusal, site_view
from .site_gate import SiteGate


def quote_for(
    plan: Plan, *, minutes: int | None, amount_paise: int | None, metered: bool, bay: str
) -> Quote:
    """The price of a purchase: a rate plan's minutes, or a per-kWh plan's amount.

    Raises a translated ``ServiceValidationError`` for an amount or minutes out of bounds and
    for energy at a bay that cannot count it.
    """
    if plan.is_energy:
        if not metered:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="bay_not_metered",
                translation_placeholders={"bay": bay, "plan": plan.code},
            )
        try:
            return plan.quote_energy(amount_paise if amount_paise is not None else -1)
        except CatalogError as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_amount",
                translation_placeholders={
                    "plan": plan.code,
                    "min": str(paise_to_rupees(plan.min_paise)),
                    "max": str(paise_to_rupees(plan.max_paise)),
                },
            ) from err
    try:
        return plan.quote(minutes if plan.is_rate else None)
    except CatalogError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_minutes",
            translation_placeholders={
                "plan": plan.code,
                "min": str(plan.min_minutes),
                "max": str(plan.max_minutes),
            },
        ) from err


def check_site(
    gate: SiteGate | None, ledger: Ledger, bay_id: str, quote: Quote, now: float
) -> None:
    """Refuse a purchase the bay's site would not sell now, as its page would not.

    The pages' rules (``pages_site.sale_refusal``, ``sale_limit_s``): nothing while the site is
    closed, no start while its load cap has no room for the bay (a top-up of the bay's running
    session adds no load), and no time past closing (a per-kWh sale's time cap is cut to it
    instead, by ``payments``). Raises a translated ``ServiceValidationError``.
    """
    if gate is None:
        return
    starting = ledger.running_session(bay_id) is None
    why = sale_refusal(gate, ledger, bay_id, now, starting=starting)
    if why is not None:
        view = site_view(gate, ledger, bay_id, now)
        site = gate.site.name
        if why == CLOSED and view.opens is None:
            _refuse("site_closed_for_good", site=site)
        if why == CLOSED and view.opens is not None:
            _refuse("site_closed", site=site, opens=_shown(view.opens))
        assert why == FULL
        _refuse("site_full", site=site, in_use=view.in_use_kw, cap=view.cap_kw or "")
    limit_s = sale_limit_s(gate, quote.seconds, now)
    if not quote.energy_wh and quote.seconds > limit_s:
        view = site_view(gate, ledger, bay_id, now)
        closes = _shown(view.closes) if view.closes else ""
        _refuse("site_closing", site=gate.site.name, closes=closes, minutes=limit_s // 60)


def _shown(when: tuple[str, str | None]) -> str:
    """A page's local time as the action says it: ``08:00``, or ``08/12 08:00`` not today."""
    time, day = when
    return time if day is None else f"{day} {time}"


def _refuse(key: str, **placeholders: str | int) -> NoReturn:
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={k: str(v) for k, v in placeholders.items()},
    )
