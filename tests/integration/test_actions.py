"""Actions with response data, refunds and reconciliation of missed webhooks."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.qr_charging.const import (
    DOMAIN,
    EVENT_PAYMENT_RECEIVED,
    EVENT_REFUND,
    EVENT_SESSION_FAILED,
)
from devtools.razorpay_standin import RazorpayStandin

from .const import FIXED_AND_PER_MINUTE, PLAN_PRICE, PLUG
from .helpers import PostWebhook, create_link, export_sessions
from .pages_helpers import BAY_URL, Customer, assert_self_contained

pytestmark = pytest.mark.usefixtures("loaded_entry")


async def test_create_payment_link_response_and_request(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    before = time.time()
    link = await create_link(hass, plan="p30")

    assert link["amount"] == PLAN_PRICE
    assert link["currency"] == "INR"
    assert link["url"].startswith(standin.base_url)
    assert link["id"] in standin.links
    expire_by = dt_util.parse_datetime(link["expire_by"])
    assert expire_by is not None
    assert expire_by.timestamp() >= before + 15 * 60
    (call,) = standin.calls_to("POST", "/v1/payment_links")
    assert call.json["amount"] == PLAN_PRICE
    assert call.json["reference_id"] == link["session_id"]
    assert len(link["session_id"]) <= 40
    assert call.json["notes"] == {"bay": "bay-1", "plan": "p30", "session": link["session_id"]}


@pytest.mark.parametrize(
    ("data", "key"),
    [({"bay": "nope"}, "unknown_bay"), ({"bay": "bay-1", "plan": "p99"}, "unknown_plan")],
)
async def test_create_link_refuses_unknown_bay_or_plan(
    hass: HomeAssistant, standin: RazorpayStandin, data: dict[str, str], key: str
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "create_payment_link", data, blocking=True, return_response=True
        )
    assert err.value.translation_key == key
    assert standin.calls_to("POST", "/v1/payment_links") == []


async def test_create_link_refuses_a_top_up_past_the_bays_longest_session(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    """The owner's 4 hours run at bay-1 (its longest session): a half hour more would be
    refunded at payment, so the action makes no link, as the bay's page offers none."""
    await hass.services.async_call(
        DOMAIN, "start_session", {"bay": "bay-1", "minutes": 240}, blocking=True
    )
    await hass.async_block_till_done()

    with pytest.raises(ServiceValidationError) as err:
        await create_link(hass, plan="p30")
    assert err.value.translation_key == "too_long"
    assert err.value.translation_placeholders == {"bay": "bay-1", "max": "240"}
    assert standin.calls_to("POST", "/v1/payment_links") == []


async def test_create_link_razorpay_down(hass: HomeAssistant, standin: RazorpayStandin) -> None:
    standin.fail_next("/v1/payment_links", status=500, method="POST")
    with pytest.raises(HomeAssistantError) as err:
        await create_link(hass)
    assert err.value.translation_key == "razorpay_refused"


async def test_refund_once_then_webhook_settles(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    refunds = async_capture_events(hass, EVENT_REFUND)
    paid = standin.pay_link((await create_link(hass))["id"])
    await post_webhook(paid.payment_link_paid())
    standin.refund_status = "pending"  # settled later by its webhook

    response = await hass.services.async_call(
        DOMAIN,
        "refund",
        {"payment_id": paid.payment_id, "amount": 5},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["amount"] == 500
    (call,) = standin.calls_to("POST", f"/v1/payments/{paid.payment_id}/refund")
    assert call.headers["X-Refund-Idempotency"]
    assert call.json["amount"] == 500
    await hass.async_block_till_done()
    assert [e.data["amount"] for e in refunds] == [500]

    # More than what is left is refused before Razorpay is asked.
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN,
            "refund",
            {"payment_id": paid.payment_id, "amount": 16},
            blocking=True,
            return_response=True,
        )
    assert len(standin.calls_to("POST", f"/v1/payments/{paid.payment_id}/refund")) == 1

    settled = standin.settle_refund(str(response["refund_id"]), "failed")
    assert (await (await post_webhook(settled)).json())["outcome"] == "refund_failed"
    # A failed refund frees its amount again: the whole payment can now be refunded.
    response = await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": paid.payment_id}, blocking=True, return_response=True
    )
    assert response is not None
    assert response["amount"] == PLAN_PRICE


async def test_refund_unknown_payment(hass: HomeAssistant) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "refund", {"payment_id": "pay_nope"}, blocking=True, return_response=True
        )
    assert err.value.translation_key == "unknown_payment"


