"""Issue #21: the public pages under abuse, and what the poster tells customers.

Odd forms and queries get a page with a 4xx and a quiet log line, never a traceback (fuzzed
with hypothesis); every POST action works through HA's HTTP server and through HA Cloud's
cloudhook (a ``MockRequest``); QR codes are drawn once, off the event loop; each client has a
budget of requests (answered 429 past it) while Razorpay's webhook is still answered; the
poster says to scan with the phone's camera and prints the bay's static UPI QR code.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import segno
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from hypothesis import example, given
from hypothesis import strategies as st

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.pages_budget import (
    PER_ADDRESS,
    THROUGH_CLOUDHOOK,
    Allowance,
    Budget,
    client_of,
)
from devtools.razorpay_standin import RazorpayStandin
from tests.soak import examples

from .const import FIXED_AND_PER_MINUTE
from .helpers import PostWebhook, create_link
from .pages_helpers import (
    LINKS,
    PAGES_PATH,
    Answer,
    Customer,
    assert_self_contained,
    callback_query,
    cloudhook,
    dynamic_bay,
    edit_bay,
    link_of,
    pay_link,
    reconfigure_bay,
)

VIA = pytest.mark.parametrize("via", ["http", "cloudhook"])
OURS = "custom_components.qr_charging"


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """Bay 1 offers the fixed half hour and ₹0.50 a minute for 10 to 120 minutes."""
    return FIXED_AND_PER_MINUTE


@pytest.fixture
def quiet(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The log, with our debug lines."""
    caplog.set_level(logging.DEBUG, logger=OURS)
    return caplog


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing at ERROR (HA's webhook logs a handler's exception there, with its traceback)."""
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert loud == [], [r.getMessage() for r in loud]


def assert_one_debug_line(caplog: pytest.LogCaptureFixture, words: str) -> None:
    lines = [r for r in caplog.records if r.name == OURS and words in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.DEBUG], [r.getMessage() for r in lines]
    assert_no_traceback(caplog)


# -- item 8: odd forms -------------------------------------------------------------------------


@VIA
async def test_an_eleventh_form_field_is_a_bad_request(
    via: str, customer: Customer, standin: RazorpayStandin, quiet: pytest.LogCaptureFixture
) -> None:
    # parse_qsl(max_num_fields=10) raises ValueError: today an empty 200 and a traceback.
    form = {"plan": "p30"} | {f"extra{n}": "x" for n in range(10)}

    answer = await customer.send(via, "POST", "bay=bay-1", form)

    assert answer.status == 400
    assert "Could not read the form" in answer.text
    assert standin.calls_to(*LINKS) == []
    assert_one_debug_line(quiet, "cannot read")


@VIA
async def test_superscript_minutes_are_a_bad_request(
    via: str, customer: Customer, standin: RazorpayStandin, quiet: pytest.LogCaptureFixture
) -> None:
    # "²".isdigit() is true and int("²") raises: today an empty 200 and a traceback.
    answer = await customer.send(via, "POST", "bay=bay-1", {"plan": "pm", "minutes": "2²"})

    assert answer.status == 400
    assert 'data-state="free"' in answer.text  # the bay page, with what was wrong
    assert standin.calls_to(*LINKS) == []
    assert_one_debug_line(quiet, "was refused")


KEYS = ["bay", "token", "display", "poster", "format", "lang", "ticket", "totp", "plan"]
odd_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12
) | st.sampled_from(["bay-1", "a4", "json", "hi", "²", "2²", "١٢", "0" * 40, "%", "&", "p30", "pm"])
pairs = st.lists(st.tuples(st.sampled_from(KEYS) | st.text(max_size=6), odd_text), max_size=4)
# A page of ours (or none), then odd parameters or anything at all.
PAGES = ["bay=bay-1", "bay=bay-1", "bay=bay-1&poster=a4", "bay=bay-1&format=json", "display=x", ""]
extras = pairs.map(urlencode) | st.text(max_size=60)
form_fields = st.sampled_from(["plan", "minutes", "ticket", "lang", "cancel"]) | st.text(max_size=6)
forms = st.one_of(
    # Every number of fields up to 14 as likely (parse_qsl takes 10 at most).
    st.integers(0, 14)
    .flatmap(
        lambda n: st.lists(
            st.tuples(form_fields, odd_text | st.sampled_from(["p30", "pm", "10"])),
            min_size=n,
            max_size=n,
        )
    )
    .map(lambda fields: urlencode(fields).encode()),
    st.binary(max_size=300),
)


@examples(40)
# The two forms of issue #21, always tried: 11 fields, and superscript minutes.
@example(via="http", method="POST", page="bay=bay-1", extra="", body=b"a=1&" * 10 + b"plan=p30")
@example(via="cloudhook", method="POST", page="bay=bay-1", extra="", body=b"plan=pm&minutes=%C2%B2")
@given(
    via=st.sampled_from(["http", "cloudhook"]),
    method=st.sampled_from(["POST", "GET"]),
    page=st.sampled_from(PAGES),
    extra=extras,
    body=forms,
)
async def test_fuzzed_queries_and_forms_never_fail(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    caplog: pytest.LogCaptureFixture,
    via: str,
    method: str,
    page: str,
    extra: str,
    body: bytes,
) -> None:
    # The clock is not frozen (under freezegun aiohttp's access log fails on HA's current
    # line): the default examples stay within the budgets' bursts; with --soak later ones may
    # be answered 429, which is a page too.
    caplog.clear()
    query = "&".join(part for part in (page, extra) if part)
    if via == "cloudhook":
        answer = await cloudhook(hass, method, query, body.decode("utf-8", "replace"))
    else:
        client = await customer.client()
        response = await client.request(
            method,
            f"{PAGES_PATH}?{query}",
            data=body if method == "POST" else None,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        answer = Answer(response.status, response.content_type, await response.text())

    assert answer.status < 500, answer.text
    assert answer.text
    assert_no_traceback(caplog)


# -- item 9: every POST action through a cloudhook ---------------------------------------------


@VIA
async def test_every_post_action_works_through_a_cloudhook(
    via: str,
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    quiet: pytest.LogCaptureFixture,
) -> None:
    # Pay on the bay page.
    page = await customer.send(via, "GET", "bay=bay-1")
    paid = await customer.send(via, "POST", "bay=bay-1", {"plan": "p30", "ticket": page.ticket()})
    assert paid.status == 200, paid.text
    first = link_of(standin, paid)

    # Cancel on the payer's page the redirect links to (it carries the key to cancel);
    # a MockRequest has no request.clone().
    query = paid.payers_page()
    assert query is not None
    cancelled = await customer.send(via, "POST", query, {"cancel": "1"})
    assert cancelled.status == 200, cancelled.text
    assert 'data-state="cancelled"' in cancelled.text
    assert standin.links[first]["status"] == "cancelled"

    # Add time on the session page of a running session.
    page = await customer.send(via, "GET", "bay=bay-1")
    second = link_of(
        standin,
        await customer.send(via, "POST", "bay=bay-1", {"plan": "p30", "ticket": page.ticket()}),
    )
    await pay_link(hass, standin, post_webhook, second)
    added = await customer.send(via, "POST", callback_query(standin, second), {"plan": "p30"})
    assert added.status == 200, added.text
    assert "add 30 minutes to the running session" in added.text
    assert len(standin.calls_to(*LINKS)) == 3
    assert_no_traceback(quiet)


# -- the poster and the display ----------------------------------------------------------------


async def test_the_poster_says_to_scan_with_the_phones_camera(customer: Customer) -> None:
    poster = await customer.get("bay=bay-1&poster=a4")

    assert poster.status == 200
    assert "Scan this code with your phone&#39;s camera." in poster.text
    assert "यह कोड अपने फ़ोन के कैमरे से स्कैन करें।" in poster.text
    # A UPI app's scanner reads UPI payment codes; the page's code is a web address.
    assert "UPI app" not in poster.text
    assert "UPI ऐप" not in poster.text
    assert "<img" not in poster.text  # no static UPI QR code on this bay


async def test_the_display_says_to_scan_with_the_phones_camera(
    hass: HomeAssistant, customer: Customer
) -> None:
    data = await dynamic_bay(hass)

    screen = await customer.get(f"display={data['display_token']}")

    assert screen.status == 200
    assert "Scan with your phone&#39;s camera to pay with UPI or a card." in screen.text
    assert "UPI या कार्ड से भुगतान के लिए अपने फ़ोन के कैमरे से स्कैन करें।" in screen.text


async def test_the_poster_prints_the_static_upi_code_with_its_minimum(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin
) -> None:
    result, data = await reconfigure_bay(hass, static_qr=True)
    assert result.get("reason") == "reconfigure_successful", result
    image_url = standin.qr_codes[data["qr_code_id"]]["image_url"]

    poster = await customer.get("bay=bay-1&poster=a5")

    assert poster.status == 200
    assert f'<img src="{image_url}"' in poster.text
    assert "Scan with your phone&#39;s camera" in poster.text  # the page's code
    # ₹0.50 a minute, 10 minutes at least: ₹5.
    assert (
        "Or pay any amount with your UPI app: ₹0.50 a minute, at least ₹5 (10 min)." in poster.text
    )
    assert "या अपने UPI ऐप से कोई भी रकम भरें: ₹0.50 प्रति मिनट, कम से कम ₹5 (10 मिनट)।" in (poster.text)

    # A bay with a dynamic QR code prints no code at all: a printed one is what it prevents.
    await edit_bay(hass, dynamic_qr=True, qr_validity_s=60)
    poster = await customer.get("bay=bay-1&poster=a5")
    assert "<img" not in poster.text
    assert "<svg" not in poster.text


# -- the pages' cost on HA's loop --------------------------------------------------------------


async def test_qr_codes_are_drawn_once_and_off_the_loop(
    hass: HomeAssistant, customer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = await dynamic_bay(hass, validity_s=60)
    await edit_bay(hass, dynamic_qr=False)
    drawn: list[tuple[str, bool]] = []
    make = segno.make

    def spy(content: Any, *args: Any, **kwargs: Any) -> Any:
        drawn.append((str(content), asyncio._get_running_loop() is not None))
        return make(content, *args, **kwargs)

    monkeypatch.setattr(segno, "make", spy)

    posters = await asyncio.gather(*(customer.get("bay=bay-1&poster=a4") for _ in range(5)))
    posters.append(await customer.get("bay=bay-1&poster=a5"))

    assert {p.status for p in posters} == {200}
    assert len({p.text.split("<svg", 1)[1].split("</svg>")[0] for p in posters}) == 1
    assert drawn == [(drawn[0][0], False)]  # one drawing, in the executor

    await edit_bay(hass, dynamic_qr=True, qr_validity_s=60)
    drawn.clear()
    for _ in range(3):
        assert (await customer.get(f"display={data['display_token']}")).status == 200
    # The display's code changes once per interval: drawn once in it, off the loop.
    assert [on_loop for _, on_loop in drawn] == [False]


async def test_a_client_past_its_budget_gets_429_and_the_webhook_is_still_answered(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    freezer.move_to("2026-12-07 10:00:00")
    # Posters are what one client asks for to cost the loop most.
    answers = [await customer.get("bay=bay-1&poster=a4") for _ in range(PER_ADDRESS.burst)]
    assert {a.status for a in answers} == {200}

    refused = await customer.get("bay=bay-1&poster=a4")
    assert refused.status == 429
    assert_self_contained(refused)
    assert "Too many requests" in refused.text
    assert (await customer.post("bay=bay-1", {"plan": "p30"})).status == 429
    assert standin.calls_to(*LINKS) == []

    # Razorpay's webhook is not a page: still answered (and its payment starts the session).
    link = await create_link(hass, "bay-1", "p30")
    await pay_link(hass, standin, post_webhook, link["id"])
    runner = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.bays.runners["bay-1"]
    assert runner.session is not None
    # Customers through the cloudhook have their own budget.
    assert (await cloudhook(hass, "GET", "bay=bay-1")).status == 200

    # The bucket refills at its rate: one more request after 1 / rate seconds.
    freezer.tick(timedelta(seconds=1 / PER_ADDRESS.rate_per_s))
    assert (await customer.get("bay=bay-1")).status == 200
    assert (await customer.get("bay=bay-1")).status == 429


async def test_the_cloudhook_is_one_client_with_a_larger_budget(
    hass: HomeAssistant, customer: Customer, freezer: FrozenDateTimeFactory
) -> None:
    freezer.move_to("2026-12-07 10:00:00")
    statuses = [
        (await cloudhook(hass, "GET", "bay=bay-1&format=json")).status
        for _ in range(THROUGH_CLOUDHOOK.burst + 1)
    ]

    assert statuses == [200] * THROUGH_CLOUDHOOK.burst + [429]
    refused = await cloudhook(hass, "GET", "bay=bay-1")
    assert (refused.status, refused.content_type) == (429, "text/html")
    assert "Too many requests" in refused.text
    # A customer reached by address is someone else.
    assert (await customer.get("bay=bay-1")).status == 200


# -- the budget's rules (plain Python) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True),  # one /64: one home
        ("2001:db8:1:2::1", "2001:db8:1:3::1", True),  # one /56: one customer
        ("2001:db8:1:2::1", "2001:db8:1:102::1", False),
        ("203.0.113.7", "203.0.113.8", False),
        ("::ffff:203.0.113.7", "::ffff:203.0.113.8", False),  # IPv4 as IPv6: by address
    ],
)
def test_a_client_is_its_address_or_its_ipv6_56(one: str, other: str, *, same: bool) -> None:
    assert (client_of(one) == client_of(other)) is same
    assert client_of(None) is None  # the cloudhook's one shared budget


def test_the_budget_refills_at_its_rate_and_forgets_the_oldest() -> None:
    budget = Budget(Allowance(rate_per_s=2.0, burst=3), Allowance(10.0, 5), max_clients=2)

    assert [budget.take("a", 100.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]
    assert budget.take("a", 100.5) == 0.0  # one request back after 1 / rate
    assert budget.take("a", 90.0) > 0  # a clock that went back refills nothing
    assert budget.take("a", 100.5) > 0  # nor does coming forward again
    assert budget.take(None, 100.0) == 0.0  # the cloudhook's bucket is another
    budget.take("b", 100.0)  # a third client: "a", seen least recently, is forgotten
    assert budget.take("a", 100.0) == 0.0
