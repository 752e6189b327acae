"""The customer's pages, served by a second webhook of the account (public, GET and POST).

``?bay=<id>`` is a bay's page (its state, plans and Pay buttons), ``?token=<token>`` the page
of one payment's session (``pages_session``), ``&receipt=a4|roll`` its receipt
(``pages_receipt``), ``?bay=<id>&poster=a4|a5`` a printable poster and ``?display=<token>``
a bay's screen (``pages_screens``), and ``&format=json`` a small status answer the pages poll.
A webhook is reachable wherever Razorpay's is: through HA Cloud's cloudhook or the owner's
external address. A cloudhook passes on only the status, the body as text and the
``Content-Type``: no redirects, no cookies, no binary bodies, so moving on to Razorpay is a
link plus ``<meta http-equiv="refresh">``.

This module only answers HTTP: the rules live in ``pages_model`` (plain Python), the Pay
decision in ``pages_desk`` (plain Python), the addresses in ``pages_addresses``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from http import HTTPStatus
from typing import Any

from aiohttp import web
from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .bay_runner import BayRunner
from .bays import Bays
from .books import Books
from .catalog import (
    Bay,
    Plan,
)
from .const import CONF_PAGES_SECRET, DOMAIN, LOGGER
from .devices import bay_in_order
from .pages_addresses import PageAddresses
from .pages_answer import Answer, Page, Responder, html, json_answer, remaining, remote_of
from .pages_budget import Budget, client_of
from .pages_desk import BUSY, HELD, SITE_REFUSALS, TRY_LATER, Paid, PayDesk, PayTap, Refused
from .pages_model import BayState, BayView, FormError, bay_view, kwh, purchase, rupees, with_site
from .pages_receipt import ReceiptPages
from .pages_screens import Screens
from .pages_session import SessionPages, Show
from .pages_site import offered, sale_limit_s, site_view
from .pages_tokens import page_ticket, payers_query, ticket_nonce
from .payments import Payments
from .razorpay_api import RazorpayError, is_outage
from .site_gate import SiteGate
from .store import StorageError
from .tax import TaxSettings
from .totp import accepts

# How a Pay tap the desk refused is answered.
_REFUSED_STATUS = {
    HELD: HTTPStatus.CONFLICT,
    TRY_LATER: HTTPStatus.SERVICE_UNAVAILABLE,
    BUSY: HTTPStatus.TOO_MANY_REQUESTS,
} | dict.fromkeys(SITE_REFUSALS, HTTPStatus.CONFLICT)


def _offers(runner: BayRunner, plans: Mapping[str, Plan], limit_s: int, now: float) -> list[Plan]:
    """The bay's plans a payment may buy now (within ``limit_s``, less the running session's).

    Energy only where it can be counted (an agent that names a meter, say).
    """
    sellable = [
        plans[code]
        for code in runner.bay.plan_codes
        if code in plans and (runner.driver.metered or not plans[code].is_energy)
    ]
    running = runner.session
    left = max(running.until - now, 0) if running and running.until is not None else 0
    return offered(sellable, int(limit_s - left))


def _under_site(
    view: BayView, gate: SiteGate | None, runners: Mapping[str, BayRunner], books: Books, now: float
) -> BayView:
    """The bay page's view under its site (``pages_site``), with its metered bays' power."""
    if gate is None:
        return view
    measured = {
        bay_id: runners[bay_id].driver.power_w
        for bay_id in gate.rated_w
        if bay_id in runners and runners[bay_id].driver.metered
    }
    return with_site(view, site_view(gate, books.ledger, view.bay_id, now, measured))


class CustomerPages:
    """The pages of one account's bays."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        *,
        bays: Bays,
        payments: Payments,
        books: Books,
        plans: dict[str, Plan],
        addresses: PageAddresses,
        tax: TaxSettings,
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.bays = bays
        self.plans = plans
        self.addresses = addresses
        self._secret: str = entry.data[CONF_PAGES_SECRET]
        self.responder = Responder(hass)
        self.desk = PayDesk(books, payments, waiting=payments.api.client.reachability.waiting)
        # What each client may still ask (the pages are public: the loop is HA's).
        self._budget = Budget()
        self.screens = Screens(
            hass,
            self.responder,
            addresses=addresses,
            plans=plans,
            runners=bays.runners,
            bay_view=self.bay_view,
        )
        self.sessions = SessionPages(
            self.responder,
            secret=self._secret,
            books=books,
            bays=bays,
            desk=self.desk,
            bay_view=self.bay_view,
            buy=self.async_buy,
        )
        self.receipts = ReceiptPages(self.responder, self._secret, books, tax, addresses)

    async def async_setup(self) -> None:
        """Read and compile the templates, in the executor."""
        await self.responder.async_setup()

    def register(self) -> Callable[[], None]:
        """Serve the pages on the second webhook; return the undo."""
        webhook_id = self.addresses.webhook_id
        webhook.async_register(
            self.hass,
            DOMAIN,
            "QR Charging (customer pages)",
            webhook_id,
            self._async_handle,
            local_only=False,
            # PUT only to answer it with a page of its own (other methods HA answers itself).
            allowed_methods=["GET", "POST", "PUT"],
        )
        return partial(webhook.async_unregister, self.hass, webhook_id)

    def bay_view(
        self, runner: BayRunner, nonce: str | None = None, *, site: bool = True
    ) -> BayView:
        """What the bay's page shows now (to this ticket nonce's page), under its ``site``."""
        bay, gate = runner.bay, runner.gate if site else None
        now = time.time()
        limit_s = sale_limit_s(gate, runner.limit_s, now)
        view = bay_view(
            bay_id=bay.bay_id,
            name=bay.name,
            plans=_offers(runner, self.plans, limit_s, now),
            running=runner.session,
            in_order=bay_in_order(self.hass, runner),
            limit_s=limit_s,
            now=now,
            # Held for another customer; the holder's own page still goes to their link.
            held=self.desk.held_for_another_page(bay.bay_id, nonce, now),
            as_sold=partial(self.bays.as_sold, bay.bay_id, now=now),
        )
        return _under_site(view, gate, self.bays.runners, self.desk.books, now)

    # -- answering -----------------------------------------------------------------------------

    async def _async_handle(
        self, hass: HomeAssistant, webhook_id: str, request: web.Request
    ) -> web.Response:
        remote = remote_of(request)
        client = client_of(remote)
        if wait := self._budget.take(client, time.monotonic()):
            LOGGER.debug(
                "Too many requests for the customer's pages from %s", remote or "the cloud"
            )
            return await self.responder.too_many(request, wait)
        page = await self.responder.page(request, client)
        query = page.query
        try:
            if request.method not in ("GET", "POST"):
                return self.responder.message(page, "not_allowed", HTTPStatus.METHOD_NOT_ALLOWED)
            for key, handler in (
                ("bay", self._async_bay),
                ("display", self.screens.async_display),
                ("receipt", self.receipts.async_page),
                ("token", self.sessions.async_page),
            ):
                if key in query:
                    return await handler(page, request)
            return self.responder.message(page, "not_found", HTTPStatus.NOT_FOUND)
        except Answer as answer:
            return answer.response
        except StorageError:
            LOGGER.exception("A customer's page could not read the ledger")
            return self.responder.message(page, "unavailable", HTTPStatus.SERVICE_UNAVAILABLE)

    # -- the bay page --------------------------------------------------------------------------

    async def _async_bay(self, page: Page, request: web.Request) -> web.Response:
        runner = self.bays.runners.get(page.query["bay"])
        if runner is None:
            return self.responder.message(page, "not_found", HTTPStatus.NOT_FOUND)
        wants = page.query.get("poster"), page.query.get("format")
        form: dict[str, str] = {}
        if request.method == "POST":
            if any(wants):
                return self.responder.message(page, "not_allowed", HTTPStatus.METHOD_NOT_ALLOWED)
            form = await self.responder.form(page, request)
        elif wants[0] is not None:
            # Every plan, whatever the hour: it is printed once.
            return await self.screens.async_poster(
                page, runner.bay, self.bay_view(runner, site=False)
            )
        elif wants[1] == "json":
            # The holder's page polls with its ticket: to it the bay is not "someone paying".
            given, bay_id = page.query.get("ticket"), runner.bay.bay_id
            nonce = ticket_nonce(
                self._secret, bay_id, given, time.time(), self.desk.holding(bay_id)
            )
            view = self.bay_view(runner, nonce)
            return json_answer({"state": view.state.value, "remaining_s": remaining(view.until)})
        nonce, ticket = self._ticket(runner.bay, page, form)
        view = replace(self.bay_view(runner, nonce), locked=ticket is None)
        if request.method == "POST":
            return await self.async_buy(page, runner, view, form, ticket=(nonce, ticket))
        return self._bay_page(page, view, ticket)

    def _ticket(self, bay: Bay, page: Page, form: dict[str, str]) -> tuple[str | None, str | None]:
        """The page's ticket (kept, or new), or None while a dynamic QR code's is missing.

        A bay with a dynamic QR code sells only to a page opened with a valid password (the
        display's QR code) or carrying a ticket such a page was given.
        """
        now = time.time()
        given = form.get("ticket") or page.query.get("ticket")
        holding = self.desk.holding(bay.bay_id)
        if (nonce := ticket_nonce(self._secret, bay.bay_id, given, now, holding)) is not None:
            return nonce, given
        if bay.dynamic_qr and not (
            bay.qr_secret and accepts(bay.qr_secret, bay.qr_validity_s, page.query.get("totp"), now)
        ):
            return None, None
        nonce = secrets.token_urlsafe(9)
        return nonce, page_ticket(self._secret, bay.bay_id, nonce, now)

    def _bay_page(
        self,
        page: Page,
        view: BayView,
        ticket: str | None,
        error: str | None = None,
        status: HTTPStatus = HTTPStatus.OK,
    ) -> web.Response:
        # A dynamic QR code's page keeps its ticket when it reloads or switches language.
        keep = ticket is not None and self.bays.runners[view.bay_id].bay.dynamic_qr
        params = {"bay": view.bay_id} | ({"ticket": ticket} if keep and ticket else {})
        context = page.context(**params)
        if ticket:
            # Its poll carries the ticket, so the holder's page is not told "someone is paying".
            context["poll_url"] = page.href(**(params | {"ticket": ticket}), format="json")
        return html(
            self.responder.render(
                "bay.html.j2",
                page,
                context,
                view=view,
                ticket=ticket,
                reload_url=page.href(**params),
                error=error,
                remaining_s=remaining(view.until),
            ),
            status,
        )

    async def async_buy(
        self,
        page: Page,
        runner: BayRunner,
        view: BayView,
        form: dict[str, str],
        *,
        again: Show | None = None,
        ticket: tuple[str | None, str | None] = (None, None),
        own: str | None = None,
    ) -> web.Response:
        """A Pay button: hold the free bay with a new link (or this page's), or add time.

        ``own`` is the running session's id when its own session page asks (its token); its
        page shows a refusal with ``again``.
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
            bounds: tuple[int | str, int | str] = (0, 0)
            if plan is not None and plan.is_energy:
                bounds = (rupees(plan.min_paise), rupees(plan.max_paise))
            elif plan is not None:
                bounds = (plan.min_minutes, plan.max_minutes)
            return refuse(
                err.key,
                HTTPStatus.BAD_REQUEST,
                low=bounds[0],
                high=bounds[1],
                room=view.room_minutes or 0,
            )
        bay_id = view.bay_id
        tap = PayTap(
            bay_id=bay_id,
            intent=view.intent,
            purchase=wanted,
            served=runner.totals.sessions,
            hold_s=runner.bay.hold_minutes * 60,
            # Who asks: the page's ticket, or the running session's own page (its token).
            maker=ticket[0] or (f"session:{own}" if own else None),
            own=own,
            client=page.client,
            gate=runner.gate,
        )
        try:
            link = await self.desk.async_link(tap, partial(self._callback, page))
        except Paid as paid:
            # Their earlier link was paid meanwhile: their session's page, not a second link.
            return await self.sessions.async_page(
                page.at(**payers_query(self._secret, paid.session_id)), None
            )
        except Refused as refused:
            # Held, closed or full: the page shows the bay as it is now.
            now_is = refused.key in (HELD, *SITE_REFUSALS)
            shown = replace(view, state=BayState(refused.key)) if now_is else view
            return refuse(refused.key, _REFUSED_STATUS[refused.key], shown)
        except (RazorpayError, StorageError, HomeAssistantError) as err:
            outage = isinstance(err, RazorpayError) and is_outage(err)
            # An outage is logged once for the account (``razorpay_api.Reachability``).
            log = LOGGER.debug if outage else LOGGER.warning
            log("No payment link for a customer at bay %s: %s", bay_id, err)
            return refuse("try_later" if outage else "unavailable", HTTPStatus.SERVICE_UNAVAILABLE)
        note_key = "redirect_adds" if view.state is BayState.BUSY else "redirect_starts"
        if link.energy_wh:
            note_key = "redirect_energy"
        return html(
            self.responder.render(
                "redirect.html.j2",
                page,
                {**page.context(bay=bay_id), "poll_url": None},
                url=link.short_url,
                amount=rupees(link.amount),
                note=page.texts.get(
                    "bay", note_key, minutes=link.seconds // 60, kwh=kwh(link.energy_wh)
                ),
                # Its payer's page, with the key to cancel: a link goes only to its maker.
                session_url=page.href(**payers_query(self._secret, link.reference_id)),
            )
        )

    def _callback(self, page: Page, session_id: str) -> str:
        # Razorpay takes a link without a callback; the customer then stays on its page.
        lang = page.lang if page.lang_asked else None
        return self.addresses.session_url(lang, session_id) or ""