async def test_export_sessions_writes_csv(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    paid = standin.pay_link((await create_link(hass))["id"])
    await post_webhook(paid.order_paid())
    response = await hass.services.async_call(
        DOMAIN, "export_sessions", {}, blocking=True, return_response=True
    )
    assert response is not None
    path = Path(str(response["path"]))
    assert path.is_relative_to(Path(hass.config.config_dir))
    assert path.read_text(encoding="utf-8") == response["csv"]  # noqa: ASYNC240
    (row,) = await export_sessions(hass)
    assert row["payment_ids"] == paid.payment_id


async def test_reconcile_starts_a_missed_payment(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    received = async_capture_events(hass, EVENT_PAYMENT_RECEIVED)
    link = await create_link(hass)
    paid = standin.pay_link(link["id"])  # Razorpay's webhook never arrives.

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=6))
    await hass.async_block_till_done(wait_background_tasks=True)

    assert [e.data["payment_id"] for e in received] == [paid.payment_id]
    (row,) = await export_sessions(hass)
    assert row["session_id"] == link["session_id"]


async def test_a_payment_only_reconciliation_found_says_the_webhook_is_not_reaching_us(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    issue_registry: ir.IssueRegistry,
) -> None:
    missed = standin.pay_link((await create_link(hass))["id"])  # its webhook never arrives
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=6))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert (DOMAIN, "webhook_unreachable") in issue_registry.issues

    # The next signed delivery shows it works again.
    await post_webhook(missed.payment_captured())
    await hass.async_block_till_done()
    assert (DOMAIN, "webhook_unreachable") not in issue_registry.issues


async def test_a_webhook_silent_for_a_day_after_setup_is_reported(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry, freezer: FrozenDateTimeFactory
) -> None:
    freezer.tick(timedelta(hours=23))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert (DOMAIN, "webhook_unreachable") not in issue_registry.issues

    freezer.tick(timedelta(hours=1, minutes=6))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert (DOMAIN, "webhook_unreachable") in issue_registry.issues


async def test_reconcile_goes_past_a_link_razorpay_does_not_know(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    """A link of the test account after going live: refused with 400, the others go on."""
    unknown = await create_link(hass)
    link = await create_link(hass)
    paid = standin.pay_link(link["id"])
    standin.fail_next(f"/v1/payment_links/{unknown['id']}", status=400, method="GET")

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=6))
    await hass.async_block_till_done(wait_background_tasks=True)

    (row,) = await export_sessions(hass)
    assert (row["session_id"], row["payment_ids"]) == (link["session_id"], paid.payment_id)


async def test_reconcile_refunds_a_payment_found_too_late(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    link = await create_link(hass)
    paid = standin.pay_link(link["id"])
    standin.links[link["id"]]["payments"][0]["created_at"] -= 3600

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=6))
    await hass.async_block_till_done(wait_background_tasks=True)

    assert [e.data["reason"] for e in failed] == ["paid_too_late"]
    (call,) = standin.calls_to("POST", f"/v1/payments/{paid.payment_id}/refund")
    assert call.json["amount"] == PLAN_PRICE
    (row,) = await export_sessions(hass)
    assert (row["state"], row["refunded_paise"]) == ("refunded", str(PLAN_PRICE))


async def test_refund_refused_for_good_asks_the_owner(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    issue_registry: ir.IssueRegistry,
) -> None:
    refunds = async_capture_events(hass, EVENT_REFUND)
    paid = standin.pay_link((await create_link(hass))["id"])
    await post_webhook(paid.payment_link_paid())
    standin.fail_next(f"/v1/payments/{paid.payment_id}/refund", status=400)

    response = await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": paid.payment_id}, blocking=True, return_response=True
    )
    await hass.async_block_till_done()

    assert response is not None
    assert response["state"] == "failed"
    assert [e.data["state"] for e in refunds] == ["failed"]
    issues = [
        i for (d, i) in issue_registry.issues if d == DOMAIN and i.startswith("refund_failed_")
    ]
    assert len(issues) == 1
    # Not retried by reconciliation: it would fail the same way.
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=6))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(standin.calls_to("POST", f"/v1/payments/{paid.payment_id}/refund")) == 1


# 409: the same idempotency key is still being processed; 429: too many requests; 5xx.
@pytest.mark.parametrize("status", [409, 429, 500, 503])
async def test_passing_refund_failure_is_retried_by_reconcile(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    issue_registry: ir.IssueRegistry,
    status: int,
) -> None:
    paid = standin.pay_link((await create_link(hass))["id"])
    await post_webhook(paid.payment_link_paid())
    standin.fail_next(f"/v1/payments/{paid.payment_id}/refund", status=status)
    response = await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": paid.payment_id}, blocking=True, return_response=True
    )
    assert response is not None
    # Not an answer about the refund: it stays to be sent, and the owner is not alarmed.
    assert response["state"] == "requested"
    assert not [i for i in issue_registry.issues.values() if i.domain == DOMAIN]

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=6))
    await hass.async_block_till_done(wait_background_tasks=True)

    calls = standin.calls_to("POST", f"/v1/payments/{paid.payment_id}/refund")
    assert len(calls) == 2
    # The same idempotency key both times: Razorpay cannot refund twice.
    assert calls[0].headers["X-Refund-Idempotency"] == calls[1].headers["X-Refund-Idempotency"]


