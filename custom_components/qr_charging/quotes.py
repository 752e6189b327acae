"""What one purchase of a plan costs and buys, checked where a person asks for it.

The action ``create_payment_link`` (and the pages) ask for a link; the price is computed here
from the plan, never taken from the client. A per-kWh plan sells only at a metered bay: an
agent bay whose agent names a meter for it (``drivers.mqtt_agent``), or a switch bay with an
energy sensor; anywhere else it is refused before any payment. The action sells what a page
would (``check_site``): under a site nothing while closed or full, only what ends by closing;
at a busy bay only what fits beside the time its running session has left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.exceptions import ServiceValidationError

from .catalog import (
    Plan,
    Quote,
    paise_to_rupees,
)
from .catalog_errors import CatalogError
from .const import DOMAIN
from .ledger import Ledger
from .pages_model import room_s
from .pages_site import CLOSED, FULL, sale_limit_s, sale_refusal, site_view

if TYPE_CHECKING:
    from .bays import Bays


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


def check_site(bays: Bays, ledger: Ledger, bay_id: str, quote: Quote, now: float) -> None:
    """Refuse a purchase the bay (and its site) would not sell now, as its page would not.

    The pages' rules (``pages_site.sale_refusal``, ``sale_limit_s``, ``pages_model.room_s``):
    nothing while the site is closed, no start while its load cap has no room for the bay (a
    top-up of the bay's running session adds no load), and no time past closing or past the
    bay's longest session, counting what its running session has left (a per-kWh sale's time
    cap is cut to closing instead, by ``payments``). Raises a translated
    ``ServiceValidationError``.
    """
    runner, gate = bays.runners[bay_id], bays.gates.get(bay_id)
    if gate is not None and (
        why := sale_refusal(gate, ledger, bay_id, now, starting=runner.session is None)
    ):
        view = site_view(gate, ledger, bay_id, now)
        if why == CLOSED:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="site_closed" if view.opens else "site_closed_for_good",
                translation_placeholders=_texts(
                    site=gate.site.name, opens=_shown(view.opens) if view.opens else ""
                ),
            )
        assert why == FULL
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="site_full",
            translation_placeholders=_texts(
                site=gate.site.name, in_use=view.in_use_kw, cap=view.cap_kw or ""
            ),
        )
    limit_s = sale_limit_s(gate, runner.limit_s, now)
    if quote.energy_wh or quote.seconds <= (room := room_s(limit_s, runner.session, now)):
        return
    if gate is not None and limit_s < runner.limit_s:  # the site's closing is the limit
        closes = site_view(gate, ledger, bay_id, now).closes
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="site_closing",
            translation_placeholders=_texts(
                site=gate.site.name, closes=_shown(closes) if closes else "", minutes=room // 60
            ),
        )
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="too_long",
        translation_placeholders=_texts(bay=bay_id, max=runner.limit_s // 60),
    )


def _shown(when: tuple[str, str | None]) -> str:
    """A page's local time as the action says it: ``08:00``, or ``08/12 08:00`` not today."""
    time, day = when
    return time if day is None else f"{day} {time}"


def _texts(**placeholders: str | int) -> dict[str, str]:
    """An error's placeholders as the translation takes them: text."""
    return {key: str(value) for key, value in placeholders.items()}
