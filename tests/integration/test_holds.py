"""The bay held while a customer pays: the holder's own page, and holds and links rationed.

A hold costs nothing to take, so a script (or a prankster) could keep a bay "someone is
paying" for everyone; these tests are that script.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.holds import (
    LINK_WINDOW_S,
    LINKS_PER_CLIENT,
    LINKS_PER_WINDOW,
    UNPAID_HOLDS,
)
from custom_components.qr_charging.intents import START
from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_SUBENTRY, plan_subentry
from .helpers import PostWebhook, refund_amounts, settle
from .pages_helpers import LINKS, Answer, Customer, edit_bay, link_of, pay_link


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """Bay 1 offers half an hour for ₹20 and an hour for ₹35."""
    return [PLAN_SUBENTRY, plan_subentry("p60", 60, 3500)]


async def _state(customer: Customer, query: str = "bay=bay-1") -> str:
    match = re.search(r'data-state="(\w+)"', (await customer.get(query)).text)
    assert match is not None
    return match.group(1)


async def _cancel(customer: Customer, standin: RazorpayStandin, answer: Answer) -> None:
    """The customer cancels on their payment's page (linked from the redirect page)."""
    query = answer.payers_page()
    assert query is not None
    cancelled = await customer.post(query, {"cancel": "1"})
    assert cancelled.status == 200


async def test_a_link_of_the_shortest_hold_is_made_with_razorpays_clock_ahead(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin
) -> None:
    await edit_bay(hass, hold_minutes=15)
    # Razorpay's clock, or the way there, is some seconds ahead of Home Assistant's.
    standin.clock_ahead_s = 30

    answer = await customer.open_and_pay()

    assert answer.status == 200
    assert await _state(customer) == "held"


async def test_the_holders_own_page_is_not_told_someone_is_paying(
    customer: Customer, standin: RazorpayStandin
) -> None:
    ticket = (await customer.get("bay=bay-1")).ticket()
    assert (await customer.pay_button("bay=bay-1", ticket=ticket)).status == 200

    mine = await customer.get(f"bay=bay-1&ticket={ticket}")
    assert 'data-state="free"' in mine.text
    # What its script polls (it reloads the page when the state differs from what it shows).
    poll = re.search(r"fetch\((\"[^\"]+\")", mine.text)
    assert poll is not None
    polled = await customer.get(json.loads(poll.group(1)).split("?", 1)[1])
    assert json.loads(polled.text)["state"] == "free"
    assert json.loads((await customer.get("bay=bay-1&format=json")).text)["state"] == "held"


async def test_the_holder_choosing_again_gets_a_new_link_and_keeps_the_bay(
    customer: Customer, standin: RazorpayStandin
) -> None:
    ticket = (await customer.get("bay=bay-1")).ticket()
    first = link_of(standin, await customer.pay_button("bay=bay-1", "p30", ticket=ticket))

    again = await customer.pay_button("bay=bay-1", "p60", ticket=ticket)

    second = link_of(standin, again)
    assert second != first
    assert standin.links[first]["status"] == "cancelled"
    assert standin.links[second]["amount"] == 3500
    assert await _state(customer) == "held"
    # The same choice once more: the same link, no new one.
    made = len(standin.calls_to(*LINKS))
    assert link_of(standin, await customer.pay_button("bay=bay-1", "p60", ticket=ticket)) == second
    assert len(standin.calls_to(*LINKS)) == made


async def test_holds_that_end_unpaid_in_a_row_stop_holding_until_a_session_is_served(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    # A script: no page, no ticket, through the cloudhook (no address: no client's share).
    tap = {"via": "cloudhook", "method": "POST", "query": "bay=bay-1", "form": {"plan": "p30"}}
    for _ in range(UNPAID_HOLDS):
        taken = await customer.send(**tap)
        assert taken.status == 200
        assert await _state(customer) == "held"
        await _cancel(customer, standin, taken)

    # The bay now sells without holding: the others still see it free and can pay.
    assert (await customer.send(**tap)).status == 200
    assert await _state(customer) == "free"
    other = await customer.open_and_pay()
    assert other.status == 200
    paid = await pay_link(hass, standin, post_webhook, link_of(standin, other))
    assert refund_amounts(standin, paid.payment_id) == []
    assert await _state(customer) == "busy"

    # A session was served: the next customer holds the bay again.
    await hass.services.async_call(
        DOMAIN, "stop_session", {"bay": "bay-1", "refund": "none"}, blocking=True
    )
    await settle(hass)
    assert (await customer.open_and_pay()).status == 200
    assert await _state(customer) == "held"


async def test_a_bay_page_makes_only_so_many_links_in_a_while(
    customer: Customer, standin: RazorpayStandin, freezer: FrozenDateTimeFactory
) -> None:
    # One address: its share of the bay's links.
    for _ in range(LINKS_PER_CLIENT):
        made = await customer.pay_button("bay=bay-1")
        assert made.status == 200
        await _cancel(customer, standin, made)
    assert (await customer.pay_button("bay=bay-1")).status == 429
    # No address (the cloudhook): the rest of the bay's.
    for _ in range(LINKS_PER_WINDOW - LINKS_PER_CLIENT):
        made = await customer.open_and_pay(via="cloudhook")
        assert made.status == 200
        await _cancel(customer, standin, made)
    count = len(standin.calls_to(*LINKS))

    refused = await customer.open_and_pay(via="cloudhook")

    assert refused.status == 429
    assert len(standin.calls_to(*LINKS)) == count
    freezer.tick(timedelta(seconds=LINK_WINDOW_S))
    assert (await customer.pay_button("bay=bay-1")).status == 200


async def test_links_made_before_holds_existed_hold_nothing(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    loaded_entry: MockConfigEntry,
) -> None:
    """Open links of 0.2's pages (several per bay, one per plan) are no hold: first paid wins."""
    payments = loaded_entry.runtime_data.payments
    first = await payments.async_create_link("bay-1", "p30", intent=START)
    await payments.async_create_link("bay-1", "p60", intent=START)
    assert await _state(customer) == "free"

    paid = await pay_link(hass, standin, post_webhook, first.link.link_id)

    assert refund_amounts(standin, paid.payment_id) == []
    assert await _state(customer) == "busy"


async def test_only_an_admin_is_given_a_displays_address(
    hass: HomeAssistant, non_admin_user: MockUser, hass_admin_user: MockUser, customer: Customer
) -> None:
    async def links(user: MockUser) -> dict[str, Any]:
        response = await hass.services.async_call(
            DOMAIN,
            "bay_links",
            {},
            blocking=True,
            return_response=True,
            context=Context(user_id=user.id),
        )
        assert isinstance(response, dict)
        bay: dict[str, Any] = response["bays"]["bay-1"]
        return bay

    shown = await links(non_admin_user)
    assert "display_url" not in shown
    assert shown["page_url"] is not None
    assert "display=" in (await links(hass_admin_user))["display_url"]


async def test_a_sale_refused_for_a_held_bay_is_refunded_without_a_repair(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Nothing is wrong with the bay: the owner is not asked to check its wiring."""
    cancelled = await customer.open_and_pay()
    await _cancel(customer, standin, cancelled)
    assert (await customer.open_and_pay()).status == 200  # someone else holds the bay

    late = await pay_link(hass, standin, post_webhook, link_of(standin, cancelled))

    assert refund_amounts(standin, late.payment_id) == [2000]
    assert issue_registry.async_get_issue(DOMAIN, "start_failed_bay-1") is None
