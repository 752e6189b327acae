"""How the customer's pages answer: one request's page, its texts, templates, bounded forms.

Shared by the bay page (``pages``), the session page (``pages_session``) and the poster and
display (``pages_screens``). Every answer carries the same headers: never cached, never framed,
no referrer.
"""

from __future__ import annotations

import math
import time
from copy import copy
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from homeassistant.core import HomeAssistant
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util import dt as dt_util
from homeassistant.util.aiohttp import MockRequest

from .const import DOMAIN, LOGGER
from .pages_model import (
    LANGUAGES,
    MAX_FORM_BODY,
    FormError,
    choose_language,
    minutes_left,
    parse_form,
)
from .pages_render import TEXT_CATEGORY, Renderer, Texts, compiled_renderer
from .razorpay_webhook import read_bounded

HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class Answer(Exception):
    """Stop handling a request and answer with this response."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def html(body: str, status: HTTPStatus = HTTPStatus.OK) -> web.Response:
    """An HTML answer with the pages' headers."""
    return web.Response(text=body, status=status, content_type="text/html", headers=HEADERS)


def json_answer(data: dict[str, Any]) -> web.Response:
    """A JSON answer (what the pages poll) with the pages' headers."""
    return web.json_response(data, headers=HEADERS)


class Page:
    """One request's language and the relative addresses its page links to."""

    def __init__(
        self,
        query: dict[str, str],
        accept_language: str | None,
        texts: Texts,
        client: str | None = None,
    ) -> None:
        self.query = query
        self.lang = choose_language(query.get("lang"), accept_language)
        self.lang_asked = query.get("lang") in LANGUAGES
        self.texts = texts
        # Who asks (``pages_budget.client_of``): None through the cloudhook.
        self.client = client

    def at(self, **query: str) -> Page:
        """The same customer's page at another address (its language kept)."""
        moved = copy(self)
        moved.query = query | ({"lang": self.lang} if self.lang_asked else {})
        return moved

    def href(self, **params: str) -> str:
        """A relative address on this webhook (works through a cloudhook as well)."""
        return "?" + urlencode(params)

    def context(self, **params: str) -> dict[str, Any]:
        """What every page of this request needs."""
        other = next(lang for lang in LANGUAGES if lang != self.lang)
        return {
            "lang": self.lang,
            "other_lang": other,
            "lang_asked": self.lang_asked,
            "switch_url": self.href(**params, lang=other),
            "poll_url": self.href(**params, format="json"),
        }


class Responder:
    """The templates and texts every page of an account is rendered with."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.hass = hass
        self._renderer: Renderer | None = None
        self._refusals: dict[str, str] = {}

    @property
    def renderer(self) -> Renderer:
        """The compiled templates (``async_setup`` compiles them before any request)."""
        assert self._renderer is not None
        return self._renderer

    async def async_setup(self) -> None:
        """Read and compile the templates, in the executor."""
        self._renderer = await self.hass.async_add_executor_job(compiled_renderer)

    async def page(self, request: web.Request, client: str | None = None) -> Page:
        """The page a request (from ``client``) asks for, in its language."""
        query = dict(request.query)
        accept = request.headers.get("Accept-Language")
        texts = await self.texts(choose_language(query.get("lang"), accept))
        return Page(query, accept, texts, client)

    async def texts(self, lang: str) -> Texts:
        """The pages' texts in ``lang``."""
        return Texts(await async_get_translations(self.hass, lang, TEXT_CATEGORY, [DOMAIN]), DOMAIN)

    async def too_many(self, request: web.Request, wait: float) -> web.Response:
        """429 past the client's budget: a page rendered once per language (it costs ~nothing)."""
        lang = choose_language(request.query.get("lang"), request.headers.get("Accept-Language"))
        if (body := self._refusals.get(lang)) is None:
            page = Page({"lang": lang}, None, await self.texts(lang))
            body = self._refusals[lang] = self.message_body(page, "too_many")
        answer = html(body, HTTPStatus.TOO_MANY_REQUESTS)
        answer.headers["Retry-After"] = str(math.ceil(wait))
        return answer

    def message(self, page: Page, key: str, status: HTTPStatus) -> web.Response:
        """A page that only says something (``common.<key>`` and its note)."""
        return html(self.message_body(page, key), status)

    def message_body(self, page: Page, key: str) -> str:
        """The HTML of ``message``."""
        return self.render(
            "message.html.j2",
            page,
            page.context(),
            heading=page.texts.get("common", key),
            text=page.texts.get("common", f"{key}_note"),
        )

    def render(self, template: str, page: Page, context: dict[str, Any], **values: Any) -> str:
        """A template in the page's language, with the clock helpers every page uses."""
        return self.renderer.render(
            template,
            page.texts,
            **context,
            time=local_time,
            minutes_left=minutes_left_until,
            **values,
        )

    async def form(self, page: Page, request: web.Request) -> dict[str, str]:
        """The fields of a POST's form, read with a bound (``Answer`` when it cannot be read)."""
        if (getattr(request, "content_length", None) or 0) > MAX_FORM_BODY:
            raise Answer(self.message(page, "bad_request", HTTPStatus.REQUEST_ENTITY_TOO_LARGE))
        body = await read_bounded(request, MAX_FORM_BODY)
        if len(body) > MAX_FORM_BODY:  # a chunked body, or a cloudhook's (no Content-Length)
            raise Answer(self.message(page, "bad_request", HTTPStatus.REQUEST_ENTITY_TOO_LARGE))
        try:
            return parse_form(body)
        except FormError as err:
            # Anyone can send anything: one quiet line, never a traceback.
            LOGGER.debug("A customer's page got a form it cannot read: %s", err)
            raise Answer(self.message(page, "bad_request", HTTPStatus.BAD_REQUEST)) from err


def remote_of(request: web.Request | MockRequest) -> str | None:
    """The client's address; None through HA Cloud's cloudhook (a MockRequest: it has none)."""
    return None if isinstance(request, MockRequest) else request.remote


def local_time(ts: float | None) -> str:
    """A timestamp as the local ``HH:MM`` the pages show."""
    if ts is None:
        return ""
    return dt_util.as_local(datetime.fromtimestamp(ts, UTC)).strftime("%H:%M")


def remaining(until: float | None) -> int:
    """Whole seconds left until ``until`` (0 when past or none)."""
    return max(round(until - time.time()), 0) if until is not None else 0


def minutes_left_until(until: float | None) -> int:
    """Whole minutes left until ``until``, rounded up (0 when none)."""
    return minutes_left(until, time.time()) if until is not None else 0


def countdown(until: float | None) -> str:
    """The time left as ``H:MM:SS`` or ``M:SS``."""
    seconds = remaining(until)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
