"""What one purchase of a plan costs and buys, checked where a person asks for it.

The action ``create_payment_link`` (and the pages) ask for a link; the price is computed here
from the plan, never taken from the client. A per-kWh plan sells only at a metered bay: an
agent bay whose agent names a meter for it (``drivers.mqtt_agent``), or a switch bay with an
energy sensor; anywhere else it is refused before any payment.
"""

from __future__ import annotations

from homeassistant.exceptions import ServiceValidationError

from .catalog import (
    Plan,
    Quote,
    paise_to_rupees,
)
from .catalog_errors import CatalogError
from .const import DOMAIN


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
