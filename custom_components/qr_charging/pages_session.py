"""The page of one payment's session (``?token=<token>``): where it is, cancel, add time.

The token names the session (``pages_tokens.session_token``); the cancel key, given only to
the page that made the link, lets it cancel the unpaid link. While the session runs, its page
adds time through the bay page's Pay decision, on a link budget of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from http import HTTPStatus
from typing import Protocol

from aiohttp import web
from homeassistant.exceptions import HomeAssistantError

from .bay_runner import BayRunner
from .bays import Bays
from .books import Books
from .const import LOGGER
from .intents import HOLD
from .ledger import Wanted
from .pages_answer import Page, Responder, countdown, html, json_answer, remaining
from .pages_desk import PayDesk
from .pages_model import BayView, SessionView, kwh, session_view
from .pages_receipt import receipt_links
from .pages_tokens import may_cancel, session_of_token
from .razorpay_api import RazorpayError
from .store import StorageError

type Show = Callable[[str, HTTPStatus], web.Response]


class Buy(Protocol):
    """The bay page's Pay button (``CustomerPages.async_buy``), as the session page uses it."""

    async def __call__(  # noqa: D102 - as CustomerPages.async_buy
        self,
        page: Page,
        runner: BayRunner,
        view: BayView,
        form: dict[str, str],
        *,
        again: Show | None = None,
        own: str | None = None,
    ) -> web.Response: ...


class SessionPages:
    """The session pages of one account."""

    def __init__(
        self,
        responder: Responder,
        *,
        secret: str,
        books: Books,
        bays: Bays,
        desk: PayDesk,
        bay_view: Callable[[BayRunner], BayView],
        buy: Buy,
    ) -> None:
        self.responder = responder
        self._secret = secret
        self.books = books
        self.bays = bays
        self.desk = desk
        self._bay_view = bay_view
        self._buy = buy

    async def async_page(self, page: Page, request: web.Request | None) -> web.Response:
        """The session page; a POST is one of its buttons (``request`` None: just show it)."""
        session_id = session_of_token(self._secret, page.query["token"])
        if session_id is None:
            return self.responder.message(page, "not_found", HTTPStatus.NOT_FOUND)
        found = await self._async_session_view(session_id)
        if found is None:
            return self.responder.message(page, "not_found", HTTPStatus.NOT_FOUND)
        bay_name, view = found
        runner = self.bays.runners.get(view.bay_id)
        if runner is not None and view.running_session_id and view.energy_paid_wh:
            # What its meter says now: energy counted so far, power.
            driver = runner.driver
            energy = driver.energy_for(view.running_session_id) or 0.0
            view = replace(view, energy_wh=energy, power_w=driver.power_w)
        bay = self._bay_view(runner) if runner is not None else None
        own_bay = bay if bay is not None and bay.running_session_id else None
        if own_bay is not None and own_bay.running_session_id != view.running_session_id:
            own_bay = None  # another customer's session runs there now

        # The key to cancel, given only to the page that made the link (``cancel_key``).
        key = page.query.get("key")
        keep = {"key": key} if key and may_cancel(self._secret, session_id, key) else {}
        # Cancel is offered for a hold only: a link that holds nothing is just left unpaid.
        link = self.desk.open_link(session_id)
        offer_cancel = bool(keep) and link is not None and link.intent == HOLD

        def show(error: str | None = None, status: HTTPStatus = HTTPStatus.OK) -> web.Response:
            return html(
                self.responder.render(
                    "session.html.j2",
                    page,
                    page.context(token=page.query["token"], **keep),
                    view=view,
                    may_cancel=offer_cancel,
                    bay_view=own_bay,
                    ticket=None,  # its own page: the token is proof enough to add time
                    bay_name=bay_name,
                    bay_url=page.href(bay=view.bay_id),
                    receipt_urls=receipt_links(page, page.query["token"]),
                    error=error,
                    remaining_s=remaining(view.until),
                    countdown=countdown(view.until),
                    kwh=kwh,
                ),
                status,
            )

        if request is not None and request.method == "POST":
            return await self._async_form(page, request, session_id, (runner, own_bay), show)
        if page.query.get("format") == "json":
            return json_answer({"state": view.stage.value, "remaining_s": remaining(view.until)})
        return show()

    async def _async_form(
        self,
        page: Page,
        request: web.Request,
        session_id: str,
        bay: tuple[BayRunner | None, BayView | None],
        show: Show,
    ) -> web.Response:
        """A button of the session page: cancel the unpaid link (with the key), or add time."""
        if page.query.get("format"):
            return self.responder.message(page, "not_allowed", HTTPStatus.METHOD_NOT_ALLOWED)
        form = await self.responder.form(page, request)
        if "cancel" in form:
            return await self._async_cancel(page, session_id, show)
        runner, own_bay = bay
        # "Add time": only while this session runs.
        if own_bay is None or runner is None:
            return show(page.texts.get("bay", "error_session_over"), HTTPStatus.CONFLICT)
        return await self._buy(
            page, runner, own_bay, form, again=show, own=own_bay.running_session_id
        )

    async def _async_cancel(self, page: Page, session_id: str, show: Show) -> web.Response:
        """The customer cancels their unpaid link (with the key): at Razorpay, then here."""
        if not may_cancel(self._secret, session_id, page.query.get("key")):
            # The token alone (Razorpay's callback, a shared address): it may see, not cancel.
            return show(page.texts.get("bay", "error_not_yours"), HTTPStatus.FORBIDDEN)
        link = self.desk.open_link(session_id)
        if link is not None and link.intent != HOLD:
            # It holds nothing: no call to Razorpay (cancel and retake would churn the bay's
            # budget); its page forgets it, and it expires unpaid (or starts, if paid).
            self.desk.forget(link)
        elif link is not None:
            try:
                # Not under the bay's lock: a Pay tap never waits for Razorpay to cancel.
                await self.desk.async_close(link)
            except (RazorpayError, StorageError, HomeAssistantError) as err:
                LOGGER.info("A customer's link at bay %s was not cancelled: %s", link.bay_id, err)
        # Shown as after a GET; a cloudhook's MockRequest has no clone() to make one with.
        return await self.async_page(page, None)

    async def _async_session_view(self, session_id: str) -> tuple[str, SessionView] | None:
        """The page of the link that pays for ``session_id``, as stored.

        A read, not a change (``Books.read``): a page polled every few seconds never waits for,
        nor holds up, the books' lock that payments and bays write under.
        """
        wanted = Wanted(reference_ids={session_id}, session_ids={session_id})
        ledger = await self.books.read(wanted)
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
