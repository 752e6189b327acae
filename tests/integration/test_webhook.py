"""The signed Razorpay webhook, through HTTP, against the ledger's visible effects."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.qr_charging.const import (
    DOMAIN,
    EVENT_PAYMENT_RECEIVED,
    EVENT_SESSION_FAILED,
    MAX_WEBHOOK_BODY,
)
from devtools.razorpay_standin import RazorpayStandin
from devtools.razorpay_standin.fixtures import Webhook, load, new_id, sign, strip_prefix

from .const import PLAN_PRICE, WEBHOOK_SECRET
from .const import WEBHOOK_SECRET as SECRET
from .helpers import PostWebhook, altered, create_link, export_sessions

pytestmark = pytest.mark.usefixtures("loaded_entry")


async def _paid(hass: HomeAssistant, standin: RazorpayStandin) -> Any:
    link = await create_link(hass)
    return standin.pay_link(link["id"])


async def test_paid_link_opens_one_session_and_tells(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    received = async_capture_events(hass, EVENT_PAYMENT_RECEIVED)
    link = await create_link(hass)
    paid = standin.pay_link(link["id"])

    response = await post_webhook(paid.payment_link_paid())

    assert response.status == 200
    assert (await response.json())["outcome"] == "new_session"
    await hass.async_block_till_done()
    assert [e.data for e in received] == [
        {
            "entry_id": received[0].data["entry_id"],
            "bay": "bay-1",
            "plan": "p30",
            "amount": PLAN_PRICE,
            "currency": "INR",
            "payment_id": paid.payment_id,
            "session_id": link["session_id"],
        }
    ]
    sessions = await export_sessions(hass)
    assert [(s["session_id"], s["bay_id"], s["paid_paise"], s["seconds"]) for s in sessions] == [
        (link["session_id"], "bay-1", str(PLAN_PRICE), "1800")
    ]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
async def test_three_events_in_any_order_make_one_session(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    order: tuple[int, ...],
) -> None:
    received = async_capture_events(hass, EVENT_PAYMENT_RECEIVED)
    paid = await _paid(hass, standin)
    events = paid.webhooks()
    outcomes = []
    for index in order:
        response = await post_webhook(events[index])
        assert response.status == 200
        outcomes.append((await response.json())["outcome"])
    await hass.async_block_till_done()
    assert outcomes.count("new_session") == 1
    assert len(received) == 1
    assert len(await export_sessions(hass)) == 1


async def test_same_event_five_times(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    received = async_capture_events(hass, EVENT_PAYMENT_RECEIVED)
    paid = await _paid(hass, standin)
    outcomes = []
    for _ in range(5):
        response = await post_webhook(paid.payment_captured())
        assert response.status == 200
        outcomes.append((await response.json())["outcome"])
    await hass.async_block_till_done()
    assert outcomes == ["new_session"] + ["duplicate_delivery"] * 4
    assert len(received) == 1


async def test_twenty_concurrent_deliveries_one_session(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    received = async_capture_events(hass, EVENT_PAYMENT_RECEIVED)
    paid = await _paid(hass, standin)
    events = paid.webhooks()
    responses = await asyncio.gather(*(post_webhook(events[i % 3]) for i in range(20)))
    outcomes = [(await r.json())["outcome"] for r in responses]
    await hass.async_block_till_done()
    assert {r.status for r in responses} == {200}
    assert outcomes.count("new_session") == 1
    assert len(received) == 1
    assert len(await export_sessions(hass)) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Razorpay-Signature": "0" * 64},
        {"X-Razorpay-Signature": sign(b"another body", WEBHOOK_SECRET)},
        {"X-Razorpay-Signature": "not hex at all"},
        {"X-Razorpay-Signature": "é" * 64},
    ],
    ids=["missing", "zeros", "other-body", "garbage", "non-ascii"],
)
async def test_bad_signature_is_401_and_records_nothing(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    headers: dict[str, str],
) -> None:
    paid = await _paid(hass, standin)
    good = paid.payment_link_paid()
    forged = {"X-Razorpay-Event-Id": good.event_id} | headers

    response = await post_webhook(good, headers=forged)

    assert response.status == 401
    assert await export_sessions(hass) == []
    # The event id was not remembered: the genuine delivery still counts.
    assert (await (await post_webhook(good)).json())["outcome"] == "new_session"


async def test_signed_with_another_secret_is_401(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    paid = await _paid(hass, standin)
    response = await post_webhook(
        paid.payment_link_paid(), headers=paid.payment_link_paid().headers("other")
    )
    assert response.status == 401
    assert await export_sessions(hass) == []


async def test_oversized_body_is_413(hass: HomeAssistant, post_webhook: PostWebhook) -> None:
    body = b'{"event": "payment.captured", "pad": "' + b"x" * MAX_WEBHOOK_BODY + b'"}'
    response = await post_webhook(
        body=body, headers={"X-Razorpay-Signature": sign(body, WEBHOOK_SECRET)}
    )
    assert response.status == 413
    assert await export_sessions(hass) == []


async def test_chunked_body_is_cut_at_the_limit(
    hass: HomeAssistant, post_webhook: PostWebhook
) -> None:
    # Chunked (no Content-Length) and never finished: only a read that stops at the limit
    # can answer at all, rather than wait for (up to 16 MiB of) the rest.
    rest = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        yield b'{"pad": "' + b"x" * MAX_WEBHOOK_BODY
        await rest.wait()

    try:
        async with asyncio.timeout(10):
            response = await post_webhook(body=endless(), headers={"X-Razorpay-Signature": "0"})
        assert response.status == 413
        assert (await response.json())["outcome"] == "too_large"
    finally:
        rest.set()
    assert await export_sessions(hass) == []


async def test_unparsable_json_is_400(hass: HomeAssistant, post_webhook: PostWebhook) -> None:
    body = b'{"event": "payment.captured", '
    response = await post_webhook(
        body=body, headers={"X-Razorpay-Signature": sign(body, WEBHOOK_SECRET)}
    )
    assert response.status == 400


async def test_signed_but_unreadable_event_is_200_and_recorded_once(
    hass: HomeAssistant, post_webhook: PostWebhook
) -> None:
    body = json.dumps(
        {"event": "payment.captured", "payload": {"payment": {"entity": {}}}}
    ).encode()
    headers = {"X-Razorpay-Signature": sign(body, WEBHOOK_SECRET), "X-Razorpay-Event-Id": "evt1"}
    first = await post_webhook(body=body, headers=headers)
    second = await post_webhook(body=body, headers=headers)
    assert (first.status, (await first.json())["outcome"]) == (200, "unusable")
    assert (second.status, (await second.json())["outcome"]) == (200, "duplicate_delivery")


@pytest.mark.parametrize(
    ("change", "problem"),
    [({"amount": PLAN_PRICE - 100}, "amount"), ({"currency": "USD"}, "currency")],
)
async def test_wrong_amount_or_currency_starts_nothing_and_asks_for_attention(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    issue_registry: ir.IssueRegistry,
    change: dict[str, Any],
    problem: str,
) -> None:
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    received = async_capture_events(hass, EVENT_PAYMENT_RECEIVED)
    paid = await _paid(hass, standin)
    wrong = altered(paid.payment_captured(), change)

    response = await post_webhook(wrong)

    assert (response.status, (await response.json())["outcome"]) == (200, "mismatch")
    await hass.async_block_till_done()
    assert received == []
    assert await export_sessions(hass) == []
    assert [(e.data["payment_ids"], e.data["reason"]) for e in failed] == [
        ([paid.payment_id], "payment_mismatch")
    ]
    assert problem in failed[0].data["detail"]
    issue = issue_registry.async_get_issue(DOMAIN, f"payment_attention_{paid.payment_id}")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["bay"] == "bay-1"
    # Later, correct-looking events for the same payment do not start it either.
    for webhook in paid.webhooks():
        assert (await (await post_webhook(webhook)).json())["outcome"] == "duplicate"
    assert await export_sessions(hass) == []
    # Once the owner refunds it in full, the attention notice goes away.
    await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": paid.payment_id}, blocking=True, return_response=True
    )
    assert issue_registry.async_get_issue(DOMAIN, f"payment_attention_{paid.payment_id}") is None


async def test_payment_for_a_link_we_did_not_create(
    hass: HomeAssistant, post_webhook: PostWebhook
) -> None:
    body = json.dumps(load("webhooks/payment_link.paid__payment_link_paid_upi.json")).encode()
    response = await post_webhook(Webhook("payment_link.paid", strip_prefix(new_id("evt")), body))
    assert (response.status, (await response.json())["outcome"]) == (200, "unmatched")
    assert await export_sessions(hass) == []


@pytest.mark.parametrize(
    "fixture",
    [
        "qr_code.created__qr_code_created",
        "payment.failed__upi",
        "refund.created__normal_refunds",
        "payment_link.expired__payment_link_expired_standard",
    ],
)
async def test_events_we_do_not_use_are_200(
    hass: HomeAssistant, post_webhook: PostWebhook, fixture: str
) -> None:
    body = json.dumps(load(f"webhooks/{fixture}.json")).encode()
    response = await post_webhook(Webhook(fixture, strip_prefix(new_id("evt")), body))
    assert response.status == 200
    assert (await response.json())["outcome"] in {"ignored", "not_captured", "refund_not_ours"}
    assert await export_sessions(hass) == []


async def test_ledger_survives_restart(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    loaded_entry: MockConfigEntry,
) -> None:
    paid = await _paid(hass, standin)
    assert (await (await post_webhook(paid.payment_link_paid())).json())["outcome"] == "new_session"

    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    assert await hass.config_entries.async_setup(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED

    sessions = await export_sessions(hass)
    assert len(sessions) == 1
    # Both the event id and the payment id were remembered across the restart.
    assert (await (await post_webhook(paid.payment_link_paid())).json())["outcome"] == (
        "duplicate_delivery"
    )
    assert (await (await post_webhook(paid.order_paid())).json())["outcome"] == "duplicate"


@pytest.mark.usefixtures("loaded_entry")
async def test_a_signed_payment_of_an_absurd_amount_is_recorded_as_unusable(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    """Found by fuzzing the webhook (test_fuzz_webhook.py).

    An integer SQLite cannot hold (an amount of 10**30 paise) raised OverflowError out of the
    ledger's write; HA's webhook component answered that with an empty 200, so the delivery
    was neither stored nor delivered again.
    """
    paid = standin.pay_link((await create_link(hass))["id"])
    payload = paid.payment_link_paid().payload
    payload["payload"]["payment"]["entity"]["amount"] = 10**30
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Razorpay-Signature": sign(body, SECRET)}

    response = await post_webhook(body=body, headers=headers)

    assert response.status == 200
    assert (await response.json())["outcome"] == "unusable"
    assert await export_sessions(hass) == []
    # The genuine delivery of the payment still starts its session.
    response = await post_webhook(paid.payment_captured())
    assert (await response.json())["outcome"] == "new_session"
