"""The public pages under abuse (issue #21): what a script without a login can do to a bay.

Each test is the script, through the pages' webhook, with the stand-in's call log as the
measure of what reached Razorpay.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.holds import (
    LINK_WINDOW_S,
    LINKS_PER_CLIENT,
    LINKS_PER_WINDOW,
    UNPAID_HOLDS,
)
from custom_components.qr_charging.pages_budget import MAX_CLIENTS, PER_ADDRESS, Budget, client_of
from custom_components.qr_charging.totp import current
from devtools.razorpay_standin import RazorpayStandin

from .const import FIXED_AND_PER_MINUTE
from .helpers import PostWebhook, pay, refund_amounts, settle, tick
from .mqtt_helpers import wait_until
from .pages_helpers import (
    LINKS,
    Answer,
    Customer,
    callback_query,
    edit_bay,
    link_of,
    pay_link,
)

BAY = "bay=bay-1"
# What docs/customer.md promises: a bay is held unpaid at most 30 minutes of any 60.
HELD_AT_MOST_MIN, WINDOW_MIN = 30, 60
TRY_LATER = "please try again in a minute"
TRY_LATER_HI = "कृपया एक मिनट बाद फिर कोशिश करें"


async def _state(customer: Customer, query: str = BAY) -> str:
    state: str = json.loads((await customer.get(f"{query}&format=json")).text)["state"]
    return state


def _payers_page(answer: Answer) -> str:
    query = answer.payers_page()
    assert query is not None, answer.text
    return query


async def _cancel(customer: Customer, query: str) -> Answer:
    return await customer.post(query, {"cancel": "1"})


def _link_calls(standin: RazorpayStandin) -> int:
    """Calls about payment links (made, looked up), the ones a tap may cost."""
    return sum(call.path.startswith("/v1/payment_links") for call in standin.calls)


def _cancels(standin: RazorpayStandin, link_id: str) -> int:
    return len(standin.calls_to("POST", f"/v1/payment_links/{link_id}/cancel"))


async def _charging(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> str:
    """A customer's session runs on bay 1; return the query of their session page."""
    first = link_of(standin, await customer.open_and_pay())
    await pay_link(hass, standin, post_webhook, first)
    assert await _state(customer) == "busy"
    return callback_query(standin, first)


# -- 1. holds that cannot be farmed -----------------------------------------------------------


@pytest.mark.parametrize("hold_minutes", [15, 20, 60])
async def test_a_scripted_holder_holds_a_bay_unpaid_at_most_half_of_any_hour(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    freezer: FrozenDateTimeFactory,
    hold_minutes: int,
) -> None:
    """A script taps Pay whenever the bay is not held, for a day; it never pays.

    Before: each tap after the last link expired held the bay again (100 % of the day).
    """
    await edit_bay(hass, hold_minutes=hold_minutes)
    held: list[bool] = []
    for _ in range(24 * 60):
        if await _state(customer) == "free":
            # Through the cloudhook (no address, so no client's share of the links): a tap
            # while the bay sells without holding may find the bay's links spent (429).
            tap = await customer.send("cloudhook", "POST", BAY, {"plan": "p30"})
            assert tap.status in {200, 429}
        held.append(await _state(customer) == "held")
        freezer.tick(timedelta(minutes=1))

    worst = max(sum(held[i : i + WINDOW_MIN]) for i in range(len(held) - WINDOW_MIN + 1))
    assert worst <= HELD_AT_MOST_MIN
    assert held[0]  # an honest first customer still holds the bay
    assert sum(held) >= 24 * 60 // 8


# -- 3. only the page that made a link cancels it ----------------------------------------------


