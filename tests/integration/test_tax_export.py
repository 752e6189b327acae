"""The action ``export_tax``: a month's documents as GSTR-1's tables, through paid webhooks."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.invoices import Dues, SaleDue, Sold
from custom_components.qr_charging.ledger import Changes
from custom_components.qr_charging.tax import settings_of
from devtools.razorpay_standin import RazorpayStandin

from .helpers import PostWebhook, export_sessions, pay, two_links_paid_in_turn
from .tax_export_helpers import export_tax, net_totals, set_up, written_folders


def _rows(path: str) -> list[dict[str, str]]:
    with Path(path).open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


async def test_a_month_of_payments_and_a_refund_is_exported(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    await set_up(hass, config_entry, freezer)
    second = await two_links_paid_in_turn(hass, standin, post_webhook)
    await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": second.payment_id, "amount": 5}, blocking=True
    )
    await hass.async_block_till_done()
    (session,) = await export_sessions(hass)
    session_id = session["session_id"]
    documents = await config_entry.runtime_data.books.store.async_documents(session_id)
    assert [d.kind.value for d in documents] == ["invoice", "invoice", "credit_note"]

    response = await export_tax(hass)

    (written,) = written_folders(hass)
    assert written.name.startswith(f"tax-{config_entry.entry_id}-2026-11-")
    assert set(response["files"]) == {"b2b", "b2cs", "cdnr", "hsn_b2b", "hsn_b2c", "docs"}
    assert all(Path(path).parent == written for path in response["files"].values())
    assert response["documents"] == 3
    assert response["gstr1"] is True
    totals = net_totals(documents)
    assert response["totals"] == totals
    # Two ₹20 invoices less a ₹5 credit note: ₹35, taxed in Karnataka.
    assert _rows(response["files"]["b2cs"]) == [
        {
            "Type": "OE",
            "Place Of Supply": "29-Karnataka",
            "Rate": "18",
            "Applicable % of Tax Rate": "",
            "Taxable Value": totals["taxable"],
            "Cess Amount": "0.00",
            "E-Commerce GSTIN": "",
        }
    ]
    assert _rows(response["files"]["hsn_b2b"]) == []
    (hsn,) = _rows(response["files"]["hsn_b2c"])
    assert (hsn["Total Value"], hsn["Central Tax Amount"], hsn["State/UT Tax Amount"]) == (
        "35.00",
        totals["cgst"],
        totals["sgst"],
    )
    assert [
        (r["Sr. No. From"], r["Sr. No. To"], r["Total Number"])
        for r in _rows(response["files"]["docs"])
    ] == [
        (documents[0].number, documents[1].number, "2"),
        (documents[2].number, documents[2].number, "1"),
    ]
    assert _rows(response["files"]["b2b"]) == _rows(response["files"]["cdnr"]) == []


async def test_another_month_is_empty(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    await set_up(hass, config_entry, freezer)
    await pay(hass, standin, post_webhook)

    response = await export_tax(hass, "2026-10")

    assert response["documents"] == 0
    assert response["totals"] == dict.fromkeys(("taxable", "cgst", "sgst", "igst"), "0.00")


async def test_an_owner_without_gstin_gets_a_list_of_receipts(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    await set_up(hass, config_entry, freezer, tax={})
    await pay(hass, standin, post_webhook)

    response = await export_tax(hass)

    assert set(response["files"]) == {"receipts"}
    assert response["gstr1"] is False
    (row,) = _rows(response["files"]["receipts"])
    assert (row["Amount"], row["Refunded"]) == ("20.00", "0.00")
    assert row["Number"].startswith("INV/2627/R")
    assert response["totals"]["taxable"] == "0.00"


async def test_a_non_admin_is_refused_and_nothing_is_written(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    non_admin_user: MockUser,
    hass_admin_user: MockUser,
) -> None:
    await set_up(hass, config_entry, freezer)

    with pytest.raises(Unauthorized):
        await export_tax(hass, context=Context(user_id=non_admin_user.id))
    assert written_folders(hass) == []

    response = await export_tax(hass, context=Context(user_id=hass_admin_user.id))
    assert response["documents"] == 0


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "November", "2026-11-01", "1999-01"])
async def test_a_bad_month_is_refused(
    hass: HomeAssistant, config_entry: MockConfigEntry, freezer: FrozenDateTimeFactory, month: str
) -> None:
    await set_up(hass, config_entry, freezer)

    with pytest.raises(ServiceValidationError) as err:
        await export_tax(hass, month)

    assert err.value.translation_key == "invalid_month"
    assert err.value.translation_placeholders == {"month": month}
    assert written_folders(hass) == []


async def test_ten_thousand_documents_are_exported_and_counted(
    hass: HomeAssistant, config_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """A busy month: 10,000 invoices issued through the store in one change, then exported."""
    await set_up(hass, config_entry, freezer)
    store = config_entry.runtime_data.books.store
    settings = settings_of(config_entry.options)
    now = time.time()
    dues = tuple(
        SaleDue(f"pay_{n:014d}", f"s-{n:024d}", 2_000, now, Sold("bay-1", "Bay 1"), settings)
        for n in range(10_000)
    )
    await store.async_commit(Changes([], [], [], {}, documents=Dues(dues, "INV", now)))

    response = await export_tax(hass)

    assert response["documents"] == 10_000
    (docs,) = _rows(response["files"]["docs"])
    assert (docs["Sr. No. From"], docs["Sr. No. To"], docs["Total Number"]) == (
        "INV/2627/1",
        "INV/2627/10000",
        "10000",
    )
    (b2cs,) = _rows(response["files"]["b2cs"])
    # Each ₹20: 16.95 taxable, 1.52 CGST, 1.53 SGST.
    assert b2cs["Taxable Value"] == response["totals"]["taxable"] == "169500.00"
    assert (response["totals"]["cgst"], response["totals"]["sgst"]) == ("15200.00", "15300.00")
