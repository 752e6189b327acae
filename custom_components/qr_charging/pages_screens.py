"""What the customer's pages print and show at a bay: the poster and the bay's display.

``?bay=<id>&poster=a4|a5`` is a printable poster (in both languages); ``?display=<token>`` the
bay's screen, which reloads before its dynamic QR code changes. QR codes are drawn once per
content, in the executor.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections.abc import Callable, Mapping
from functools import partial
from http import HTTPStatus
from typing import Any

from aiohttp import web
from homeassistant.core import HomeAssistant
from markupsafe import Markup

from .bay_runner import BayRunner
from .catalog import (
    Bay,
    Plan,
)
from .pages_addresses import PageAddresses
from .pages_answer import (
    Page,
    Responder,
    html,
    json_answer,
    local_time,
    minutes_left_until,
    remaining,
)
from .pages_model import BayState, BayView, rupees
from .pages_render import QrCodes, qr_svg
from .totp import current

# A display whose bay has no dynamic QR code still reloads this often (its state, its clock).
DISPLAY_RELOAD_S = 60

POSTER_SIZES = {"a4": "A4", "a5": "A5"}


class Screens:
    """The posters and displays of one account's bays."""

    def __init__(
        self,
        hass: HomeAssistant,
        responder: Responder,
        *,
        addresses: PageAddresses,
        plans: Mapping[str, Plan],
        runners: Mapping[str, BayRunner],
        bay_view: Callable[[BayRunner], BayView],
    ) -> None:
        self.hass = hass
        self.responder = responder
        self.addresses = addresses
        self.plans = plans
        self.runners = runners
        self._bay_view = bay_view
        self._qr_codes = QrCodes()
        self._drawing: dict[str, asyncio.Future[Markup]] = {}

    async def async_poster(self, page: Page, bay: Bay, view: BayView) -> web.Response:
        """A printable poster: name, QR code of the bay page, plans, steps in both languages.

        A bay with a dynamic QR code gets no printed code (it would not sell): the poster says
        to scan the one on the bay's screen. Every poster names the merchant to check.
        """
        size = POSTER_SIZES.get(page.query.get("poster", ""))
        url = self.addresses.bay_url(view.bay_id)
        if size is None:
            return self.responder.message(page, "not_found", HTTPStatus.NOT_FOUND)
        if url is None:
            return self.responder.message(page, "no_address", HTTPStatus.SERVICE_UNAVAILABLE)
        return await self._bilingual(
            "poster.html.j2",
            view=view,
            size=size,
            qr_svg=None if bay.dynamic_qr else await self._qr(url),
            # A printed code on a dynamic QR code's bay is what it is there to prevent.
            upi=None if bay.dynamic_qr else _upi_code(bay, self.plans),
        )

    async def async_display(self, page: Page, request: web.Request) -> web.Response:
        """A bay's screen: its name, state and QR code, reloading before the code changes."""
        if request.method != "GET":
            return self.responder.message(page, "not_allowed", HTTPStatus.METHOD_NOT_ALLOWED)
        token = page.query["display"]
        plausible = token.isascii() and len(token) < 100
        runner = _display_runner(self.runners, token) if plausible else None
        if runner is None:
            return self.responder.message(page, "not_found", HTTPStatus.NOT_FOUND)
        bay, view, now = runner.bay, self._bay_view(runner), time.time()
        reload_s = float(DISPLAY_RELOAD_S)
        if bay.dynamic_qr and bay.qr_secret:
            reload_s = min(reload_s, current(bay.qr_secret, bay.qr_validity_s, now)[1])
        if page.query.get("format") == "json":
            return json_answer({"state": view.state.value, "remaining_s": remaining(view.until)})
        url = self.addresses.qr_url(bay, now)
        return await self._bilingual(
            "display.html.j2",
            view=view,
            qr_svg=(
                await self._qr(url) if url and view.state is not BayState.OUT_OF_ORDER else None
            ),
            # Whole seconds, at least one: the page comes back with the next password.
            reload_s=max(math.ceil(reload_s), 1),
            poll_url=page.href(display=token, format="json"),
            remaining_s=remaining(view.until),
            time=local_time,
            minutes_left=minutes_left_until,
        )

    async def _bilingual(self, template: str, **values: Any) -> web.Response:
        """A page in English and Hindi at once (it hangs at a bay), naming the merchant."""
        english, hindi = await self.responder.texts("en"), await self.responder.texts("hi")
        return html(
            self.responder.renderer.render_bilingual(
                template, english, hindi, merchant=self.addresses.merchant_name(), **values
            )
        )

    async def _qr(self, url: str) -> Markup:
        """The QR code of ``url``, drawn once (in the executor: segno takes about 9 ms)."""
        if (svg := self._qr_codes.get(url)) is not None:
            return svg
        drawing = self._drawing.get(url)
        if drawing is None:
            # Requests that arrive while it is drawn wait for the same drawing.
            drawing = self._drawing[url] = self.hass.async_add_executor_job(qr_svg, url)
            drawing.add_done_callback(partial(self._drawn, url))
        # Shielded: one request given up on does not cancel the others' drawing.
        return await asyncio.shield(drawing)

    def _drawn(self, url: str, drawing: asyncio.Future[Markup]) -> None:
        del self._drawing[url]
        if not drawing.cancelled() and drawing.exception() is None:
            self._qr_codes.add(url, drawing.result())


def _display_runner(runners: Mapping[str, BayRunner], token: str) -> BayRunner | None:
    """The bay a display token is for (compared in constant time, every bay)."""
    found = None
    for runner in runners.values():
        mine = runner.bay.display_token or ""
        if hmac.compare_digest(mine.encode(), token.encode()) and mine:
            found = runner
    return found


def _upi_code(bay: Bay, plans: Mapping[str, Plan]) -> dict[str, Any] | None:
    """What the poster prints of the bay's static UPI QR code: its image and its rate plan."""
    plan = bay.rate_plan(plans)
    if bay.qr_code_id is None or not bay.qr_image_url or plan is None:
        return None
    least = plan.quote(plan.min_minutes)  # the smallest amount that buys time
    return {
        "image_url": bay.qr_image_url,
        "rate": rupees(plan.minute_paise),
        "minimum": rupees(least.price_paise),
        "minutes": least.minutes,
    }
