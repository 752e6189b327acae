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
import hmac
import math
import secrets
import time
from collections.abc import Callable
from copy import copy
from dataclasses import replace
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
from homeassistant.util.aiohttp import MockRequest
from markupsafe import Markup

from .bay_runner import BayRunner
from .bays import Bays
from .books import Books
from .catalog import Bay, Plan
from .const import (
    CONF_MERCHANT_NAME,
    CONF_PAGES_SECRET,
    CONF_PAGES_URL,
    CONF_PAGES_WEBHOOK_ID,
    DOMAIN,
    LOGGER,
)
from .devices import bay_identifier
from .holds import HoldGuard, hold_of
from .intents import HOLD, START
from .ledger import LinkRecord, Wanted
from .pages_budget import Budget, client_of
from .pages_model import (
    LANGUAGES,
    MAX_FORM_BODY,
    BayState,
    BayView,
    FormError,
    Purchase,
    SessionView,
    bay_view,
    cancel_key,
    choose_language,
    may_cancel,
    minutes_left,
    page_ticket,
    parse_form,
    purchase,
    reusable_link,
    rupees,
    session_of_token,
    session_token,
    session_view,
    ticket_nonce,
    too_many_open,
)
from .pages_render import TEXT_CATEGORY, QrCodes, Renderer, Texts, compiled_renderer, qr_svg
from .payments import Payments
from .razorpay_api import RazorpayError, is_outage
from .razorpay_webhook import read_bounded
from .store import StorageError
from .totp import accepts, current

# A display whose bay has no dynamic QR code still reloads this often (its state, its clock).
DISPLAY_RELOAD_S = 60

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


class _Paid(Exception):
    """The asking page's earlier link was paid: show its session (``session_id``)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(session_id)
        self.session_id = session_id


class _Refused(Exception):
    """No link for a Pay tap: the bay page's text ``key``, with this status and view."""

    def __init__(self, key: str, status: HTTPStatus, shown: BayView | None = None) -> None:
        super().__init__(key)
        self.key = key
        self.status = status
        self.shown = shown


def _html(body: str, status: HTTPStatus = HTTPStatus.OK) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", headers=_HEADERS)


def _json(data: dict[str, Any]) -> web.Response:
    return web.json_response(data, headers=_HEADERS)


