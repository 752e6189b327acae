"""The account options' collapsed section of the owner's tax details (issue #26).

Stored as ``options["tax"]``, exactly what ``tax.parse_settings`` reads; the options flow
(``config_flow``) shows it and checks it with ``tax_options``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import voluptuous as vol
from homeassistant.data_entry_flow import section
from homeassistant.helpers import selector

from .flow_fields import TEXT
from .tax import (
    CONFIRMED,
    GSTIN,
    LEGAL_NAME,
    PREFIX,
    RATE,
    RATES,
    SAC,
    STATE,
    STATES,
    SUGGESTED_RATE,
    SUGGESTED_SAC,
    TaxError,
    TaxSettings,
    parse_settings,
)

SECTION_TAX = "tax"


def tax_section(values: Mapping[str, Any], *, collapsed: bool) -> section:
    """The tax details: what ``tax.parse_settings`` reads, shown with ``values`` filled in.

    The SAC code, rate and prefix are only suggested (the owner confirms them); the state and
    rate are picked from lists, so only GST's own values can be sent from the form.
    """

    def shown(key: str, fallback: Any = None) -> dict[str, Any]:
        return {"suggested_value": values.get(key, fallback)}

    def choice(options: list[selector.SelectOptionDict]) -> selector.SelectSelector:
        return selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=options, mode=selector.SelectSelectorMode.DROPDOWN
            )
        )

    states = [
        selector.SelectOptionDict(value=code, label=f"{code} \u2013 {name}")
        for code, name in STATES.items()
    ]
    rates = [selector.SelectOptionDict(value=rate, label=f"{rate} %") for rate in RATES]
    return section(
        vol.Schema(
            {
                vol.Optional(LEGAL_NAME, description=shown(LEGAL_NAME)): TEXT,
                vol.Optional(GSTIN, description=shown(GSTIN)): TEXT,
                vol.Optional(STATE, description=shown(STATE)): choice(states),
                vol.Optional(SAC, description=shown(SAC, SUGGESTED_SAC)): TEXT,
                vol.Optional(RATE, description=shown(RATE, SUGGESTED_RATE)): choice(rates),
                vol.Optional(
                    CONFIRMED, default=False, description=shown(CONFIRMED, False)
                ): selector.BooleanSelector(),
                vol.Optional(PREFIX, description=shown(PREFIX, TaxSettings().prefix)): TEXT,
            }
        ),
        {"collapsed": collapsed},
    )


def tax_options(entered: Mapping[str, Any], others: Iterable[TaxSettings]) -> dict[str, Any]:
    """The tax section as entered, normalised (GSTIN and prefix upper case); bad: ``TaxError``.

    Without a GSTIN only the legal name and prefix count: the account issues receipts. Each
    account numbers its own documents, so ``others`` (the other accounts' details) must not
    have the same GSTIN with the same prefix: their numbers would repeat (Rule 46(b)).
    """
    settings = parse_settings(dict(entered))
    if settings.registered and any(
        (o.gstin, o.prefix) == (settings.gstin, settings.prefix) for o in others
    ):
        raise TaxError(PREFIX, "prefix_taken")
    return {
        **entered,
        LEGAL_NAME: settings.legal_name,
        GSTIN: settings.gstin,
        PREFIX: settings.prefix,
    }
