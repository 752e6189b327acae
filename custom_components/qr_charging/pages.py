"""The customer's pages, served by a second webhook of the account (public, GET and POST).

``?bay=<id>`` is a bay's page (its state, plans and Pay buttons), ``?token=<token>`` the page
of one payment's session, ``?bay=<id>&poster=a4|a5`` a printable poster, and ``&format=json``
a small status answer the pages poll. A webhook is reachable wherever Razorpay's is: through
HA Cloud's cloudhook or the owner's external address. A cloudhook passes on only the status,
the body as text and the ``Content-Type``: no redirects, no cookies, no binary bodies, so
moving on to Razorpay is a link plus ``<meta http-equiv="refresh">``.

The rules live in ``pages_model`` (plain Python); this module reads the bays and the ledger,
creates (or reuses) payment links, and answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util import dt as dt_util

from .bay_runner import BayRunner
from .bays import Bays
from .books import Books
from .catalog import Plan
from .const import CONF_PAGES_SECRET, CONF_PAGES_URL, CONF_PAGES_WEBHOOK_ID, DOMAIN, LOGGER
from .devices import bay_identifier
from .ledger import Wanted
from .pages_model import (
    LANGUAGES,
    MAX_FORM_BODY,
    BayState,
    BayView,
    FormError,
    SessionView,
    bay_view,
    choose_language,
    minutes_left,
    parse_form,
    purchase,
    reusable_link,
    rupees,
    session_of_token,
    session_token,
    session_view,
    too_many_open,
)
from .pages_render import TEXT_CATEGORY, Renderer, Texts, load_templates, qr_svg
from .payments import Payments
from .razorpay_api import RazorpayError
from .razorpay_webhook import read_bounded
from .store import StorageError

POSTER_SIZES = {"a4": "A4", "a5": "A5"}
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class _Answer(Exception):
    """Stop handling a request and answer with this response."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _html(body: str, status: HTTPStatus = HTTPStatus.OK) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", headers=_HEADERS)


def _json(data: dict[str, Any]) -> web.Response:
    return web.json_response(data, headers=_HEADERS)


class _Page:
    """One request's language and the relative addresses its page links to."""

    def __init__(self, query: dict[str, str], accept_language: str | None, texts: Texts) -> None:
        self.query = query
        self.lang = choose_language(query.get("lang"), accept_language)
        self.lang_asked = query.get("lang") in LANGUAGES
        self.texts = texts

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


