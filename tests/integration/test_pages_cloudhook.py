"""The pages through a cloudhook, escaping, per-minute plans, static QR codes, the QR image."""

from __future__ import annotations

import io
from http import HTTPStatus
from typing import Any

import pytest
import zxingcpp
from homeassistant.components import webhook
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.util.aiohttp import MockRequest
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import RazorpayStandin

from .const import (
    BAY_SUBENTRY,
    PLAN_SUBENTRY,
    PLUG,
    RATE_PLAN_SUBENTRY,
    WEBHOOK_ID,
    WEBHOOK_SECRET,
    with_plans,
)
from .helpers import PostWebhook, entry_data, refund_amounts, settle, setup_plug
from .pages_helpers import (
    BAY_URL,
    EXTERNAL_URL,
    LINKS,
    Customer,
    assert_self_contained,
    callback_query,
    cloudhook,
    link_of,
    reconfigure_bay,
    static_qr_code,
)


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """Bay 1 offers the fixed half hour and ₹0.50 a minute for 10 to 120 minutes."""
    return [PLAN_SUBENTRY, RATE_PLAN_SUBENTRY]


async def test_the_same_answers_through_a_cloudhook(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    direct = await customer.get("bay=bay-1")
    page = await cloudhook(hass, "GET", "bay=bay-1")
    assert (page.status, page.content_type) == (200, "text/html")
    # The same page but for its ticket (each opening of a page has its own).
    assert page.text.replace(page.ticket(), "T") == direct.text.replace(direct.ticket(), "T")

    answer = await cloudhook(hass, "POST", "bay=bay-1", "plan=p30")
    assert (answer.status, answer.content_type) == (200, "text/html")
    assert 'http-equiv="refresh"' in answer.text  # no Location header: the page moves on itself
    (link_id,) = standin.links
    query = callback_query(standin, link_id)
    answer = await cloudhook(hass, "GET", query)
    assert answer.status == 200
    assert 'data-state="awaiting"' in answer.text

    answer = await cloudhook(hass, "GET", "bay=bay-1&format=json")
    assert (answer.status, answer.content_type) == (200, "application/json")
    assert '"state": "held"' in answer.text  # held for the customer paying
    assert (await cloudhook(hass, "GET", "bay=nope")).status == HTTPStatus.NOT_FOUND
    assert (await cloudhook(hass, "PUT", "bay=bay-1")).status == HTTPStatus.METHOD_NOT_ALLOWED
    answer = await cloudhook(hass, "POST", "bay=bay-1", "plan=p30&x=" + "a" * 4000)
    assert answer.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert len(standin.calls_to(*LINKS)) == 1


async def test_razorpays_webhook_through_a_cloudhook(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin
) -> None:
    # HA Cloud relays Razorpay's deliveries the same way: a MockRequest has no content_length
    # and hands out a new body reader each time it is asked (0.2 answered 200, did nothing).
    answer = await customer.pay_button("bay=bay-1")
    paid = standin.pay_link(link_of(standin, answer))
    delivery = paid.payment_link_paid()
    request = MockRequest(
        content=delivery.body,
        headers=delivery.headers(WEBHOOK_SECRET),
        method="POST",
        mock_source="cloud",
    )
    response = await webhook.async_handle_webhook(hass, WEBHOOK_ID, request)  # type: ignore[arg-type]
    await settle(hass)

    assert response.status == 200
    assert b'"outcome": "new_session"' in response.body  # type: ignore[operator]
    assert 'data-state="busy"' in (await customer.get("bay=bay-1")).text


XSS_BAY = '<script>alert("bay")</script>'
XSS_PLAN = '"><img src=x onerror=alert(1)>'


async def test_names_from_the_owner_are_escaped(
    hass: HomeAssistant, standin: RazorpayStandin, hass_client_no_auth: ClientSessionGenerator
) -> None:
    plan = {**PLAN_SUBENTRY, "data": {**PLAN_SUBENTRY["data"], "name": XSS_PLAN}}
    bay = with_plans(BAY_SUBENTRY, [plan])
    bay = {**bay, "data": {**bay["data"], "name": XSS_BAY}}
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[plan, bay],
        minor_version=2,
    )
    await setup_plug(hass)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await hass.config.async_update(external_url=EXTERNAL_URL)
    customer = Customer(hass, hass_client_no_auth)

    pages = [
        await customer.get("bay=bay-1"),
        await customer.get("bay=bay-1&poster=a4"),
        await customer.pay_button("bay=bay-1"),
    ]
    pages.append(await customer.get(callback_query(standin, link_of(standin, pages[2]))))
    for page in pages:
        assert "<script>alert" not in page.text
        assert "<img" not in page.text
    assert "&lt;script&gt;alert(&#34;bay&#34;)&lt;/script&gt;" in pages[0].text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in pages[0].text
    assert "&lt;script&gt;alert" in pages[1].text


