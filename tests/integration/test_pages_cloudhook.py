"""The customer's pages and Razorpay's webhook through a cloudhook (Home Assistant Cloud)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from homeassistant.components import webhook
from homeassistant.core import HomeAssistant
from homeassistant.util.aiohttp import MockRequest

from devtools.razorpay_standin import RazorpayStandin

from .const import FIXED_AND_PER_MINUTE, WEBHOOK_ID, WEBHOOK_SECRET
from .helpers import PostWebhook, settle
from .pages_helpers import LINKS, Customer, callback_query, cloudhook, link_of


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """Bay 1 offers the fixed half hour and ₹0.50 a minute for 10 to 120 minutes."""
    return FIXED_AND_PER_MINUTE


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


# -- the static UPI QR code -------------------------------------------------------------------
