"""A bay's display with its dynamic QR code, and the bay held while a customer pays."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import zxingcpp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from PIL import Image
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.diagnostics import async_get_config_entry_diagnostics
from custom_components.qr_charging.totp import current, interval, password
from devtools.razorpay_standin import RazorpayStandin

from .helpers import PostWebhook, refund_amounts, settle, tick
from .pages_helpers import (
    BAY_URL,
    LINKS,
    Customer,
    assert_self_contained,
    dynamic_bay,
    link_of,
    pay_link,
)


def _totp(data: dict[str, Any], now: float) -> str:
    return current(data["qr_secret"], data.get("qr_validity_s", 60), now)[0]


async def test_a_dynamic_qr_bay_sells_only_to_its_screens_code(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    freezer: FrozenDateTimeFactory,
    hass_client: ClientSessionGenerator,
) -> None:
    data = await dynamic_bay(hass)
    now = time.time()

    plain = await customer.get("bay=bay-1")
    assert "Scan the QR code on the bay&#39;s screen" in plain.text
    assert "<form" not in plain.text
    refused = await customer.pay_button("bay=bay-1")
    assert refused.status == 403
    assert "Nothing was sold." in refused.text
    stale = password(data["qr_secret"], interval(now, 60) - 2)
    assert "<form" not in (await customer.get(f"bay=bay-1&totp={stale}")).text
    assert standin.calls_to(*LINKS) == []

    scanned = await customer.get(f"bay=bay-1&totp={_totp(data, now)}")
    assert "<form" in scanned.text
    await tick(hass, freezer, timedelta(minutes=5))  # choosing takes a while: the page's ticket
    answer = await customer.pay_button(
        f"bay=bay-1&totp={_totp(data, now)}", ticket=scanned.ticket()
    )
    assert answer.status == 200, answer.text
    assert len(standin.calls_to(*LINKS)) == 1

    poster = await customer.get("bay=bay-1&poster=a4")
    assert "<svg" not in poster.text  # a printed code would not sell
    assert (
        "Scan the QR code on the bay&#39;s screen. Never a printed code or sticker." in poster.text
    )
    assert "बे की स्क्रीन पर दिख रहा QR कोड स्कैन करें।" in poster.text

    links = await hass.services.async_call(
        DOMAIN, "bay_links", {}, blocking=True, return_response=True
    )
    assert (
        links["bays"]["bay-1"]["display_url"]
        == f"{BAY_URL.split('?')[0]}?display={data['display_token']}"
    )  # type: ignore[index]
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    diagnostics = json.dumps(await async_get_config_entry_diagnostics(hass, entry))
    assert data["qr_secret"] not in diagnostics
    assert data["display_token"] not in diagnostics


async def test_the_display_shows_the_state_and_comes_back_before_the_code_changes(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    freezer: FrozenDateTimeFactory,
) -> None:
    data = await dynamic_bay(hass)
    now = time.time()
    freezer.tick(timedelta(seconds=60 - now % 60 + 15))  # 15 s into a minute
    display = f"display={data['display_token']}"

    screen = await customer.get(display)
    assert screen.status == 200
    assert_self_contained(screen)
    assert "<h1>Bay 1</h1>" in screen.text
    assert 'data-state="free"' in screen.text
    assert '<meta http-equiv="refresh" content="45">' in screen.text  # the code changes at :00
    assert "<svg" in screen.text
    assert 'Free · <span lang="hi" class="hi">ख़ाली</span>' in screen.text
    assert data["qr_secret"] not in screen.text
    assert (await customer.get("display=nope")).status == 404
    assert (await customer.get(f"display={data['display_token'][:-1]}")).status == 404

    scanned = await customer.get(f"bay=bay-1&totp={_totp(data, time.time())}")
    assert (await customer.pay_button("bay=bay-1", ticket=scanned.ticket())).status == 200
    held = await customer.get(display)
    assert 'data-state="held"' in held.text
    assert "Another customer is paying. Please wait." in held.text
    assert json.loads((await customer.get(f"{display}&format=json")).text)["state"] == "held"


async def test_the_image_shows_the_dynamic_code(
    hass: HomeAssistant,
    customer: Customer,
    freezer: FrozenDateTimeFactory,
    hass_client: ClientSessionGenerator,
) -> None:
    data = await dynamic_bay(hass)
    client = await hass_client()
    (image,) = hass.states.async_all("image")

    async def code() -> tuple[str, str]:
        state = hass.states.get(image.entity_id)
        assert state is not None
        response = await client.get(state.attributes["entity_picture"])
        (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(await response.read())))
        return state.state, found.text

    shown, url = await code()
    assert url.startswith(f"{BAY_URL}&totp=")
    assert "<form" in (await customer.get(urlsplit(url).query)).text  # the page sells to it
    await tick(hass, freezer, timedelta(seconds=61))
    later, new_url = await code()
    assert later != shown
    assert parse_qs(urlsplit(new_url).query)["totp"] != parse_qs(urlsplit(url).query)["totp"]
    assert data["qr_secret"] not in new_url


async def test_two_customers_race_for_the_bay(customer: Customer, standin: RazorpayStandin) -> None:
    first, second = await asyncio.gather(customer.open_and_pay(), customer.open_and_pay())

    assert sorted((first.status, second.status)) == [200, 409]
    assert len(standin.calls_to(*LINKS)) == 1
    loser = first if first.status == 409 else second
    assert "Someone else is paying for this bay right now" in loser.text


async def test_cancel_frees_the_bay_and_a_late_payment_of_it_is_refunded(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    answer = await customer.open_and_pay()
    mine = link_of(standin, answer)
    redirect_query = answer.payers_page()
    assert redirect_query is not None
    waiting = await customer.get(redirect_query)
    assert "Cancel the payment</button>" in waiting.text

    cancelled = await customer.post(redirect_query, {"cancel": "1"})
    assert cancelled.status == 200
    assert 'data-state="cancelled"' in cancelled.text
    assert standin.links[mine]["status"] == "cancelled"
    assert len(standin.calls_to("POST", f"/v1/payment_links/{mine}/cancel")) == 1
    assert 'data-state="free"' in (await customer.get("bay=bay-1")).text

    # Someone else holds the bay now; a payment of the cancelled link (it got through at
    # Razorpay just as it was cancelled) is not theirs to take: refunded as bay_busy.
    other = link_of(standin, await customer.open_and_pay())
    assert other != mine
    late = await pay_link(hass, standin, post_webhook, mine)
    assert refund_amounts(standin, late.payment_id) == [2000]
    paid = await pay_link(hass, standin, post_webhook, other)
    assert refund_amounts(standin, paid.payment_id) == []
    assert 'data-state="busy"' in (await customer.get("bay=bay-1")).text


async def test_the_hold_survives_a_restart(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin
) -> None:
    await customer.open_and_pay()
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await settle(hass)

    assert 'data-state="held"' in (await customer.get("bay=bay-1")).text
    assert (await customer.open_and_pay()).status == 409
    assert re.search(r"Someone else is paying", (await customer.open_and_pay()).text)