class _Page:
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

    def at(self, **query: str) -> _Page:
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
        # One link decision at a time per bay: of a crowd tapping Pay, one gets the hold.
        self._bay_locks: dict[str, asyncio.Lock] = {}
        # The page that made each open link (its ticket's nonce, or "session:<id>" for a
        # running session's own page): a second tap of the page that holds a bay goes to the
        # same link, and only that page is given the link's session page and cancel key.
        # Lost at a restart; the session page keeps the link.
        self._makers: dict[str, str] = {}
        # Links being closed now: one call to Razorpay per link, none handed out meanwhile.
        self._closing: set[str] = set()
        self._guard = HoldGuard()
        # What each client may still ask (the pages are public: the loop is HA's).
        self._budget = Budget()
        self._refusals: dict[str, str] = {}
        self._qr_codes = QrCodes()
        self._drawing: dict[str, asyncio.Future[Markup]] = {}

    @property
    def webhook_id(self) -> str:
        """The pages' webhook id (public: it is printed on every poster)."""
        webhook_id: str = self.entry.data[CONF_PAGES_WEBHOOK_ID]
        return webhook_id

    async def async_setup(self) -> None:
        """Read and compile the templates, in the executor."""
        self._renderer = await self.hass.async_add_executor_job(compiled_renderer)

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

    def qr_url(self, bay: Bay, now: float) -> str | None:
        """What the bay's QR code holds now: its page, with the password of a dynamic one."""
        url = self.bay_url(bay.bay_id)
        if url is None or not bay.dynamic_qr or bay.qr_secret is None:
            return url
        return f"{url}&{urlencode({'totp': current(bay.qr_secret, bay.qr_validity_s, now)[0]})}"

    def links(self, bay_id: str, *, display: bool = False) -> dict[str, str | None]:
        """The addresses the owner prints or shares for a bay; ``display``: the secret one too.

        The display's address works without a login and shows a valid code: whoever has it can
        buy (and hold the bay) from anywhere, so only an admin is given it.
        """
        base = self.base_url()
        bay = self.bays.configs.get(bay_id)
        token = bay.display_token if bay is not None else None
        links: dict[str, str | None] = {
            "page_url": f"{base}?{urlencode({'bay': bay_id})}" if base else None,
            "poster_url": f"{base}?{urlencode({'bay': bay_id, 'poster': 'a4'})}" if base else None,
        }
        if display:
            links["display_url"] = (
                f"{base}?{urlencode({'display': token})}" if base and token else None
            )
        return links

    def merchant_name(self) -> str:
        """The business name Razorpay's checkout shows, as the owner entered it."""
        return str(self.entry.options.get(CONF_MERCHANT_NAME) or self.hass.config.location_name)

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

    def bay_view(self, runner: BayRunner, nonce: str | None = None) -> BayView:
        """What the bay's page shows now (to the page with this ticket nonce, if given)."""
        bay = runner.bay
        now = time.time()
        hold = hold_of(self.books.ledger.links.values(), bay.bay_id, now)
        return bay_view(
            bay_id=bay.bay_id,
            name=bay.name,
            plans=[self.plans[code] for code in bay.plan_codes if code in self.plans],
            running=runner.session,
            in_order=self.in_order(runner),
            limit_s=runner.limit_s,
            now=now,
            # Held for another customer; the holder's own page still goes to their link.
            held=hold is not None and not self._made_by(hold.link_id, nonce),
        )

    # -- answering -----------------------------------------------------------------------------

    async def _async_handle(
        self, hass: HomeAssistant, webhook_id: str, request: web.Request
    ) -> web.Response:
        remote = _remote(request)
        client = client_of(remote)
        if wait := self._budget.take(client, time.monotonic()):
            return await self._too_many(request, remote, wait)
        query = dict(request.query)
        accept = request.headers.get("Accept-Language")
        texts = await self._texts(choose_language(query.get("lang"), accept))
        page = _Page(query, accept, texts, client)
        try:
            if request.method not in ("GET", "POST"):
                return self._message(page, "not_allowed", HTTPStatus.METHOD_NOT_ALLOWED)
            for key, handler in (
                ("bay", self._async_bay),
                ("display", self._async_display),
                ("token", self._async_session),
            ):
                if key in query:
                    return await handler(page, request)
            return self._message(page, "not_found", HTTPStatus.NOT_FOUND)
        except _Answer as answer:
            return answer.response
        except StorageError:
            LOGGER.exception("A customer's page could not read the ledger")
            return self._message(page, "unavailable", HTTPStatus.SERVICE_UNAVAILABLE)

    async def _too_many(
        self, request: web.Request, remote: str | None, wait: float
    ) -> web.Response:
        """429 past the client's budget: a page rendered once per language (it costs ~nothing)."""
        LOGGER.debug("Too many requests for the customer's pages from %s", remote or "the cloud")
        lang = choose_language(request.query.get("lang"), request.headers.get("Accept-Language"))
        if (body := self._refusals.get(lang)) is None:
            page = _Page({"lang": lang}, None, await self._texts(lang))
            body = self._refusals[lang] = self._message_body(page, "too_many")
        answer = _html(body, HTTPStatus.TOO_MANY_REQUESTS)
        answer.headers["Retry-After"] = str(math.ceil(wait))
        return answer

    async def _texts(self, lang: str) -> Texts:
        return Texts(await async_get_translations(self.hass, lang, TEXT_CATEGORY, [DOMAIN]), DOMAIN)

    def _message(self, page: _Page, key: str, status: HTTPStatus) -> web.Response:
        return _html(self._message_body(page, key), status)

    def _message_body(self, page: _Page, key: str) -> str:
        return self._render(
            "message.html.j2",
            page,
            page.context(),
            heading=page.texts.get("common", key),
            text=page.texts.get("common", f"{key}_note"),
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

    def _bay_config(self, bay_id: str) -> Bay:
        return self.bays.runners[bay_id].bay

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
            # Anyone can send anything: one quiet line, never a traceback.
            LOGGER.debug("A customer's page got a form it cannot read: %s", err)
            raise _Answer(self._message(page, "bad_request", HTTPStatus.BAD_REQUEST)) from err

    # -- the bay page --------------------------------------------------------------------------

    async def _async_bay(self, page: _Page, request: web.Request) -> web.Response:
        runner = self._runner(page, page.query["bay"])
        wants = page.query.get("poster"), page.query.get("format")
        form: dict[str, str] = {}
        if request.method == "POST":
            if any(wants):
                return self._message(page, "not_allowed", HTTPStatus.METHOD_NOT_ALLOWED)
            form = await self._form(page, request)
        elif wants[0] is not None:
            return await self._async_poster(page, runner.bay, self.bay_view(runner))
        elif wants[1] == "json":
            # The holder's page polls with its ticket: to it the bay is not "someone paying".
            given = page.query.get("ticket")
            bay_id = runner.bay.bay_id
            secret = self.entry.data[CONF_PAGES_SECRET]
            nonce = ticket_nonce(secret, bay_id, given, time.time(), self._holding(bay_id))
            view = self.bay_view(runner, nonce)
            return _json({"state": view.state.value, "remaining_s": _remaining(view.until)})
        nonce, ticket = self._ticket(runner.bay, page, form)
        view = replace(self.bay_view(runner, nonce), locked=ticket is None)
        if request.method == "POST":
            return await self._async_buy(page, runner, view, form, ticket=(nonce, ticket))
        return self._bay_page(page, view, ticket)

    def _ticket(self, bay: Bay, page: _Page, form: dict[str, str]) -> tuple[str | None, str | None]:
        """The page's ticket (kept, or new), or None while a dynamic QR code's is missing.

        A bay with a dynamic QR code sells only to a page opened with a valid password (the
        display's QR code) or carrying a ticket such a page was given.
        """
        now = time.time()
        secret = self.entry.data[CONF_PAGES_SECRET]
        given = form.get("ticket") or page.query.get("ticket")
        holding = self._holding(bay.bay_id)
        if (nonce := ticket_nonce(secret, bay.bay_id, given, now, holding)) is not None:
            return nonce, given
        if bay.dynamic_qr and not (
            bay.qr_secret and accepts(bay.qr_secret, bay.qr_validity_s, page.query.get("totp"), now)
        ):
            return None, None
        nonce = secrets.token_urlsafe(9)
        return nonce, page_ticket(secret, bay.bay_id, nonce, now)

    def _bay_page(
        self,
        page: _Page,
        view: BayView,
        ticket: str | None,
        error: str | None = None,
        status: HTTPStatus = HTTPStatus.OK,
    ) -> web.Response:
        # A dynamic QR code's page keeps its ticket when it reloads or switches language.
        keep = ticket is not None and self._bay_config(view.bay_id).dynamic_qr
        params = {"bay": view.bay_id} | ({"ticket": ticket} if keep and ticket else {})
        context = page.context(**params)
        if ticket:
            # Its poll carries the ticket, so the holder's page is not told "someone is paying".
            context["poll_url"] = page.href(**(params | {"ticket": ticket}), format="json")
        return _html(
            self._render(
                "bay.html.j2",
                page,
                context,
                view=view,
                ticket=ticket,
                reload_url=page.href(**params),
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
        *,
        again: Callable[[str, HTTPStatus], web.Response] | None = None,
        ticket: tuple[str | None, str | None] = (None, None),
        own: str | None = None,
    ) -> web.Response:
        """A Pay button: hold the free bay with a new link (or this page's), or add time.

        ``own`` is the running session's id when its own session page asks (its token).
        """

        def refuse(
            key: str, status: HTTPStatus, shown: BayView = view, **values: Any
        ) -> web.Response:
            text = page.texts.get("bay", f"error_{key}", **values)
            if again:
                return again(text, status)
            return self._bay_page(page, shown, ticket[1], text, status)

        if not view.selling:
            # No valid dynamic QR code, out of order, held, or a session switching on: nothing
            # is sold, no link is made.
            locked = view.locked
            return refuse(
                "scan_screen" if locked else view.state.value,
                HTTPStatus.FORBIDDEN if locked else HTTPStatus.CONFLICT,
            )
        try:
            wanted = purchase(view, form)
        except FormError as err:
            LOGGER.debug("A customer's Pay form at bay %s was refused: %s", view.bay_id, err)
            plan = self.plans.get(form.get("plan", ""))
            return refuse(
                err.key,
                HTTPStatus.BAD_REQUEST,
                low=plan.min_minutes if plan else 0,
                high=plan.max_minutes if plan else 0,
                room=view.room_minutes or 0,
            )
        bay_id = view.bay_id
        # Who asks: the page's ticket, or the running session's own page (its token).
        maker = ticket[0] or (f"session:{own}" if own else None)
        lock = self._bay_locks.setdefault(bay_id, asyncio.Lock())
        try:
            async with lock:
                link = await self._async_link_for(runner, view, wanted, maker, own, page)
        except _Refused as refused:
            return refuse(refused.key, refused.status, refused.shown or view)
        except _Paid as paid:
            # Their earlier link was paid meanwhile: their session's page, not a second link.
            return await self._async_session(page.at(**self._payers_query(paid.session_id)), None)
        except (RazorpayError, StorageError, HomeAssistantError) as err:
            outage = isinstance(err, RazorpayError) and is_outage(err)
            # An outage is logged once for the account (``razorpay_api.Reachability``).
            log = LOGGER.debug if outage else LOGGER.warning
            log("No payment link for a customer at bay %s: %s", bay_id, err)
            return refuse("try_later" if outage else "unavailable", HTTPStatus.SERVICE_UNAVAILABLE)
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
                # Its payer's page, with the key to cancel: a link goes only to its maker.
                session_url=page.href(**self._payers_query(link.reference_id)),
            )
        )

    def _payers_query(self, session_id: str) -> dict[str, str]:
        """The query of a payment's own page, with the key to cancel (for its maker only)."""
        secret = self.entry.data[CONF_PAGES_SECRET]
        return {"token": session_token(secret, session_id), "key": cancel_key(secret, session_id)}

    async def _async_link_for(  # noqa: PLR0917 - one decision, under the bay's lock
        self,
        runner: BayRunner,
        view: BayView,
        wanted: Purchase,
        maker: str | None,
        own: str | None,
        page: _Page,
    ) -> LinkRecord:
        """The link for a Pay tap (``_Refused`` if none, ``_Paid`` if the page's was paid).

        Decided under the bay's lock: of two pages tapping at once, one gets the hold. A link
        is reused only for the page that made it (``maker``): handed to another, its maker
        would keep the stranger's session page and the key to cancel what they pay.
        """
        bay_id = view.bay_id
        now = time.time()
        # A link being cancelled is handed to no one.
        links = [
            link for link in self.books.ledger.links.values() if link.link_id not in self._closing
        ]
        reuse = partial(
            reusable_link, bay_id=bay_id, plan_code=wanted.plan.code, quote=wanted.quote, now=now
        )
        served = runner.totals.sessions
        intent = view.intent
        hold_s: int | None = None
        if intent == START:
            hold = hold_of(links, bay_id, now)
            if hold is not None and not self._made_by(hold.link_id, maker):
                held = replace(view, state=BayState.HELD)
                raise _Refused(BayState.HELD.value, HTTPStatus.CONFLICT, held)
            if hold is not None:
                # The holder taps again: their link, or, for another choice, a new one.
                theirs = self.books.ledger.links[hold.link_id]
                if (link := reuse([theirs], intent=HOLD)) is not None:
                    return link
                if await self._async_close(theirs) == "paid":
                    raise _Paid(theirs.reference_id)
            hold_s = self._guard.hold_seconds(bay_id, served, now, runner.bay.hold_minutes * 60)
            if hold_s is not None:
                intent = HOLD
        mine = [link for link in links if self._made_by(link.link_id, maker)]
        if intent != HOLD and (link := reuse(mine, intent=intent)) is not None:
            return link
        if (wait := self.payments.api.client.reachability.waiting()) > 0:
            LOGGER.debug("No link made at bay %s: Razorpay left alone for %.0f s", bay_id, wait)
            raise _Refused("try_later", HTTPStatus.SERVICE_UNAVAILABLE)
        # The running session's own page spends a budget of its own, never the bay's.
        # A client known by its address may spend only a few of the bay's (``HoldGuard``).
        if (own is None and too_many_open(links, bay_id, now)) or not self._guard.may_make_link(
            bay_id, now, own, page.client
        ):
            raise _Refused("busy", HTTPStatus.TOO_MANY_REQUESTS)
        # Counted before the call: a refused or failed call costs the budget too.
        self._guard.spend(bay_id, now, own, page.client)
        created = await self.payments.async_create_link(
            bay_id,
            wanted.plan.code,
            minutes=wanted.quote.minutes if wanted.plan.is_rate else None,
            intent=intent,
            callback=partial(self._callback_or_none, page),
            hold_s=hold_s,
        )
        link = created.link
        if intent == HOLD:
            self._guard.held(bay_id, link.link_id, served=served, now=now, until=link.expire_by)
        if maker is not None:
            self._remember(maker, link.link_id)
        return link

    def _made_by(self, link_id: str, maker: str | None) -> bool:
        """Whether the asking page (``maker``) made this link."""
        return maker is not None and self._makers.get(link_id) == maker

    def _holding(self, bay_id: str) -> set[str]:
        """The pages (ticket nonces) whose link of the bay is open: their tickets stay valid."""
        links, now = self.books.ledger.links, time.time()
        return {
            maker
            for link_id, maker in self._makers.items()
            if (link := links.get(link_id)) is not None
            and link.bay_id == bay_id
            and link.status == "created"
            and link.payment_id is None
            and link.expire_by > now
        }

    def _remember(self, maker: str, link_id: str) -> None:
        """Which page made a link (links no longer open are forgotten)."""
        open_links = self.books.ledger.links
        self._makers = {i: m for i, m in self._makers.items() if i in open_links}
        self._makers[link_id] = maker

    async def _async_close(self, link: LinkRecord) -> str | None:
        """Close an unpaid link (``Payments.async_cancel_link``), one close of it at a time.

        Returns the status it ended with (``paid`` if Razorpay refused: it was paid), or None
        when it is being closed already.
        """
        if link.link_id in self._closing:
            return None
        self._closing.add(link.link_id)
        try:
            status = await self.payments.async_cancel_link(link)
        finally:
            self._closing.discard(link.link_id)
        if status in ("cancelled", "expired"):
            self._guard.released(link.link_id, time.time())
        return status

    def _callback_or_none(self, page: _Page, session_id: str) -> str:
        # Razorpay takes a link without a callback; the customer then stays on its page.
        return self._callback(page.lang if page.lang_asked else None, session_id) or ""

    async def _async_poster(self, page: _Page, bay: Bay, view: BayView) -> web.Response:
        """A printable poster: name, QR code of the bay page, plans, steps in both languages.

        A bay with a dynamic QR code gets no printed code (it would not sell): the poster says
        to scan the one on the bay's screen. Every poster names the merchant to check.
        """
        size = POSTER_SIZES.get(page.query.get("poster", ""))
        url = self.bay_url(view.bay_id)
        if size is None:
            return self._message(page, "not_found", HTTPStatus.NOT_FOUND)
        if url is None:
            return self._message(page, "no_address", HTTPStatus.SERVICE_UNAVAILABLE)
        assert self._renderer is not None
        english, hindi = await self._texts("en"), await self._texts("hi")
        return _html(
            self._renderer.render_bilingual(
                "poster.html.j2",
                english,
                hindi,
                view=view,
                size=size,
                qr_svg=None if bay.dynamic_qr else await self._qr(url),
                # A printed code on a dynamic QR code's bay is what it is there to prevent.
                upi=None if bay.dynamic_qr else _upi_code(bay, self.plans),
                merchant=self.merchant_name(),
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

    # -- the bay's display ---------------------------------------------------------------------

    def _display_runner(self, token: str) -> BayRunner | None:
        """The bay a display token is for (compared in constant time, every bay)."""
        found = None
        for runner in self.bays.runners.values():
            mine = runner.bay.display_token or ""
            if hmac.compare_digest(mine.encode(), token.encode()) and mine:
                found = runner
        return found

    async def _async_display(self, page: _Page, request: web.Request) -> web.Response:
        """A bay's screen: its name, state and QR code, reloading before the code changes."""
        if request.method != "GET":
            return self._message(page, "not_allowed", HTTPStatus.METHOD_NOT_ALLOWED)
        token = page.query["display"]
        runner = self._display_runner(token) if token.isascii() and len(token) < 100 else None
        if runner is None:
            return self._message(page, "not_found", HTTPStatus.NOT_FOUND)
        bay, view, now = runner.bay, self.bay_view(runner), time.time()
        reload_s = float(DISPLAY_RELOAD_S)
        if bay.dynamic_qr and bay.qr_secret:
            reload_s = min(reload_s, current(bay.qr_secret, bay.qr_validity_s, now)[1])
        if page.query.get("format") == "json":
            return _json({"state": view.state.value, "remaining_s": _remaining(view.until)})
        url = self.qr_url(bay, now)
        assert self._renderer is not None
        english, hindi = await self._texts("en"), await self._texts("hi")
        return _html(
            self._renderer.render_bilingual(
                "display.html.j2",
                english,
                hindi,
                view=view,
                qr_svg=(
                    await self._qr(url) if url and view.state is not BayState.OUT_OF_ORDER else None
                ),
                merchant=self.merchant_name(),
                # Whole seconds, at least one: the page comes back with the next password.
                reload_s=max(math.ceil(reload_s), 1),
                poll_url=page.href(display=token, format="json"),
                remaining_s=_remaining(view.until),
                time=self._time,
                minutes_left=_minutes_left,
            )
        )

    # -- the session page ----------------------------------------------------------------------

    async def _async_session(self, page: _Page, request: web.Request | None) -> web.Response:
        """The session page; a POST is one of its buttons (``request`` None: just show it)."""
        secret = self.entry.data[CONF_PAGES_SECRET]
        session_id = session_of_token(secret, page.query["token"])
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

        # The key to cancel, given only to the page that made the link (``cancel_key``).
        key = page.query.get("key")
        keep = {"key": key} if key and may_cancel(secret, session_id, key) else {}

        def show(error: str | None = None, status: HTTPStatus = HTTPStatus.OK) -> web.Response:
            return _html(
                self._render(
                    "session.html.j2",
                    page,
                    page.context(token=page.query["token"], **keep),
                    view=view,
                    may_cancel=bool(keep),
                    bay_view=own_bay,
                    ticket=None,  # its own page: the token is proof enough to add time
                    bay_name=bay_name,
                    bay_url=page.href(bay=view.bay_id),
                    error=error,
                    remaining_s=_remaining(view.until),
                    countdown=_countdown(view.until),
                ),
                status,
            )

        if request is not None and request.method == "POST":
            return await self._async_session_form(
                page, request, session_id, (runner, own_bay), show
            )
        if page.query.get("format") == "json":
            return _json({"state": view.stage.value, "remaining_s": _remaining(view.until)})
        return show()

    async def _async_session_form(
        self,
        page: _Page,
        request: web.Request,
        session_id: str,
        bay: tuple[BayRunner | None, BayView | None],
        show: Callable[[str, HTTPStatus], web.Response],
    ) -> web.Response:
        """A button of the session page: cancel the unpaid link (with the key), or add time."""
        if page.query.get("format"):
            return self._message(page, "not_allowed", HTTPStatus.METHOD_NOT_ALLOWED)
        form = await self._form(page, request)
        if "cancel" in form:
            return await self._async_cancel(page, session_id, show)
        return await self._async_add_time(page, *bay, form, show)

    async def _async_cancel(
        self, page: _Page, session_id: str, show: Callable[[str, HTTPStatus], web.Response]
    ) -> web.Response:
        """The customer cancels their unpaid link (with the key): at Razorpay, then here."""
        if not may_cancel(self.entry.data[CONF_PAGES_SECRET], session_id, page.query.get("key")):
            # The token alone (Razorpay's callback, a shared address): it may see, not cancel.
            return show(page.texts.get("bay", "error_not_yours"), HTTPStatus.FORBIDDEN)
        link = self.books.ledger.link_by_reference(session_id)
        if link is not None and link.intent != HOLD:
            # It holds nothing: no call to Razorpay (cancel and retake would churn the bay's
            # budget); its page forgets it, and it expires unpaid (or starts, if paid).
            self._makers.pop(link.link_id, None)
        elif link is not None and link.status == "created" and link.payment_id is None:
            try:
                # Not under the bay's lock: a Pay tap never waits for Razorpay to cancel.
                await self._async_close(link)
            except (RazorpayError, StorageError, HomeAssistantError) as err:
                LOGGER.info("A customer's link at bay %s was not cancelled: %s", link.bay_id, err)
        # Shown as after a GET; a cloudhook's MockRequest has no clone() to make one with.
        return await self._async_session(page, None)

    async def _async_add_time(
        self,
        page: _Page,
        runner: BayRunner | None,
        bay: BayView | None,
        form: dict[str, str],
        show: Callable[[str, HTTPStatus], web.Response],
    ) -> web.Response:
        """An "add time" button of the session page: only while this session runs."""
        if bay is None or runner is None:
            return show(page.texts.get("bay", "error_session_over"), HTTPStatus.CONFLICT)
        return await self._async_buy(
            page, runner, bay, form, again=show, own=bay.running_session_id
        )

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


def _remote(request: web.Request | MockRequest) -> str | None:
    """The client's address; None through HA Cloud's cloudhook (a MockRequest: it has none)."""
    return None if isinstance(request, MockRequest) else request.remote


def _upi_code(bay: Bay, plans: dict[str, Plan]) -> dict[str, Any] | None:
    """What the poster prints of the bay's static UPI QR code: its image and its rate plan."""
    plan = bay.rate_plan(plans)
    if bay.qr_code_id is None or not bay.qr_image_url or plan is None:
        return None
    least = plan.quote(plan.min_minutes)  # the smallest amount that buys time
    return {
        "image_url": bay.qr_image_url,
        "rate": rupees(plan.rate_paise),
        "minimum": rupees(least.price_paise),
        "minutes": least.minutes,
    }


def _remaining(until: float | None) -> int:
    return max(round(until - time.time()), 0) if until is not None else 0


def _minutes_left(until: float | None) -> int:
    return minutes_left(until, time.time()) if until is not None else 0


def _countdown(until: float | None) -> str:
    seconds = _remaining(until)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
