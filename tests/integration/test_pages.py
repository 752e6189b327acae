"""The customer's pages over HTTP: the bay page in each state, paying, the session page."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import RazorpayStandin

from .const import (
    BAY_SUBENTRY,
    FIXED_AND_PER_MINUTE,
    PAGES_ID,
    PAGES_SECRET,
    PLAN_SUBENTRY,
    PLUG,
    WEBHOOK_ID,
    WEBHOOK_SECRET,
    with_plans,
)
from .helpers import PostWebhook, entry_data, refund_amounts, settle, setup_plug, tick
from .pages_helpers import (
    EXTERNAL_URL,
    LINKS,
    Customer,
    assert_self_contained,
    callback_query,
    link_of,
    pay_link,
    token_of,
)


async def _buy(customer: Customer, standin: RazorpayStandin, query: str = "bay=bay-1") -> str:
    """Tap Pay on a page; return the link the customer is sent to."""
    answer = await customer.pay_button(query)
    assert answer.status == 200, answer.text
    return link_of(standin, answer)


async def test_free_bay_page(customer: Customer, standin: RazorpayStandin) -> None:
    page = await customer.get("bay=bay-1")

    assert page.status == 200
    assert_self_contained(page)
    assert "<h1>Bay 1</h1>" in page.text
    assert 'data-state="free"' in page.text
    assert "30 min for ₹20" in page.text
    assert "Pay ₹20</button>" in page.text
    assert 'name="plan" value="p30"' in page.text
    assert "adds time" not in page.text
    # Looking makes no link.
    assert standin.calls_to(*LINKS) == []
    for secret in (standin.key_id, standin.key_secret, WEBHOOK_ID, WEBHOOK_SECRET, PAGES_SECRET):
        assert secret not in page.text
    assert json.loads((await customer.get("bay=bay-1&format=json")).text) == {
        "state": "free",
        "remaining_s": 0,
    }


async def test_pay_goes_to_razorpay_and_comes_back_to_the_session_page(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    answer = await customer.pay_button("bay=bay-1")

    assert answer.status == 200
    assert_self_contained(answer)
    link_id = link_of(standin, answer)
    assert f'<a class="button" href="{standin.links[link_id]["short_url"]}"' in answer.text
    assert "You pay for 30 minutes of charging" in answer.text
    (call,) = standin.calls_to(*LINKS)
    assert call.json["amount"] == 2000
    assert call.json["callback_method"] == "get"
    query = callback_query(standin, link_id)
    token = token_of(query)
    # The token is the session id with its signature, never the bare id.
    assert token.startswith(standin.links[link_id]["reference_id"] + ".")

    waiting = await customer.get(query)
    assert waiting.status == 200
    assert 'data-state="awaiting"' in waiting.text
    assert standin.links[link_id]["short_url"] in waiting.text  # finish paying from here

    paid = await pay_link(hass, standin, post_webhook, link_id)
    page = await customer.get(query)
    assert 'data-state="charging"' in page.text
    assert 'id="countdown">30:00<' in page.text or 'id="countdown">29:59<' in page.text
    assert "₹20" in page.text
    assert paid.payment_id not in page.text
    status = json.loads((await customer.get(f"{query}&format=json")).text)
    assert status["state"] == "charging"
    assert 1790 <= status["remaining_s"] <= 1800


async def test_tapping_twice_is_one_link_and_the_crowd_sees_someone_paying(
    customer: Customer, standin: RazorpayStandin
) -> None:
    page = await customer.get("bay=bay-1")
    first = await customer.pay_button("bay=bay-1", ticket=page.ticket())
    again = await customer.pay_button("bay=bay-1", ticket=page.ticket())
    others = await asyncio.gather(*(customer.open_and_pay() for _ in range(20)))

    assert link_of(standin, again) == link_of(standin, first)
    assert {answer.status for answer in others} == {409}
    assert "Someone else is paying for this bay right now; nothing was sold." in others[0].text
    assert 'data-state="held"' in others[0].text
    assert len(standin.calls_to(*LINKS)) == 1
    held = await customer.get("bay=bay-1")
    assert 'data-state="held"' in held.text
    assert "<form" not in held.text
    assert json.loads((await customer.get("bay=bay-1&format=json")).text)["state"] == "held"


async def test_the_hold_ends_when_the_link_expires(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    freezer: FrozenDateTimeFactory,
) -> None:
    first = await _buy(customer, standin)
    await tick(hass, freezer, timedelta(minutes=19))
    assert (await customer.open_and_pay()).status == 409
    await tick(hass, freezer, timedelta(minutes=2))  # the link expired unpaid: the hold is over

    assert 'data-state="free"' in (await customer.get("bay=bay-1")).text
    assert await _buy(customer, standin) != first
    assert len(standin.calls_to(*LINKS)) == 2


async def test_busy_bay_sells_only_added_time(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    first = await _buy(customer, standin)
    await pay_link(hass, standin, post_webhook, first)
    runner = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.bays.runners["bay-1"]
    until = runner.session.until

    page = await customer.get("bay=bay-1")
    assert 'data-state="busy"' in page.text
    assert "adds time to the running session; it does not start a new one" in page.text
    assert "Add time for ₹20</button>" in page.text
    assert "Pay ₹20" not in page.text

    answer = await customer.pay_button("bay=bay-1")
    assert "add 30 minutes to the running session" in answer.text
    added = link_of(standin, answer)
    assert added != first
    paid = await pay_link(hass, standin, post_webhook, added)

    assert runner.session.until == pytest.approx(until + 1800)
    assert refund_amounts(standin, paid.payment_id) == []
    # The second customer's page shows the running session, and only their own payment.
    mine = await customer.get(callback_query(standin, added))
    assert 'data-state="charging"' in mine.text
    assert "₹20" in mine.text


async def test_a_start_link_paid_while_busy_is_refunded_in_full(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    # A customer opens the free bay's page and goes to pay; meanwhile the owner starts a
    # session. The page told the customer "free": they could not have known.
    stale = await _buy(customer, standin)
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": "switch.bay_1_charging"}, blocking=True
    )
    await settle(hass)

    paid = await pay_link(hass, standin, post_webhook, stale)

    assert refund_amounts(standin, paid.payment_id) == [2000]
    page = await customer.get(callback_query(standin, stale))
    assert 'data-state="refund_processed"' in page.text
    assert 'data-state="busy"' in (await customer.get("bay=bay-1")).text


async def test_out_of_order_sells_nothing(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin
) -> None:
    hass.states.async_set(PLUG, STATE_UNAVAILABLE)
    await settle(hass)

    page = await customer.get("bay=bay-1")
    assert 'data-state="out_of_order"' in page.text
    assert "not taking payments right now" in page.text
    assert "<form" not in page.text
    answer = await customer.pay_button("bay=bay-1")
    assert answer.status == 409
    assert "nothing was sold" in answer.text
    assert standin.calls_to(*LINKS) == []


async def test_a_disabled_bay_device_is_out_of_order(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin
) -> None:
    registry = dr.async_get(hass)
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    (device,) = [
        d
        for d in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if (DOMAIN, f"{entry.entry_id}_bay-1") in d.identifiers
    ]
    registry.async_update_device(device.id, disabled_by=dr.DeviceEntryDisabler.USER)
    await settle(hass)

    assert 'data-state="out_of_order"' in (await customer.get("bay=bay-1")).text
    assert (await customer.pay_button("bay=bay-1")).status == 409
    assert standin.calls_to(*LINKS) == []


async def test_ended_session_page(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    link_id = await _buy(customer, standin)
    await pay_link(hass, standin, post_webhook, link_id)
    await tick(hass, freezer, timedelta(minutes=31))

    page = await customer.get(callback_query(standin, link_id))
    assert 'data-state="ended"' in page.text
    assert "Charging ended at" in page.text
    assert 'data-state="free"' in (await customer.get("bay=bay-1")).text


@pytest.mark.parametrize(
    ("refund_status", "stage", "words"),
    [
        ("pending", "refund_initiated", "₹20 is being refunded to you"),
        ("processed", "refund_processed", "₹20 has been refunded to you"),
    ],
)
async def test_failed_start_shows_the_refund(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    refund_status: str,
    stage: str,
    words: str,
) -> None:
    standin.refund_status = refund_status
    link_id = await _buy(customer, standin)
    hass.states.async_set(PLUG, STATE_UNAVAILABLE)  # the plug drops off while they pay
    await settle(hass)
    paid = await pay_link(hass, standin, post_webhook, link_id)

    page = await customer.get(callback_query(standin, link_id))
    assert f'data-state="{stage}"' in page.text
    assert words in page.text
    assert paid.payment_id not in page.text


async def test_unknown_bay_token_or_method(customer: Customer, standin: RazorpayStandin) -> None:
    link_id = await _buy(customer, standin)
    good = token_of(callback_query(standin, link_id))
    session_id = standin.links[link_id]["reference_id"]

    for query in (
        "bay=bay-9",
        "token=nonsense",
        f"token={session_id}",  # the bare session id
        f"token={session_id}.{good[-22:-1]}x",  # a forged signature
        "",
    ):
        answer = await customer.get(query)
        assert answer.status == 404, query
        assert_self_contained(answer)
        assert "Page not found" in answer.text
    client = await customer.client()
    response = await client.put(f"/api/webhook/{PAGES_ID}?bay=bay-1")
    assert response.status == 405
    assert "Not allowed" in await response.text()
    assert (await customer.post("bay=bay-1&format=json", {"plan": "p30"})).status == 405
    assert len(standin.calls_to(*LINKS)) == 1


async def test_bad_forms_change_nothing(customer: Customer, standin: RazorpayStandin) -> None:
    for form in ({"plan": "p99"}, {}, {"plan": ""}):
        answer = await customer.post("bay=bay-1", form)
        assert answer.status == 400, form
        assert 'class="error"' in answer.text
    big = await customer.post("bay=bay-1", b"plan=p30&x=" + b"a" * 5000)
    assert big.status == 413
    not_ascii = await customer.post("bay=bay-1", "plan=p30&x=é".encode())
    assert not_ascii.status == 400
    assert standin.calls_to(*LINKS) == []


async def test_hindi_by_browser_or_switch(customer: Customer) -> None:
    hindi = await customer.get("bay=bay-1", headers={"Accept-Language": "hi-IN,hi;q=0.9,en;q=0.8"})
    assert '<html lang="hi">' in hindi.text
    assert "ख़ाली" in hindi.text
    assert "₹20 का भुगतान करें" in hindi.text
    assert 'href="?bay=bay-1&amp;lang=en"' in hindi.text

    switched = await customer.get("bay=bay-1&lang=hi", headers={"Accept-Language": "en"})
    assert '<html lang="hi">' in switched.text
    assert 'name="lang" value="hi"' in switched.text  # the choice survives the Pay button
    english = await customer.get("bay=bay-1", headers={"Accept-Language": "en-GB,hi;q=0.5"})
    assert "Free" in english.text


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


@pytest.mark.parametrize("bay_plans", [FIXED_AND_PER_MINUTE], ids=["fixed_and_per_minute"])
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