async def test_an_add_time_link_is_its_makers_alone_and_the_token_cannot_cancel(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    """Before: the stranger was handed the link's session page, and its Cancel worked."""
    await _charging(hass, customer, standin, post_webhook)
    payer = await customer.open_and_pay()
    stranger = await customer.open_and_pay()
    link_id = link_of(standin, payer)
    assert link_of(standin, stranger) != link_id  # the same purchase: a link each

    assert _payers_page(stranger) != _payers_page(payer)
    # Even knowing the payer's token (not the key), a stranger's cancel changes nothing.
    token_only = _payers_page(payer).split("&key=")[0]
    assert "Cancel the payment</button>" not in (await customer.get(token_only)).text
    refused = await _cancel(customer, token_only)
    assert refused.status == 403
    assert "Only the page that started this payment can cancel it." in refused.text
    assert standin.links[link_id]["status"] == "created"
    assert _cancels(standin, link_id) == 0

    # Its maker's cancel: an Add time link holds nothing, so Razorpay is not asked.
    assert (await _cancel(customer, _payers_page(payer))).status == 200
    assert _cancels(standin, link_id) == 0


# -- 4. cancels: bounded, and never in the way of Pay ------------------------------------------


async def test_cancelling_an_expired_link_asks_razorpay_nothing(
    customer: Customer, standin: RazorpayStandin, freezer: FrozenDateTimeFactory
) -> None:
    """Before: each of the 30 cancels was a call to Razorpay, under the bay's lock."""
    answer = await customer.open_and_pay()
    link_id = link_of(standin, answer)
    freezer.tick(timedelta(minutes=21, seconds=1))

    for _ in range(30):
        page = await _cancel(customer, _payers_page(answer))
        assert 'data-state="expired"' in page.text
    assert _cancels(standin, link_id) == 0
    assert await _state(customer) == "free"


async def test_a_cancel_razorpay_refuses_settles_the_link_with_one_look(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin
) -> None:
    """Paid at Razorpay, its webhook not here yet: one refused cancel, one fetch, then paid.

    Before: every cancel was refused by Razorpay again and the link stayed open here.
    """
    answer = await customer.open_and_pay()
    link_id = link_of(standin, answer)
    standin.pay_link(link_id)  # Razorpay's webhook is late

    for _ in range(5):
        await _cancel(customer, _payers_page(answer))
    await settle(hass)

    assert _cancels(standin, link_id) == 1
    assert len(standin.calls_to("GET", f"/v1/payment_links/{link_id}")) == 1
    assert await _state(customer) == "busy"


async def test_pay_does_not_wait_for_a_cancel_razorpay_is_slow_to_answer(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    """Before: a cancel held the bay's lock while Razorpay answered; every Pay waited."""
    mine = await customer.open_and_pay()  # holds the bay; then cancels it
    link_id = link_of(standin, mine)
    release = standin.hold_next(f"/v1/payment_links/{link_id}/cancel")
    cancelling = asyncio.ensure_future(_cancel(customer, _payers_page(mine)))
    await wait_until(hass, lambda: _cancels(standin, link_id) == 1)

    try:  # another customer, while Razorpay has not answered the cancel
        other = await asyncio.wait_for(customer.open_and_pay(via="cloudhook"), timeout=5)
    finally:
        release.set()

    # Answered at once: held until Razorpay says the link is cancelled (only a hold's cancel
    # asks Razorpay; an Add time link's asks nothing, see below).
    assert other.status == 409
    assert not cancelling.done()
    assert (await cancelling).status == 200


async def test_the_owner_is_told_to_subscribe_to_the_link_closed_events(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Before: the events to tick left them out, so a hold lasted until reconciliation."""
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)

    events = result["description_placeholders"]["events"].split(", ")
    assert {"payment_link.expired", "payment_link.cancelled"} <= set(events)


@pytest.mark.parametrize("closing", ["expire_link", "cancel"])
async def test_razorpays_link_closed_events_end_the_hold(
    customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook, closing: str
) -> None:
    """``payment_link.expired`` / ``.cancelled``, sent by the stand-in, free the bay at once."""
    link_id = link_of(standin, await customer.open_and_pay())
    assert await _state(customer) == "held"
    if closing == "cancel":  # e.g. the owner, in Razorpay's dashboard
        standin.links[link_id].update(status="cancelled")
        webhook = standin.link_closed(link_id)
    else:
        webhook = standin.expire_link(link_id)

    answer = await post_webhook(webhook)

    assert answer.status == 200
    assert (await answer.json())["outcome"] == f"link_{standin.links[link_id]['status']}"
    assert await _state(customer) == "free"


# -- 5. the running session's own page is never refused by the bay's budget ---------------------


async def test_a_script_spending_the_bay_budget_leaves_the_sessions_add_time_alone(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    """Before: after the script's ten links, the charging customer's Add time got 429."""
    session_page = await _charging(hass, customer, standin, post_webhook)
    for _ in range(LINKS_PER_WINDOW - 1):  # the session's own link was the first
        made = await customer.open_and_pay(via="cloudhook")  # no address: no client's share
        assert made.status == 200
        await _cancel(customer, _payers_page(made))
    assert (await customer.open_and_pay(via="cloudhook")).status == 429

    # The session's own page has a budget of its own; its cancelled links count against it.
    for _ in range(LINKS_PER_WINDOW):
        own = await customer.pay_button(session_page)
        assert own.status == 200, own.text
        await _cancel(customer, _payers_page(own))
    made = len(standin.calls_to(*LINKS))
    assert (await customer.pay_button(session_page)).status == 429
    assert len(standin.calls_to(*LINKS)) == made


# -- 6. Razorpay refusing or failing: counted, and left alone for a while ----------------------


@pytest.mark.parametrize(
    ("status", "retry_after", "wait_s"), [(429, 120, 120), (503, None, 60), (500, None, 60)]
)
async def test_a_refusing_razorpay_is_left_alone_then_asked_again(
    customer: Customer,
    standin: RazorpayStandin,
    freezer: FrozenDateTimeFactory,
    status: int,
    retry_after: int | None,
    wait_s: int,
) -> None:
    """Before: each of the 40 taps cost one or two calls (a 429 was followed by a look-up)."""
    standin.fail_next("/v1/payment_links", status, times=100, retry_after=retry_after)

    for _ in range(40):  # a script's taps (no page: within the per-client budget)
        answer = await customer.pay_button(BAY)
        assert answer.status == 503
        assert TRY_LATER in answer.text
    hindi = await customer.pay_button(f"{BAY}&lang=hi")
    assert TRY_LATER_HI in hindi.text
    assert _link_calls(standin) == 1

    freezer.tick(timedelta(seconds=wait_s - 1))
    assert (await customer.pay_button(BAY)).status == 503
    assert _link_calls(standin) == 1
    freezer.tick(timedelta(seconds=1))
    standin._faults.clear()  # Razorpay is back
    assert (await customer.pay_button(BAY)).status == 200


async def test_refused_link_creations_spend_the_bay_budget(
    customer: Customer, standin: RazorpayStandin, freezer: FrozenDateTimeFactory
) -> None:
    """Before: only links made were counted, so failing calls were never limited."""
    standin.fail_next("/v1/payment_links", 503, times=100, retry_after=0)
    for _ in range(LINKS_PER_WINDOW):  # through the cloudhook: no address, no client's share
        assert (await customer.open_and_pay(via="cloudhook")).status == 503
    calls = _link_calls(standin)

    assert (await customer.open_and_pay(via="cloudhook")).status == 429
    assert _link_calls(standin) == calls
    freezer.tick(timedelta(seconds=LINK_WINDOW_S))
    assert (await customer.open_and_pay(via="cloudhook")).status == 503
    assert _link_calls(standin) == calls + 1


# -- #22.3: Razorpay unavailable is logged once, and its return once ----------------------------


async def test_razorpay_unavailable_is_logged_once_and_back_once(
    customer: Customer,
    standin: RazorpayStandin,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: every failure was a debug line, and every page's failure a warning of its own."""
    caplog.set_level(logging.DEBUG, logger="custom_components.qr_charging")
    standin.fail_next("/v1/payment_links", 503, times=3)
    for _ in range(3):
        assert (await customer.open_and_pay(via="cloudhook")).status == 503
        freezer.tick(timedelta(seconds=61))
    assert (await customer.open_and_pay(via="cloudhook")).status == 200

    ours = [r for r in caplog.records if r.name.startswith("custom_components.qr_charging")]
    warnings = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
    infos = [r.getMessage() for r in ours if r.levelno == logging.INFO]
    assert len(warnings) == 1
    assert "Razorpay is unavailable for account rzp_test_standin" in warnings[0]
    assert infos == ["Razorpay answers again for account rzp_test_standin"]


async def _reconciled(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Five minutes on: a reconciliation pass runs (a background task) to its end."""
    await tick(hass, freezer, timedelta(minutes=5))
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_a_refund_waiting_for_razorpay_warns_once_not_every_pass(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: each reconciliation pass warned again that the refund was not sent yet."""
    paid = await pay(hass, standin, post_webhook)
    standin.fail_next("/v1/payments/", 503, times=100)
    caplog.set_level(logging.DEBUG, logger="custom_components.qr_charging")
    await hass.services.async_call(
        DOMAIN, "stop_session", {"bay": "bay-1", "refund": "full"}, blocking=True
    )
    for _ in range(3):  # reconciliation passes while Razorpay is down
        await _reconciled(hass, freezer)
    assert len(refund_amounts(standin, paid.payment_id)) == 4
    standin._faults.clear()  # Razorpay is back
    await _reconciled(hass, freezer)

    assert len(standin.refunds) == 1
    ours = [r for r in caplog.records if r.name.startswith("custom_components.qr_charging")]
    assert [r.getMessage() for r in ours if r.levelno >= logging.WARNING] == [
        "Razorpay is unavailable for account rzp_test_standin: The server encountered an "
        "error. The incident has been reported to admins."
    ]
    assert [r.getMessage() for r in ours if "answers again" in r.getMessage()] == [
        "Razorpay answers again for account rzp_test_standin"
    ]


# -- the break-it review of #21 ----------------------------------------------------------------

WITH_RATE_PLAN = pytest.mark.parametrize("bay_plans", [FIXED_AND_PER_MINUTE])


async def _selling_without_holding(customer: Customer) -> None:
    """Holds taken and cancelled in a row (through the cloudhook): the bay stops holding."""
    for _ in range(UNPAID_HOLDS):
        await _cancel(customer, _payers_page(await customer.open_and_pay(via="cloudhook")))


@WITH_RATE_PLAN
async def test_one_client_cannot_keep_a_free_bay_from_selling(
    customer: Customer,
    standin: RazorpayStandin,
    freezer: FrozenDateTimeFactory,
    bay_plans: list[dict[str, Any]],
) -> None:
    """Before: once a minute a script took a link of a length nobody else asks for and
    cancelled it; its cancelled links spent the bay's 10 links per 10 minutes, so no new
    customer got a link for hours (*busy, try again*, 429)."""
    minutes = itertools.cycle(range(10, 121))
    honest: list[tuple[int, str, int]] = []
    for minute in range(3 * 60):
        for _ in range(12):  # the script, from one address
            if await _state(customer) != "free":
                break
            made = await customer.open_and_pay(plan="pm", minutes=str(next(minutes)))
            if made.status != 200:
                break
            await _cancel(customer, _payers_page(made))
        if minute % 5 == 0:  # a new customer every 5 minutes (through the cloudhook)
            state = await _state(customer)
            answer = await customer.open_and_pay(via="cloudhook")
            honest.append((minute, state, answer.status))
            if answer.status == 200:  # they change their mind (a payment would end the test)
                await customer.send("cloudhook", "POST", _payers_page(answer), {"cancel": "1"})
        freezer.tick(timedelta(minutes=1))

    on_a_free_bay = [status for _minute, state, status in honest if state == "free"]
    assert len(on_a_free_bay) >= len(honest) - 2, honest
    assert set(on_a_free_bay) == {200}, honest
    # The script's links: at most its own few per 10 minutes, whatever it tapped.
    assert len(standin.calls_to(*LINKS)) <= (3 * 60 // 10 + 1) * (LINKS_PER_CLIENT + 2)


async def test_cancelling_a_link_that_holds_nothing_asks_razorpay_nothing(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    """Before: Cancel on a link that holds nothing (a bay selling without holding, or Add
    time) was a call to Razorpay, so cancel-and-retake churned the bay's links."""
    await _selling_without_holding(customer)
    made = await customer.open_and_pay(via="cloudhook")
    link_id = link_of(standin, made)
    # Its page offers no Cancel (there is nothing to let go of); a hold's page does.
    assert 'name="cancel"' not in (await customer.get(_payers_page(made))).text

    shown = await _cancel(customer, _payers_page(made))
    assert shown.status == 200
    assert _cancels(standin, link_id) == 0
    assert standin.links[link_id]["status"] == "created"  # open until it expires
    # Paid anyway, it starts the session it was for: nothing paid is lost.
    await pay_link(hass, standin, post_webhook, link_id)
    assert await _state(customer) == "busy"

    add = await customer.open_and_pay(via="cloudhook")  # Add time, from the bay's page
    await _cancel(customer, _payers_page(add))
    assert _cancels(standin, link_of(standin, add)) == 0


async def test_a_link_goes_only_to_the_page_that_made_it(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    """Before: a second page asking the same purchase was handed the first page's link; its
    maker then read the payer's session page and spent its Add time (the payer got 429)."""
    await _selling_without_holding(customer)
    script = await customer.open_and_pay()
    honest = await customer.open_and_pay(via="cloudhook")
    assert link_of(standin, honest) != link_of(standin, script)
    honest_page = _payers_page(honest)  # theirs, with their key
    await pay_link(hass, standin, post_webhook, link_of(standin, honest))
    assert await _state(customer) == "busy"

    # The script's token is the page of its own unpaid link: no Add time to anyone's session.
    refused = await customer.post(_payers_page(script), {"plan": "p30"})
    assert refused.status == 409
    for _ in range(LINKS_PER_WINDOW):  # the payer's own Add time budget is all theirs
        own = await customer.send("cloudhook", "POST", honest_page, {"plan": "p30"})
        assert own.status == 200, own.text
        await _cancel(customer, _payers_page(own))


async def test_a_crowd_adding_time_gets_a_link_each_within_the_bays_budget(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    """Links are no longer shared between pages: a crowd tapping Add time on a busy bay's
    page (before: one link for all of them) gets a link each, as many as the bay's budget
    allows, then *busy, try again*; Razorpay is asked no more than the budget."""
    await _charging(hass, customer, standin, post_webhook)  # the bay's first link
    made = len(standin.calls_to(*LINKS))
    crowd = await asyncio.gather(*(customer.open_and_pay(via="cloudhook") for _ in range(20)))

    served = [answer for answer in crowd if answer.status == 200]
    assert len(served) == LINKS_PER_WINDOW - 1
    assert {answer.status for answer in crowd if answer not in served} == {429}
    assert len({link_of(standin, answer) for answer in served}) == len(served)
    assert len(standin.calls_to(*LINKS)) - made == len(served)


@WITH_RATE_PLAN
async def test_a_holder_who_paid_and_taps_again_is_shown_their_session(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    bay_plans: list[dict[str, Any]],
) -> None:
    """Before: their paid link was "cancelled" (Razorpay refused: paid), the session started,
    and they were sent to pay a new link that held the bay after their session."""
    ticket = (await customer.get(BAY)).ticket()
    first = await customer.post(BAY, {"plan": "p30", "ticket": ticket})
    paid = standin.pay_link(link_of(standin, first))  # paid; Razorpay's webhook is late
    made = len(standin.calls_to(*LINKS))

    again = await customer.post(BAY, {"plan": "pm", "minutes": "20", "ticket": ticket})
    assert again.status == 200
    assert 'http-equiv="refresh"' not in again.text  # not sent to pay again
    assert 'data-state="' in again.text  # their session's page
    assert len(standin.calls_to(*LINKS)) == made
    await post_webhook(paid.payment_link_paid())
    await settle(hass)
    assert await _state(customer) == "busy"
    assert refund_amounts(standin, paid.payment_id) == []


async def test_the_holders_ticket_lasts_as_long_as_their_link(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Before: a ticket lasted 10 minutes, a hold 15 to 60; 11 minutes after tapping Pay the
    holder's page polled "held" and their Pay was refused while their link was open."""
    # A hold of 30 minutes: 11 minutes in, the link still has time to be handed again.
    data = await edit_bay(hass, dynamic_qr=True, qr_validity_s=60, hold_minutes=30)
    code = current(data["qr_secret"], 60, time.time())[0]
    ticket = (await customer.get(f"{BAY}&totp={code}")).ticket()
    first = await customer.pay_button(BAY, ticket=ticket)
    link_id = link_of(standin, first)
    await tick(hass, freezer, timedelta(minutes=11))

    poll = json.loads((await customer.get(f"{BAY}&ticket={ticket}&format=json")).text)
    assert poll["state"] == "free"  # to its holder
    assert await _state(customer) == "held"  # to everyone else
    again = await customer.pay_button(BAY, ticket=ticket)
    assert again.status == 200, again.text
    assert link_of(standin, again) == link_id

    # Its link closed, the ticket is as old as it is: no sale without a new scan.
    await _cancel(customer, _payers_page(first))
    assert (await customer.pay_button(BAY, ticket=ticket)).status == 403


def test_rotating_ipv6_64s_of_one_48_past_the_clients_remembered_is_refused() -> None:
    """Before: a client was a /64, so an attacker rotating through more /64s of its /48 than
    the 4,096 buckets remembered found a fresh bucket at every request and was never refused."""
    budget = Budget()
    rotated = 2 * MAX_CLIENTS  # /64s, spread evenly over one /48's 65,536
    asked = 10 * rotated
    refused = 0
    clients = set()
    for i in range(asked):
        subnet = (i % rotated) * (65536 // rotated)
        clients.add(client := client_of(f"2001:db8:7:{subnet:x}::1"))
        refused += budget.take(client, 0.0) > 0
    # Its /48 is 256 /56s: 256 budgets, each spent, then refused.
    assert refused == asked - 256 * PER_ADDRESS.burst
    assert len(clients) == 256


async def test_a_holds_page_offers_cancel_to_its_maker_only(
    customer: Customer, standin: RazorpayStandin
) -> None:
    made = await customer.open_and_pay()
    assert standin.links[link_of(standin, made)]["expire_by"]  # a hold: the bay was free

    assert 'name="cancel"' in (await customer.get(_payers_page(made))).text
    token_only = _payers_page(made).split("&key=")[0]
    assert 'name="cancel"' not in (await customer.get(token_only)).text


async def test_a_session_page_does_not_wait_for_the_books_lock(
    customer: Customer, loaded_entry: MockConfigEntry
) -> None:
    """Polled every few seconds by every payer, it reads what is stored (``Books.read``):
    before, it took the lock payments and bays write under, and waited behind a slow commit."""
    made = await customer.open_and_pay()
    books = loaded_entry.runtime_data.books
    async with books.lock:  # a change under way (a slow disk, a backup holding writes)
        shown = await asyncio.wait_for(customer.get(_payers_page(made)), timeout=10)
    assert shown.status == 200
