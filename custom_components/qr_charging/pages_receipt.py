"""The receipt of a session's page (``?token=<token>&receipt=a4|roll``) and its B2B form.

Only HTTP: the view is ``receipts`` (plain Python), what is issued ``invoices.b2b`` through
``Books.async_b2b`` (one transaction under the books' lock, so two taps at once issue one B2B
invoice). Nothing on a document comes from the browser but the GSTIN, name and address the
customer types, checked by ``tax.parse_recipient`` (escaped by the templates' autoescape).
"""

from __future__ import annotations

import time
from functools import partial
from http import HTTPStatus

from aiohttp import web

from .books import Books
from .const import LOGGER
from .invoices import B2BRefused, Document
from .ledger import Wanted
from .pages_addresses import PageAddresses
from .pages_answer import Page, Responder, html
from .pages_tokens import session_of_token
from .receipts import receipt
from .tax import ADDRESS_MAX, NAME_MAX, TaxError, TaxSettings, parse_recipient

# The receipt's widths: an A4 sheet, or an 80 mm till roll.
FORMATS = ("a4", "roll")
FIELDS = ("gstin", "name", "address")


def _href(page: Page, **query: str) -> str:
    """An address of this webhook that keeps a language the customer picked."""
    return page.href(**page.at(**query).query)


def receipt_links(page: Page, token: str) -> list[tuple[str, str]]:
    """The receipt's addresses of a session page (its token), by shape: A4, till roll."""
    return [(shape, _href(page, token=token, receipt=shape)) for shape in FORMATS]


def _of_payment(payment_id: str, documents: list[Document]) -> list[Document]:
    """Only the page's own payment's documents: a session may hold another customer's."""
    return [d for d in documents if d.payment_id == payment_id]


class ReceiptPages:
    """The receipts of one account's payments (each on its session page's token)."""

    def __init__(
        self,
        responder: Responder,
        secret: str,
        books: Books,
        tax: TaxSettings,
        addresses: PageAddresses,
    ) -> None:
        self.responder = responder
        self._secret = secret
        self.books = books
        # The owner's tax details (``hub.tax``): without a GSTIN no B2B form.
        self.tax = tax
        # Who sells, when the documents name no supplier (the pages' merchant name).
        self._merchant = addresses.merchant_name

    async def async_page(self, page: Page, request: web.Request) -> web.Response:
        """The receipt (GET), or the B2B form sent (POST); ``StorageError`` is the caller's."""
        token = page.query.get("token", "")
        session_id = session_of_token(self._secret, token)
        if session_id is None:
            return self.responder.message(page, "not_found", HTTPStatus.NOT_FOUND)
        form = await self.responder.form(page, request) if request.method == "POST" else None
        paid_for, payment_id = await self._async_payment_of(session_id)
        mine = partial(_of_payment, payment_id)
        documents = mine(await self.books.store.async_documents(paid_for)) if paid_for else []
        if not documents:
            # Unpaid, not started, or paid before documents were issued.
            return self._no_receipt(page)
        if form is None:
            return self._show(page, documents)
        typed = {name: form.get(name, "") for name in FIELDS}
        try:
            recipient = parse_recipient(typed["gstin"], typed["name"], typed["address"])
        except TaxError as err:
            errors = {err.field: page.texts.get("receipt", f"error_{err.key}")}
            return self._show(page, documents, typed, errors, status=HTTPStatus.BAD_REQUEST)
        assert paid_for is not None  # documents were found for it
        try:
            documents = await self.books.async_b2b(payment_id, recipient, self.tax)
        except B2BRefused as refused:
            LOGGER.debug("A B2B invoice was refused: %s", refused.reason)
            error = page.texts.get("receipt", f"refused_{refused.reason}")
            return self._show(page, documents, typed, {"form": error}, status=HTTPStatus.CONFLICT)
        return self._show(page, documents)

    async def _async_payment_of(self, session_id: str) -> tuple[str | None, str]:
        """The session a page's link paid for, and its payment.

        A top-up's link pays for the running session, which holds others' payments too.
        """
        wanted = Wanted(reference_ids={session_id}, session_ids={session_id})
        ledger = await self.books.read(wanted)
        link = ledger.link_by_reference(session_id)
        payment = ledger.payments.get(link.payment_id) if link and link.payment_id else None
        if payment is None:
            return None, ""
        return payment.session_id, payment.payment_id

    def _params(self, page: Page) -> dict[str, str]:
        shape = page.query.get("receipt")
        return {"token": page.query["token"], "receipt": shape if shape in FORMATS else "a4"}

    def _no_receipt(self, page: Page) -> web.Response:
        texts = page.texts
        body = self.responder.render(
            "message.html.j2",
            page,
            page.context(**self._params(page)) | {"poll_url": None},
            heading=texts.get("receipt", "no_receipt"),
            text=texts.get("receipt", "no_receipt_note"),
        )
        return html(body, HTTPStatus.NOT_FOUND)

    def _show(
        self,
        page: Page,
        documents: list[Document],
        typed: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        *,
        status: HTTPStatus = HTTPStatus.OK,
    ) -> web.Response:
        view = receipt(documents, self._merchant(), time.time())
        assert view is not None  # documents is not empty
        params = self._params(page)
        token = params["token"]
        return html(
            self.responder.render(
                "receipt.html.j2",
                page,
                page.context(**params) | {"poll_url": None},
                view=view,
                shape=params["receipt"],
                links=receipt_links(page, token),
                # The form posts to this very address (the token names the session).
                form_url=_href(page, **params),
                session_url=_href(page, token=token),
                b2b_form=self.tax.registered and view.b2b_open,
                typed=typed or {},
                errors=errors or {},
                name_max=NAME_MAX,
                address_max=ADDRESS_MAX,
            ),
            status,
        )