class CustomerPages:
    """The pages of one account's bays."""

    def __init__(  # noqa: PLR0917 - what the pages show and sell
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        bays: Bays,
        payments: Payments,
        books: Books,
        plans: dict[str, Plan],
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.bays = bays
        self.payments = payments
        self.books = books
        self.plans = plans
        self._renderer: Renderer | None = None
        # One link decision at a time per bay: a crowd tapping Pay gets one link.
        self._bay_locks: dict[str, asyncio.Lock] = {}

    @property
    def webhook_id(self) -> str:
        """The pages' webhook id (public: it is printed on every poster)."""
        webhook_id: str = self.entry.data[CONF_PAGES_WEBHOOK_ID]
        return webhook_id

    async def async_setup(self) -> None:
        """Compile the templates (read from disk in the executor)."""
        self._renderer = Renderer(await self.hass.async_add_executor_job(load_templates))

    def register(self) -> Callable[[], None]:
        """Serve the pages on the second webhook; return the undo."""
        webhook.async_register(
            self.hass,
            DOMAIN,
            "QR Charging (customer pages)",
            self.webhook_id,
            self._async_handle,
            local_only=False,
            # PUT only to answer it with a page of its own (other methods HA answers itself).
            allowed_methods=["GET", "POST", "PUT"],
        )
        return partial(webhook.async_unregister, self.hass, self.webhook_id)

    # -- addresses -----------------------------------------------------------------------------

    def base_url(self) -> str | None:
        """The pages' public address: the cloudhook, else HA's external, else internal URL."""
        if url := self.entry.data.get(CONF_PAGES_URL):
            return str(url)
        for allow_internal in (False, True):
            try:
                return webhook.async_generate_url(
                    self.hass, self.webhook_id, allow_internal=allow_internal
                )
            except NoURLAvailableError:
                continue
        return None

    def bay_url(self, bay_id: str) -> str | None:
        """The address of a bay's page (what its QR code holds)."""
        base = self.base_url()
        return f"{base}?{urlencode({'bay': bay_id})}" if base else None

    def links(self, bay_id: str) -> dict[str, str | None]:
        """The addresses the owner prints or shares for a bay."""
        base = self.base_url()
        if base is None:
            return {"page_url": None, "poster_url": None}
        return {
            "page_url": f"{base}?{urlencode({'bay': bay_id})}",
            "poster_url": f"{base}?{urlencode({'bay': bay_id, 'poster': 'a4'})}",
        }

    def _callback(self, lang: str | None, session_id: str) -> str | None:
        base = self.base_url()
        if base is None:
            return None
        token = session_token(self.entry.data[CONF_PAGES_SECRET], session_id)
        return f"{base}?{urlencode({'token': token} | ({'lang': lang} if lang else {}))}"

    # -- the state of a bay --------------------------------------------------------------------

    def in_order(self, runner: BayRunner) -> bool:
        """Whether the bay sells: its agent or switch online, its device not disabled."""
        if not runner.driver.online:
            return False
        # By scanning the account's devices: looking one up by identifier changed its name
        # between the HA versions supported.
        wanted = bay_identifier(self.entry, runner.bay)
        devices = dr.async_entries_for_config_entry(dr.async_get(self.hass), self.entry.entry_id)
        return not any(d.disabled_by is not None and wanted in d.identifiers for d in devices)

    def bay_view(self, runner: BayRunner) -> BayView:
        """What the bay's page shows now."""
        bay = runner.bay
        return bay_view(
            bay_id=bay.bay_id,
            name=bay.name,
            plans=[self.plans[code] for code in bay.plan_codes if code in self.plans],
            running=runner.session,
            in_order=self.in_order(runner),
            limit_s=runner.limit_s,
            now=time.time(),
        )

    # -- answering -----------------------------------------------------------------------------

    async def _async_handle(
        self, hass: HomeAssistant, webhook_id: str, request: web.Request
    ) -> web.Response:
        query = dict(request.query)
        accept = request.headers.get("Accept-Language")
        page = _Page(query, accept, await self._texts(choose_language(query.get("lang"), accept)))
        try:
            if request.method not in ("GET", "POST"):
                return self._message(page, "not_allowed", HTTPStatus.METHOD_NOT_ALLOWED)
            if "bay" in query:
                return await self._async_bay(page, request)
            if "token" in query:
                return await self._async_session(page, request)
            return self._message(page, "not_found", HTTPStatus.NOT_FOUND)
        except _Answer as answer:
            return answer.response
        except StorageError:
            LOGGER.exception("A customer's page could not read the ledger")
            return self._message(page, "unavailable", HTTPStatus.SERVICE_UNAVAILABLE)

    async def _texts(self, lang: str) -> Texts:
        return Texts(await async_get_translations(self.hass, lang, TEXT_CATEGORY, [DOMAIN]), DOMAIN)

    def _message(self, page: _Page, key: str, status: HTTPStatus) -> web.Response:
        return _html(
            self._render(
                "message.html.j2",
                page,
                page.context(),
                heading=page.texts.get("common", key),
                text=page.texts.get("common", f"{key}_note"),
            ),
            status,
        )

    def _render(self, template: str, page: _Page, context: dict[str, Any], **values: Any) -> str:
        assert self._renderer is not None
        return self._renderer.render(
            template, page.texts, **context, time=self._time, minutes_left=_minutes_left, **values
        )

    @staticmethod
    def _time(ts: float | None) -> str:
        if ts is None:
            return ""
        return dt_util.as_local(datetime.fromtimestamp(ts, UTC)).strftime("%H:%M")

    def _runner(self, page: _Page, bay_id: str) -> BayRunner:
        runner = self.bays.runners.get(bay_id)
        if runner is None:
            raise _Answer(self._message(page, "not_found", HTTPStatus.NOT_FOUND))
        return runner

    async def _form(self, page: _Page, request: web.Request) -> dict[str, str]:
        if (getattr(request, "content_length", None) or 0) > MAX_FORM_BODY:
            raise _Answer(self._message(page, "bad_request", HTTPStatus.REQUEST_ENTITY_TOO_LARGE))
        body = await read_bounded(request, MAX_FORM_BODY)
        if len(body) > MAX_FORM_BODY:  # a chunked body, or a cloudhook's (no Content-Length)
            raise _Answer(self._message(page, "bad_request", HTTPStatus.REQUEST_ENTITY_TOO_LARGE))
        try:
            return parse_form(body)
        except FormError as err:
            raise _Answer(self._message(page, "bad_request", HTTPStatus.BAD_REQUEST)) from err

    # -- the bay page --------------------------------------------------------------------------

    async def _async_bay(self, page: _Page, request: web.Request) -> web.Response:
        runner = self._runner(page, page.query["bay"])
        view = self.bay_view(runner)
        wants = page.query.get("poster"), page.query.get("format")
        if request.method == "POST":
            if any(wants):
                return self._message(page, "not_allowed", HTTPStatus.METHOD_NOT_ALLOWED)
            form = await self._form(page, request)
            return await self._async_buy(page, runner, view, form)
        if wants[0] is not None:
            return await self._async_poster(page, view)
        if wants[1] == "json":
            return _json({"state": view.state.value, "remaining_s": _remaining(view.until)})
        return self._bay_page(page, view)

    def _bay_page(
        self,
        page: _Page,
        view: BayView,
        error: str | None = None,
        status: HTTPStatus = HTTPStatus.OK,
    ) -> web.Response:
        return _html(
            self._render(
                "bay.html.j2",
                page,
                page.context(bay=view.bay_id),
                view=view,
                error=error,
                remaining_s=_remaining(view.until),
            ),
            status,
        )

    async def _async_buy(
        self,
        page: _Page,
        runner: BayRunner,
        view: BayView,
        form: dict[str, str],
        again: Callable[[str, HTTPStatus], web.Response] | None = None,
    ) -> web.Response:
        """A Pay button: reuse the open link for the same purchase, or make one; go to it."""

        def refuse(key: str, status: HTTPStatus, **values: Any) -> web.Response:
            text = page.texts.get("bay", f"error_{key}", **values)
            return again(text, status) if again else self._bay_page(page, view, text, status)

        if not view.selling:
            # Out of order, or a session switching on: nothing is sold, no link is made.
            return refuse(view.state.value, HTTPStatus.CONFLICT)
        try:
            wanted = purchase(view, form)
        except FormError as err:
            plan = self.plans.get(form.get("plan", ""))
            return refuse(
                err.key,
                HTTPStatus.BAD_REQUEST,
                low=plan.min_minutes if plan else 0,
                high=plan.max_minutes if plan else 0,
                room=view.room_minutes or 0,
            )
        bay_id = view.bay_id
        lock = self._bay_locks.setdefault(bay_id, asyncio.Lock())
        try:
            async with lock:
                now = time.time()
                links = self.books.ledger.links.values()
                link = reusable_link(
                    links,
                    bay_id=bay_id,
                    plan_code=wanted.plan.code,
                    quote=wanted.quote,
                    intent=view.intent,
                    now=now,
                )
                if link is None:
                    if too_many_open(links, bay_id, now):
                        return refuse("busy", HTTPStatus.TOO_MANY_REQUESTS)
                    created = await self.payments.async_create_link(
                        bay_id,
                        wanted.plan.code,
                        minutes=wanted.quote.minutes if wanted.plan.is_rate else None,
                        intent=view.intent,
                        callback=partial(self._callback_or_none, page),
                    )
                    link = created.link
        except (RazorpayError, StorageError, HomeAssistantError) as err:
            LOGGER.warning("No payment link for a customer at bay %s: %s", bay_id, err)
            return refuse("unavailable", HTTPStatus.SERVICE_UNAVAILABLE)
        amount = rupees(link.amount)
        note_key = "redirect_adds" if view.state is BayState.BUSY else "redirect_starts"
        return _html(
            self._render(
                "redirect.html.j2",
                page,
                {**page.context(bay=bay_id), "poll_url": None},
                url=link.short_url,
                amount=amount,
                note=page.texts.get("bay", note_key, minutes=link.seconds // 60),
            )
        )

    def _callback_or_none(self, page: _Page, session_id: str) -> str:
        # Razorpay takes a link without a callback; the customer then stays on its page.
        return self._callback(page.lang if page.lang_asked else None, session_id) or ""

    async def _async_poster(self, page: _Page, view: BayView) -> web.Response:
        """A printable poster: name, QR code of the bay page, plans, steps in both languages."""
        size = POSTER_SIZES.get(page.query.get("poster", ""))
        url = self.bay_url(view.bay_id)
        if size is None:
            return self._message(page, "not_found", HTTPStatus.NOT_FOUND)
        if url is None:
            return self._message(page, "no_address", HTTPStatus.SERVICE_UNAVAILABLE)
        assert self._renderer is not None
        english, hindi = await self._texts("en"), await self._texts("hi")
        return _html(
            self._renderer.render_poster(english, hindi, view=view, size=size, qr_svg=qr_svg(url))
        )

    # -- the session page ----------------------------------------------------------------------

    async def _async_session(self, page: _Page, request: web.Request) -> web.Response:
        session_id = session_of_token(self.entry.data[CONF_PAGES_SECRET], page.query["token"])
        if session_id is None:
            return self._message(page, "not_found", HTTPStatus.NOT_FOUND)
        found = await self._async_session_view(session_id)
        if found is None:
            return self._message(page, "not_found", HTTPStatus.NOT_FOUND)
        bay_name, view = found
        runner = self.bays.runners.get(view.bay_id)
        bay = self.bay_view(runner) if runner is not None else None
        own_bay = bay if bay is not None and bay.running_session_id else None
        if own_bay is not None and own_bay.running_session_id != view.running_session_id:
            own_bay = None  # another customer's session runs there now

        def show(error: str | None = None, status: HTTPStatus = HTTPStatus.OK) -> web.Response:
            return _html(
                self._render(
                    "session.html.j2",
                    page,
                    page.context(token=page.query["token"]),
                    view=view,
                    bay_view=own_bay,
                    bay_name=bay_name,
                    bay_url=page.href(bay=view.bay_id),
                    error=error,
                    remaining_s=_remaining(view.until),
                    countdown=_countdown(view.until),
                ),
                status,
            )

        if request.method == "POST":
            return await self._async_add_time(page, request, runner, own_bay, show)
        if page.query.get("format") == "json":
            return _json({"state": view.stage.value, "remaining_s": _remaining(view.until)})
        return show()

    async def _async_add_time(
        self,
        page: _Page,
        request: web.Request,
        runner: BayRunner | None,
        bay: BayView | None,
        show: Callable[[str, HTTPStatus], web.Response],
    ) -> web.Response:
        """An "add time" button of the session page: only while this session runs."""
        if page.query.get("format"):
            return self._message(page, "not_allowed", HTTPStatus.METHOD_NOT_ALLOWED)
        form = await self._form(page, request)
        if bay is None or runner is None:
            return show(page.texts.get("bay", "error_session_over"), HTTPStatus.CONFLICT)
        return await self._async_buy(page, runner, bay, form, again=show)

    async def _async_session_view(self, session_id: str) -> tuple[str, SessionView] | None:
        """The page of the link that pays for ``session_id``: read in one look at the books."""
        wanted = Wanted(reference_ids={session_id}, session_ids={session_id})
        async with self.books.change(wanted) as ledger:
            link = ledger.link_by_reference(session_id)
            if link is None:
                return None
            payment = ledger.payments.get(link.payment_id) if link.payment_id else None
            session = (
                ledger.sessions.get(payment.session_id)
                if payment is not None and payment.session_id
                else None
            )
            refunds = [
                r for r in ledger.refunds.values() if payment and r.payment_id == payment.payment_id
            ]
            view = session_view(link, payment, session, refunds, time.time())
        bay = self.bays.configs.get(view.bay_id)
        return (bay.name if bay else view.bay_id), view


def _remaining(until: float | None) -> int:
    return max(round(until - time.time()), 0) if until is not None else 0


def _minutes_left(until: float | None) -> int:
    return minutes_left(until, time.time()) if until is not None else 0


def _countdown(until: float | None) -> str:
    seconds = _remaining(until)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
