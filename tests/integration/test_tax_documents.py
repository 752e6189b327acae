"""Receipts and GST invoices issued by the ledger, through the signed webhook and the stand-in.

Each payment that opens or tops up a session gets its invoice (receipt without a GSTIN), each
refund Razorpay takes a credit note against it, numbered in the payment's or refund's own
transaction: a duplicate delivery issues nothing twice, a storage fault nothing at all, a
restart continues the series. Documents are read as the pages and the export read them
(``LedgerStore.async_documents``).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.invoices import Document
from custom_components.qr_charging.tax import (
    DocumentKind,
    credit_split,
    financial_year,
    parse_recipient,
    split,
)
from devtools.razorpay_standin import PaidPayment, RazorpayStandin

from .const import PLAN_PRICE, PLUG
from .helpers import PostWebhook, create_link, pay, refund_amounts, settle, setup_plug, tick
from .storage_helpers import failing_writes
from .tax_helpers import MAHARASHTRA_CUSTOMER, OWNER_GSTIN, OWNER_NAME, tax_options


async def _set_up(
    hass: HomeAssistant, config_entry: MockConfigEntry, tax: dict[str, Any] | None = None
) -> None:
    """The account with bay-1 on a plug, its owner registered for GST (``tax_options``)."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={**config_entry.options, "tax": tax or tax_options()}
    )
    await setup_plug(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()


async def _documents(hass: HomeAssistant, paid: PaidPayment) -> list[Document]:
    """The documents of the session ``paid`` bought."""
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    return await entry.runtime_data.books.store.async_documents(paid.link["reference_id"])


def _numbers(documents: list[Document]) -> list[str]:
    return [d.number for d in documents]


def _year() -> str:
    return financial_year(time.time())


async def test_a_payment_gets_its_invoice_and_a_top_up_its_own(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    await _set_up(hass, config_entry)
    first = await pay(hass, standin, post_webhook)
    await tick(hass, freezer, 600)
    second = await pay(hass, standin, post_webhook)

    invoice, top_up = await _documents(hass, first)
    year = _year()
    assert _numbers([invoice, top_up]) == [f"INV/{year}/1", f"INV/{year}/2"]
    assert (invoice.payment_id, top_up.payment_id) == (
        first.payment_id,
        second.payment_id,
    )
    assert {top_up.session_id} == {invoice.session_id}
    assert invoice.kind is DocumentKind.INVOICE
    # ₹20 at 18 %, within Karnataka: 16.95 taxable, 1.52 CGST and 1.53 SGST.
    assert invoice.amounts == split(PLAN_PRICE, 1800, inter_state=False)
    assert (invoice.amounts.taxable, invoice.amounts.cgst, invoice.amounts.sgst) == (1695, 152, 153)
    assert (invoice.supplier_name, invoice.supplier_gstin, invoice.place_of_supply) == (
        OWNER_NAME,
        OWNER_GSTIN,
        "29",
    )
    assert (invoice.sac, invoice.rate_bp, invoice.recipient) == ("999799", 1800, None)
    assert (invoice.sold.bay_id, invoice.sold.seconds, invoice.sold.band) == ("bay-1", 1800, 100)


@pytest.mark.usefixtures("loaded_entry")
async def test_an_owner_without_a_gstin_issues_receipts(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    paid = await pay(hass, standin, post_webhook)
    (receipt,) = await _documents(hass, paid)
    assert (receipt.kind, receipt.number) == (DocumentKind.RECEIPT, f"INV/{_year()}/R1")
    assert (receipt.amounts.total, receipt.amounts.taxable, receipt.amounts.tax) == (2000, 2000, 0)


async def test_a_failed_start_is_credited_in_full(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    config_entry: MockConfigEntry,
) -> None:
    await _set_up(hass, config_entry)
    hass.states.async_set(PLUG, "unavailable")
    await hass.async_block_till_done()

    paid = await pay(hass, standin, post_webhook)

    assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]
    invoice, note = await _documents(hass, paid)
    assert (note.kind, note.number, note.against) == (
        DocumentKind.CREDIT_NOTE,
        f"INV/{_year()}/C1",
        invoice.number,
    )
    assert note.amounts == invoice.amounts


async def test_a_power_cut_is_credited_its_unserved_share(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    await _set_up(hass, config_entry)
    paid = await pay(hass, standin, post_webhook)
    await tick(hass, freezer, 1200)
    await hass.services.async_call(
        "input_boolean", "turn_off", {"entity_id": "input_boolean.plug"}, blocking=True
    )
    await settle(hass)

    assert refund_amounts(standin, paid.payment_id) == [666]
    invoice, note = await _documents(hass, paid)
    assert (note.against, note.amounts) == (
        invoice.number,
        credit_split(0, 666, 1800, inter_state=False),
    )


async def _refund(hass: HomeAssistant, payment_id: str, **amount: int) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN,
        "refund",
        {"payment_id": payment_id, **amount},
        blocking=True,
        return_response=True,
    )
    await hass.async_block_till_done()
    assert isinstance(response, dict)
    return response


async def test_the_owners_refund_is_credited_once_razorpay_takes_it(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    config_entry: MockConfigEntry,
) -> None:
    """A refund Razorpay refuses for good leaves the money with the owner: no credit note
    (one was issued when the refund was only recorded). The owner's next refund is credited."""
    await _set_up(hass, config_entry)
    paid = await pay(hass, standin, post_webhook)
    payment_id = paid.payment_id
    standin.fail_next(f"/v1/payments/{payment_id}/refund", status=400)

    assert (await _refund(hass, payment_id, amount=5))["state"] == "failed"
    assert _numbers(await _documents(hass, paid)) == [f"INV/{_year()}/1"]

    assert (await _refund(hass, payment_id, amount=5))["state"] == "processed"
    invoice, note = await _documents(hass, paid)
    assert (note.kind, note.against, note.amounts.total) == (
        DocumentKind.CREDIT_NOTE,
        invoice.number,
        500,
    )


async def test_a_refund_taken_then_refused_and_made_again_is_credited_once(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    config_entry: MockConfigEntry,
) -> None:
    """Razorpay takes a ₹5 refund (pending: its credit note is issued), then refuses it
    (refund.failed); the owner refunds again with the action. The customer gets ₹5 once, so
    ₹5 is credited once: the retry is covered by the first note (docs/tax.md)."""
    await _set_up(hass, config_entry)
    standin.refund_status = "pending"
    paid = await pay(hass, standin, post_webhook)
    first = await _refund(hass, paid.payment_id, amount=5)
    assert first["state"] == "pending"
    await post_webhook(standin.settle_refund(str(first["refund_id"]), "failed"))
    await settle(hass)

    standin.refund_status = "processed"
    assert (await _refund(hass, paid.payment_id, amount=5))["state"] == "processed"

    invoice, note = await _documents(hass, paid)
    assert (note.kind, note.against, note.amounts.total) == (
        DocumentKind.CREDIT_NOTE,
        invoice.number,
        500,
    )
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    assert entry.runtime_data.tax_month.totals.total == PLAN_PRICE - 500


async def test_a_number_past_16_characters_never_refuses_the_payment(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 4-character prefix leaves 999,999 invoice numbers a year. The next payment is
    accepted (200) and its session starts, without an invoice, and the owner is told at
    ERROR to shorten the prefix (it used to raise in the payment's transaction: 503 forever)."""
    await _set_up(hass, config_entry, tax_options(prefix="ABCD"))
    await pay(hass, standin, post_webhook)
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    year = _year()
    # The year so far: the invoice issued was the 999,999th (the ledger's file, as stored).
    with sqlite3.connect(hass.config.path(".storage", f"qr_charging.{entry.entry_id}.db")) as db:
        db.execute(
            "UPDATE documents SET serial = 999999, number = ? WHERE serial = 1",
            (f"ABCD/{year}/999999",),
        )
    await tick(hass, freezer, 3600)  # the first session is over

    paid = standin.pay_link((await create_link(hass))["id"])
    response = await post_webhook(paid.payment_link_paid())
    await settle(hass)

    assert response.status == 200
    assert hass.states.get(PLUG).state == "on"  # charging started
    assert await _documents(hass, paid) == []
    assert f"ABCD/{year}/1000000" in caplog.text
    assert "shorter prefix" in caplog.text


async def test_a_refund_after_a_b2b_request_credits_the_b2b_invoice(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    config_entry: MockConfigEntry,
) -> None:
    await _set_up(hass, config_entry)
    paid = await pay(hass, standin, post_webhook)
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    hub = entry.runtime_data
    customer = parse_recipient(MAHARASHTRA_CUSTOMER, "Acme Fleet", "Pune")
    await hub.books.async_b2b(paid.payment_id, customer, hub.tax)

    await _refund(hass, paid.payment_id)

    b2c, b2b_credit, b2b_invoice, note = await _documents(hass, paid)
    assert (b2b_credit.against, b2b_invoice.recipient) == (b2c.number, customer)
    # IGST: a Maharashtra customer of a Karnataka supplier; credited whole at the same split.
    assert (note.against, note.amounts) == (b2b_invoice.number, b2b_invoice.amounts)
    assert note.amounts.igst == note.amounts.tax > 0


async def test_a_duplicate_delivery_issues_nothing_twice(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    config_entry: MockConfigEntry,
) -> None:
    await _set_up(hass, config_entry)
    paid = standin.pay_link((await create_link(hass))["id"])
    for delivery in (paid.payment_link_paid(), paid.payment_link_paid(), paid.payment_captured()):
        assert (await post_webhook(delivery)).status == 200
        await settle(hass)
    assert _numbers(await _documents(hass, paid)) == [f"INV/{_year()}/1"]


async def test_a_storage_fault_issues_nothing_and_the_redelivery_the_same_number(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    config_entry: MockConfigEntry,
) -> None:
    await _set_up(hass, config_entry)
    paid = standin.pay_link((await create_link(hass))["id"])
    delivery = paid.payment_link_paid()
    with failing_writes():
        assert (await post_webhook(delivery)).status == 503
        await settle(hass)
    assert await _documents(hass, paid) == []

    assert (await post_webhook(delivery)).status == 200
    await settle(hass)
    assert _numbers(await _documents(hass, paid)) == [f"INV/{_year()}/1"]


async def test_a_restart_continues_the_series(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    await _set_up(hass, config_entry)
    first = await pay(hass, standin, post_webhook)
    await _refund(hass, first.payment_id, amount=2)
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    await tick(hass, freezer, 60)

    await pay(hass, standin, post_webhook)
    await _refund(hass, first.payment_id, amount=3)

    year = _year()
    assert _numbers(await _documents(hass, first)) == [
        f"INV/{year}/1",
        f"INV/{year}/C1",
        f"INV/{year}/2",
        f"INV/{year}/C2",
    ]
