"""Builders of the tax export's and the tax sensors' tests: a registered owner, the action."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Context, HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.invoices import Document

from .helpers import setup_plug
from .tax_helpers import tax_options

# 15 November 2026, noon in India: mid-month, so nothing here crosses a month's turn by itself.
MID_NOVEMBER = "2026-11-15 06:30:00+00:00"


async def set_up(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    tax: dict[str, Any] | None = None,
) -> None:
    """The account (bay-1 on a plug), its owner's tax details (a registered owner's unless
    given; ``{}``: none, receipts) set before it is set up."""
    freezer.move_to(MID_NOVEMBER)
    await setup_plug(hass)
    entry.add_to_hass(hass)
    tax = tax_options() if tax is None else tax
    if tax:
        hass.config_entries.async_update_entry(entry, options={**entry.options, "tax": tax})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def export_tax(
    hass: HomeAssistant, month: str = "2026-11", context: Context | None = None
) -> dict[str, Any]:
    """The action's response."""
    response = await hass.services.async_call(
        DOMAIN,
        "export_tax",
        {"month": month},
        blocking=True,
        return_response=True,
        context=context,
    )
    assert isinstance(response, dict)
    return response


def written_folders(hass: HomeAssistant) -> list[Path]:
    """The folders the exports wrote in ``<config>/qr_charging``."""
    folder = Path(hass.config.path(DOMAIN))
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


def net_totals(documents: list[Document]) -> dict[str, str]:
    """Invoices less credit notes, in rupees, summed here from the documents as stored."""
    signs = {"invoice": 1, "credit_note": -1}
    totals = dict.fromkeys(("taxable", "cgst", "sgst", "igst"), 0)
    for doc in documents:
        sign = signs.get(doc.kind.value, 0)
        for name in totals:
            totals[name] += sign * getattr(doc.amounts, name)
    return {name: f"{Decimal(paise) / 100:.2f}" for name, paise in totals.items()}