async def test_a_per_minute_plan_is_priced_by_the_server(
    customer: Customer, standin: RazorpayStandin
) -> None:
    page = await customer.get("bay=bay-1")
    assert "₹0.50 per minute, 10 to 120 minutes" in page.text
    assert 'type="number" name="minutes" min="10" max="120"' in page.text

    for minutes in ("9", "121", "ten", "-5", "99999999"):
        answer = await customer.pay_button("bay=bay-1", plan="pm", minutes=minutes)
        assert answer.status == 400, minutes
        assert "Choose from 10 to 120 minutes." in answer.text
    assert standin.calls_to(*LINKS) == []

    # A price sent by the client is ignored: 45 minutes cost what the plan says.
    ticket = page.ticket()
    answer = await customer.pay_button(
        "bay=bay-1", plan="pm", minutes="45", amount="100", ticket=ticket
    )
    assert answer.status == 200
    (call,) = standin.calls_to(*LINKS)
    assert call.json["amount"] == 2250
    assert call.json["notes"]["plan"] == "pm"
    assert "pay ₹22.50" in answer.text.lower()
    # The same page again goes to its link: the bay is held for it; no other link is made.
    again = await customer.pay_button("bay=bay-1", plan="pm", minutes="45", ticket=ticket)
    assert link_of(standin, again) == link_of(standin, answer)
    assert (await customer.pay_button("bay=bay-1", plan="pm", minutes="46")).status == 409
    assert len(standin.calls_to(*LINKS)) == 1


async def test_the_image_is_the_bay_pages_qr_code_or_an_out_of_order_sign(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    hass_client: ClientSessionGenerator,
) -> None:
    (state,) = hass.states.async_all("image")
    client = await hass_client()

    async def picture() -> tuple[str, bytes]:
        current = hass.states.get(state.entity_id)
        assert current is not None
        response = await client.get(current.attributes["entity_picture"])
        assert response.status == 200
        assert response.content_type == "image/png"
        return current.state, await response.read()

    shown, png = await picture()
    (code,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert code.text == BAY_URL
    assert await picture() == (shown, png)  # it never changes while the bay is in order
    assert standin.calls_to(*LINKS) == []

    hass.states.async_set(PLUG, STATE_UNAVAILABLE)
    await settle(hass)
    changed, sign = await picture()
    assert changed != shown
    assert zxingcpp.read_barcodes(Image.open(io.BytesIO(sign))) == []
    assert hass.states.get(state.entity_id).state != STATE_UNAVAILABLE  # type: ignore[union-attr]


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


# -- the static UPI QR code -------------------------------------------------------------------


async def _turn_on_static_qr(hass: HomeAssistant) -> tuple[Any, dict[str, Any]]:
    """Tick "Static UPI QR code" in bay 1's form; return the flow's answer and the bay's data."""
    return await reconfigure_bay(hass, static_qr=True)


async def test_static_qr_code_buys_time_at_the_rate(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    qr_id = await static_qr_code(hass)
    (call,) = standin.calls_to("POST", "/v1/payments/qr_codes")
    assert call.json | {"notes": None} == {
        "type": "upi_qr",
        "name": "Bay 1",
        "usage": "multiple_use",
        "fixed_amount": False,
        "description": "Bay 1",
        "notes": None,
    }

    paid = standin.pay_qr_code(qr_id, 1500)  # ₹15 at ₹0.50 a minute: 30 minutes
    assert (await post_webhook(paid.qr_code_credited())).status == 200
    assert (await post_webhook(paid.payment_captured())).status == 200
    await settle(hass)

    runner = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.bays.runners["bay-1"]
    assert runner.session is not None
    assert runner.session.seconds == 1800
    assert runner.session.payment_ids == [paid.payment_id]
    assert 'data-state="busy"' in (await customer.get("bay=bay-1")).text

    # A second payment to the QR code while the bay is busy: its payer saw no page.
    again = standin.pay_qr_code(qr_id, 1000)
    assert (await post_webhook(again.payment_captured())).status == 200  # notes find the bay
    await settle(hass)
    assert refund_amounts(standin, again.payment_id) == [1000]
    assert runner.session.seconds == 1800


async def test_static_qr_code_below_the_minimum_is_refunded(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    qr_id = await static_qr_code(hass)
    small = standin.pay_qr_code(qr_id, 400)  # 8 minutes' worth; the plan sells 10 at least
    assert (await post_webhook(small.qr_code_credited())).status == 200
    await settle(hass)

    assert refund_amounts(standin, small.payment_id) == [400]
    (refund,) = standin.refunds.values()
    assert refund["notes"]["reason"] == "below_minimum"
    assert 'data-state="free"' in (await customer.get("bay=bay-1")).text


async def test_an_account_without_qr_codes_is_told_on_the_form(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin
) -> None:
    standin.refuse_qr_codes = True

    result, data = await _turn_on_static_qr(hass)

    assert result["errors"] == {"static_qr": "static_qr_unavailable"}
    assert "qr_code_id" not in data