async def test_keys_that_stop_working_start_reauth(
    hass: HomeAssistant, standin: RazorpayStandin, loaded_entry: MockConfigEntry
) -> None:
    standin.key_secret = "rotated-in-the-dashboard"
    with pytest.raises(HomeAssistantError) as err:
        await create_link(hass)
    assert err.value.translation_key == "invalid_auth"
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]
    assert flows[0]["context"]["entry_id"] == loaded_entry.entry_id


async def test_pending_refund_without_its_webhook_is_asked_about(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    refunds = async_capture_events(hass, EVENT_REFUND)
    paid = standin.pay_link((await create_link(hass))["id"])
    await post_webhook(paid.payment_link_paid())
    standin.refund_status = "pending"
    response = await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": paid.payment_id}, blocking=True, return_response=True
    )
    assert response is not None
    standin.settle_refund(str(response["refund_id"]), "processed")  # its webhook is lost

    freezer.tick(timedelta(minutes=6))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [e.data["state"] for e in refunds] == ["pending"]  # too soon to ask

    freezer.tick(timedelta(minutes=30))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert [e.data["state"] for e in refunds] == ["pending", "processed"]
    path = f"/v1/payments/{paid.payment_id}/refunds/{response['refund_id']}"
    assert len(standin.calls_to("GET", path)) == 1


# -- who may move money -----------------------------------------------------------------------


async def _call_as(hass: HomeAssistant, user: MockUser, action: str, data: dict[str, str]) -> None:
    await hass.services.async_call(
        DOMAIN, action, data, blocking=True, return_response=True, context=Context(user_id=user.id)
    )


async def test_non_admins_cannot_give_power(
    hass: HomeAssistant, non_admin_user: MockUser, hass_admin_user: MockUser
) -> None:
    with pytest.raises(Unauthorized):
        await _call_as(hass, non_admin_user, "start_session", {"bay": "bay-1"})
    await hass.async_block_till_done()
    assert hass.states.get(PLUG).state == STATE_OFF  # type: ignore[union-attr]
    assert await export_sessions(hass) == []

    await _call_as(hass, hass_admin_user, "start_session", {"bay": "bay-1"})
    await hass.async_block_till_done()
    assert hass.states.get(PLUG).state == STATE_ON  # type: ignore[union-attr]


async def test_non_admins_cannot_refund_or_stop(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    non_admin_user: MockUser,
    hass_admin_user: MockUser,
) -> None:
    paid = standin.pay_link((await create_link(hass))["id"])
    await post_webhook(paid.payment_link_paid())
    await hass.async_block_till_done()
    refund_path = f"/v1/payments/{paid.payment_id}/refund"

    for action, data in (
        ("refund", {"payment_id": paid.payment_id}),
        ("stop_session", {"bay": "bay-1", "refund": "full"}),
    ):
        with pytest.raises(Unauthorized):
            await _call_as(hass, non_admin_user, action, data)
    await hass.async_block_till_done()
    assert standin.calls_to("POST", refund_path) == []
    assert hass.states.get(PLUG).state == STATE_ON  # type: ignore[union-attr]
    (row,) = await export_sessions(hass)
    assert row["refunded_paise"] == "0"

    await _call_as(hass, hass_admin_user, "refund", {"payment_id": paid.payment_id})
    assert len(standin.calls_to("POST", refund_path)) == 1


@pytest.mark.parametrize("bay_plans", [FIXED_AND_PER_MINUTE], ids=["fixed_and_per_minute"])
async def test_bay_links_action_and_poster(hass: HomeAssistant, customer: Customer) -> None:
    response = await hass.services.async_call(
        DOMAIN, "bay_links", {}, blocking=True, return_response=True
    )
    # The bay was stored by an older version: the entry's migration gave it a display token.
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    (bay,) = [s for s in entry.subentries.values() if s.subentry_type == "bay"]
    assert len(bay.data["display_token"]) > 16
    assert response == {
        "bays": {
            "bay-1": {
                "page_url": BAY_URL,
                "poster_url": f"{BAY_URL}&poster=a4",
                "display_url": f"{BAY_URL.split('?')[0]}?display={bay.data['display_token']}",
            }
        }
    }
    for size in ("a4", "a5"):
        poster = await customer.get(f"bay=bay-1&poster={size}")
        assert poster.status == 200
        assert_self_contained(poster)
        assert f"@page{{size:{size.upper()}" in poster.text
        assert "<svg" in poster.text
        assert "30 min for ₹20" in poster.text
        assert "₹0.50 per minute, 10 to 120 minutes" in poster.text
        assert "Scan this code with your phone&#39;s camera." in poster.text
        assert "यह कोड अपने फ़ोन के कैमरे से स्कैन करें।" in poster.text
        # The merchant's name (HA's location name until the owner enters Razorpay's).
        assert f"You pay <strong>{hass.config.location_name}</strong>" in poster.text
        assert "Check this name on the payment page before you pay." in poster.text
        assert "भुगतान करने से पहले भुगतान पेज पर यह नाम जाँच लें।" in poster.text
    assert (await customer.get("bay=bay-1&poster=a3")).status == 404
