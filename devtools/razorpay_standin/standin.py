"""A local stand-in of the Razorpay API endpoints qr_charging uses, for tests and the demo.

It listens on 127.0.0.1 (a free port), keeps its state in memory and answers like Razorpay's
documentation says: HTTP Basic auth with the key id and secret, the error shape of
``fixtures/razorpay/api/error__sample_error_response.json``, entities shaped like the
documented ones (see ``fixtures``). Tests drive it with plain methods: pay a link
(and get the webhooks Razorpay would send), settle a refund, inject failures and delays.

    standin = RazorpayStandin()
    await standin.start()
    ...  # RazorpayApi(standin.key_id, standin.key_secret, base_url=standin.base_url)
    await standin.stop()

Where Razorpay's exact wording of an error is not documented, the description is a plausible
one; code that matters should not depend on descriptions.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import html
import io
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlencode

import aiohttp
import segno
from aiohttp import web

from .fixtures import (
    Webhook,
    build_webhook,
    load,
    new_id,
    order_entity,
    payment_entity,
    payment_link_entity,
    refund_entity,
    sign,
    strip_prefix,
)

__all__ = [
    "PAGE_ROUTE_PREFIX",
    "Call",
    "PaidPayment",
    "PaidQrCode",
    "RazorpayStandin",
    "Webhook",
    "sign",
    "upi_intent",
]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MIN_AMOUNT = 100  # paise: Razorpay's minimum of INR 1.00
MIN_EXPIRY_S = 15 * 60  # a payment link must expire at least 15 minutes from now
MAX_REFERENCE_ID = 40
MAX_NOTES = 15
# Routes that ``start(pages=...)`` adds are named with this prefix: pages, not API endpoints.
PAGE_ROUTE_PREFIX = "page:"
# The VPA the stand-in's UPI QR codes pay (Razorpay's are its own, per merchant).
STANDIN_VPA = "razorpay.standin@icici"


def upi_intent(qr_code: dict[str, Any]) -> str:
    """What a QR code's image holds: a UPI payment intent (any amount unless fixed)."""
    params = {"pa": STANDIN_VPA, "pn": qr_code["name"], "tr": qr_code["id"], "cu": "INR"}
    if qr_code.get("fixed_amount"):
        params["am"] = f"{qr_code['payment_amount'] / 100:.2f}"
    return "upi://pay?" + urlencode(params)


class Call(NamedTuple):
    """One request the stand-in received (the query string is left out of ``path``)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any  # the parsed body, or None when it was empty or not JSON


class _ApiError(Exception):
    """An error answer, in Razorpay's shape."""

    def __init__(
        self,
        description: str,
        *,
        status: int = 400,
        code: str = "BAD_REQUEST_ERROR",
        field: str | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.body: dict[str, Any] = {
            "error": {
                "code": code,
                "description": description,
                "field": field,
                # As in Razorpay's examples: a refused field is a validation failure; other
                # errors (authentication, unknown URL, server) say "NA".
                "source": "business" if field else "NA",
                "step": "payment_initiation" if field else "NA",
                "reason": "input_validation_failed" if field else "NA",
                "metadata": {},
            }
        }


@dataclass
class _Fault:
    path_prefix: str
    method: str | None
    times: int
    status: int | None = None  # fail with this status instead of handling the request
    body: str | None = None  # raw (non-JSON) body of the failure
    seconds: float = 0.0  # delay the answer (the request still takes effect)
    retry_after: int | None = None  # the failure's Retry-After header, in seconds
    release: asyncio.Event | None = None  # delay the answer until this is set

    def matches(self, request: web.Request) -> bool:
        return request.path.startswith(self.path_prefix) and (
            self.method is None or self.method == request.method
        )


class _Paid:
    """What a paid stand-in entity shares: its payment, and its webhooks, each built once."""

    payment: dict[str, Any]
    account_id: str
    _webhooks: dict[str, Webhook]

    @property
    def payment_id(self) -> str:
        """The payment's id."""
        return str(self.payment["id"])

    def _webhook(self, fixture: str, entities: dict[str, dict[str, Any]]) -> Webhook:
        if fixture not in self._webhooks:
            self._webhooks[fixture] = build_webhook(
                fixture,
                account_id=self.account_id,
                created_at=int(self.payment["created_at"]),
                entities=entities,
            )
        return self._webhooks[fixture]


@dataclass
class PaidPayment(_Paid):
    """A payment the stand-in made for a link, and the webhooks Razorpay would send for it.

    The entities are snapshots taken when the link was paid. Each webhook is built once, so
    asking again gives the same body and event id: a redelivery.
    """

    link: dict[str, Any]
    payment: dict[str, Any]
    order: dict[str, Any]
    account_id: str
    _webhooks: dict[str, Webhook] = field(default_factory=dict, repr=False)

    @property
    def link_id(self) -> str:
        """The paid link's id."""
        return str(self.link["id"])

    @property
    def order_id(self) -> str:
        """The order's id."""
        return str(self.order["id"])

    def payment_link_paid(self) -> Webhook:
        """``payment_link.paid``: link, order and payment.

        As in Razorpay's documented example, the order entity in this event carries its id
        without the ``order_`` prefix (the link and the payment carry it with the prefix).
        """
        order = {**self.order, "id": strip_prefix(self.order_id)}
        return self._webhook(
            "payment_link.paid__payment_link_paid_upi",
            {"payment_link": self.link, "order": order, "payment": self.payment},
        )

    def payment_captured(self) -> Webhook:
        """``payment.captured``: the payment."""
        fixture = f"payment.captured__{self.payment['method']}"
        return self._webhook(fixture, {"payment": self.payment})

    def order_paid(self) -> Webhook:
        """``order.paid``: payment and order."""
        return self._webhook("order.paid__upi", {"payment": self.payment, "order": self.order})

    def webhooks(self) -> list[Webhook]:
        """All three, in the order Razorpay usually sends them (it promises none)."""
        return [self.payment_captured(), self.order_paid(), self.payment_link_paid()]


@dataclass
class PaidQrCode(_Paid):
    """A payment to a static QR code, and the two webhooks Razorpay sends for it."""

    qr_code: dict[str, Any]
    payment: dict[str, Any]
    account_id: str
    _webhooks: dict[str, Webhook] = field(default_factory=dict, repr=False)

    def qr_code_credited(self) -> Webhook:
        """``qr_code.credited``: the payment and the QR code."""
        return self._webhook(
            "qr_code.credited__qr_code_credited",
            {"payment": self.payment, "qr_code": self.qr_code},
        )

    def payment_captured(self) -> Webhook:
        """``payment.captured``: the payment alone (the QR code's notes copied into it)."""
        return self._webhook("payment.captured__upi", {"payment": self.payment})


class RazorpayStandin:
    """In-memory Razorpay: payment links, QR codes, payments, orders and refunds over HTTP.

    It also serves a minimal checkout page at each link's ``short_url`` (no key needed, as
    Razorpay's): its "Pay (test)" button pays the link, sends the webhooks to ``webhook_url``
    signed with ``webhook_secret`` and goes on to the link's ``callback_url``.
    """

    def __init__(
        self,
        key_id: str = "rzp_test_standin",
        key_secret: str = "standin_secret",
        *,
        refund_status: str = "processed",
    ) -> None:
        self.key_id = key_id
        self.key_secret = key_secret
        self.refund_status = refund_status  # status of new refunds: "processed" or "pending"
        self.account_id = new_id("acc")
        self.links: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.qr_codes: dict[str, dict[str, Any]] = {}
        # An account without the QR code feature: Razorpay refuses to create one.
        self.refuse_qr_codes = False
        # How far Razorpay's clock (and the time a request takes to reach it) is ahead of ours,
        # as its 15-minute rule for a link's expiry sees it.
        self.clock_ahead_s = 0.0
        # Where the checkout page delivers webhooks (None: it delivers none).
        self.webhook_url: str | None = None
        self.webhook_secret = ""
        self.calls: list[Call] = []
        self._refund_keys: dict[str, tuple[str, int, str]] = {}  # key -> payment, amount, refund
        self._faults: list[_Fault] = []
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- lifecycle ------------------------------------------------------------------------

    async def start(
        self, port: int = 0, *, pages: Callable[[web.Application], None] | None = None
    ) -> None:
        """Listen on 127.0.0.1 (on a free port by default); ``base_url`` tells where.

        ``pages`` may add routes of its own (the demo's checkout and refund pages), named
        ``page:...``; they are not part of the API: not recorded in ``calls``, no
        authentication, no faults.
        """
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._middleware])
        if pages is not None:
            pages(app)
        app.router.add_post("/v1/payment_links", self._create_link)
        app.router.add_get("/v1/payment_links", self._list_links)
        app.router.add_get("/v1/payment_links/{id}", self._fetch_link)
        app.router.add_post("/v1/payment_links/{id}/cancel", self._cancel_link)
        app.router.add_get("/v1/payments/{id}", self._fetch_payment)
        app.router.add_post("/v1/payments/{id}/refund", self._refund)
        app.router.add_get("/v1/payments/{id}/refunds/{refund_id}", self._fetch_refund)
        app.router.add_post("/v1/payments/qr_codes", self._create_qr_code)
        app.router.add_get("/v1/payments/qr_codes/{id}", self._fetch_qr_code)
        app.router.add_post("/v1/payments/qr_codes/{id}/close", self._close_qr_code)
        app.router.add_get("/pay/{id}", self._checkout)
        # A QR code's image_url: public, as Razorpay's is (and not an API call).
        app.router.add_get("/qr/{id}.png", self._qr_image, name=f"{PAGE_ROUTE_PREFIX}qr_image")
        app.router.add_post("/pay/{id}", self._checkout_pay)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Stop listening; delayed answers still pending are cut short."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def state(self) -> dict[str, Any]:
        """Everything the stand-in knows, as JSON-ready data (the demo keeps it in a file)."""
        return copy.deepcopy(
            {
                "key_id": self.key_id,
                "account_id": self.account_id,
                "links": self.links,
                "payments": self.payments,
                "orders": self.orders,
                "refunds": self.refunds,
                "refund_keys": {key: list(value) for key, value in self._refund_keys.items()},
            }
        )

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what ``state()`` gave, e.g. after a restart of the demo."""
        if state.get("key_id") != self.key_id:
            raise ValueError("the saved state belongs to another key id")
        self.account_id = state["account_id"]
        self.links = copy.deepcopy(state["links"])
        self.payments = copy.deepcopy(state["payments"])
        self.orders = copy.deepcopy(state["orders"])
        self.refunds = copy.deepcopy(state["refunds"])
        self._refund_keys = {
            key: (str(value[0]), int(value[1]), str(value[2]))
            for key, value in state["refund_keys"].items()
        }

    # -- test controls ----------------------------------------------------------------------

    def fail_next(
        self,
        path_prefix: str,
        status: int = 500,
        times: int = 1,
        *,
        method: str | None = None,
        body: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with an error; they take no effect.

        ``body`` replaces the Razorpay-shaped JSON error with raw text (a proxy's error page);
        ``retry_after`` adds a ``Retry-After`` header (as Razorpay's 429 may carry).
        """
        self._faults.append(
            _Fault(path_prefix, method, times, status=status, body=body, retry_after=retry_after)
        )

    def delay_next(
        self, path_prefix: str, seconds: float, times: int = 1, *, method: str | None = None
    ) -> None:
        """Hold the answer to the next ``times`` matching requests for ``seconds``.

        The request is carried out at once, as a slow server would: a client that gives up
        waiting has still created its link. With ``fail_next`` on the same request, the
        answer is a delayed failure and nothing happens.
        """
        self._faults.append(_Fault(path_prefix, method, times, seconds=seconds))

    def hold_next(self, path_prefix: str, *, method: str | None = None) -> asyncio.Event:
        """Keep the answer to the next matching request until the returned event is set.

        The request is carried out at once, as ``delay_next``'s; the test decides when its
        answer leaves (the client's own timeout still applies).
        """
        release = asyncio.Event()
        self._faults.append(_Fault(path_prefix, method, 1, release=release))
        return release

    def calls_to(self, method: str, path: str) -> list[Call]:
        """The requests received for one method and path."""
        return [call for call in self.calls if call.method == method and call.path == path]

    def pay_link(
        self, link_id: str, method: str = "upi", *, amount: int | None = None
    ) -> PaidPayment:
        """Pay a link as a customer would: a captured payment, its order, the link paid.

        ``amount`` (default: the link's) lets a test simulate a payment of another amount.
        """
        link = self.links[link_id]
        amount = link["amount"] if amount is None else amount
        now = int(time.time())
        order_id, payment_id = new_id("order"), new_id("pay")
        notes = copy.deepcopy(link["notes"]) or []  # Razorpay sends empty notes as []
        fee = amount * 2 // 100
        tax = fee * 18 // 100
        payment = payment_entity(
            method,
            id=payment_id,
            amount=amount,
            base_amount=amount,
            currency=link["currency"],
            status="captured",
            captured=True,
            order_id=order_id,
            invoice_id=None,
            description=f"#{strip_prefix(link_id)}",
            notes=notes,
            amount_refunded=0,
            refund_status=None,
            fee=fee + tax,
            tax=tax,
            created_at=now,
        )
        order = order_entity(
            id=order_id,
            amount=amount,
            amount_paid=amount,
            amount_due=0,
            currency=link["currency"],
            receipt=link["reference_id"],
            notes=notes,
            product_id=strip_prefix(link_id),
            merchant_id=strip_prefix(self.account_id),
            public_key=self.key_id,
            method=method,
            status="paid",
            created_at=now,
            updated_at=now,
        )
        link.update(
            status="paid",
            amount_paid=amount,
            order_id=order_id,
            updated_at=now,
            payments=[
                {
                    "amount": amount,
                    "created_at": now,
                    "method": method,
                    "payment_id": payment_id,
                    "plink_id": link_id,
                    "status": "captured",
                    "updated_at": now,
                }
            ],
        )
        self.payments[payment_id] = payment
        self.orders[order_id] = order
        return PaidPayment(
            link=copy.deepcopy(link),
            payment=copy.deepcopy(payment),
            order=copy.deepcopy(order),
            account_id=self.account_id,
        )

    def fail_payment(self, link_id: str) -> Webhook:
        """A customer's UPI payment on a link that the bank declines; its ``payment.failed``.

        The link stays payable (Razorpay lets the customer try again). The failed payment is
        kept, shaped like the one in Razorpay's ``payment.failed`` example.
        """
        link = self.links[link_id]
        now = int(time.time())
        template = load("webhooks/payment.failed__upi.json")["payload"]["payment"]["entity"]
        payment = {
            **template,
            "id": new_id("pay"),
            "amount": link["amount"],
            "currency": link["currency"],
            "order_id": new_id("order"),
            "description": f"#{strip_prefix(link_id)}",
            "notes": copy.deepcopy(link["notes"]) or [],
            "created_at": now,
        }
        self.payments[payment["id"]] = payment
        return build_webhook(
            "payment.failed__upi",
            account_id=self.account_id,
            created_at=now,
            entities={"payment": payment},
        )

    def expire_link(self, link_id: str) -> Webhook:
        """Razorpay closes an unpaid link at its ``expire_by``; its ``payment_link.expired``."""
        link = self.links[link_id]
        now = int(time.time())
        link.update(status="expired", expired_at=now, updated_at=now)
        return self.link_closed(link_id)

    def link_closed(self, link_id: str) -> Webhook:
        """The ``payment_link.expired`` or ``payment_link.cancelled`` of a closed link."""
        link = self.links[link_id]
        status = link["status"]
        if status not in ("expired", "cancelled"):
            raise ValueError(f"link {link_id} is {status}, not expired or cancelled")
        return build_webhook(
            f"payment_link.{status}__payment_link_{status}_standard",
            account_id=self.account_id,
            created_at=int(time.time()),
            entities={"payment_link": link},
        )

    def pay_qr_code(self, qr_id: str, amount: int, currency: str = "INR") -> PaidQrCode:
        """A customer pays any amount to a static QR code with a UPI app.

        A closed code takes no payment (``ValueError``), as at Razorpay. A payment that raced
        the close is one made before it whose webhooks are delivered after.
        """
        qr_code = self.qr_codes[qr_id]
        if qr_code["status"] != "active":
            raise ValueError(f"QR code {qr_id} is {qr_code['status']}: it takes no payment")
        now = int(time.time())
        template = load("webhooks/qr_code.credited__qr_code_credited.json")
        payment = copy.deepcopy(template["payload"]["payment"]["entity"])
        payment.update(
            id=new_id("pay"),
            amount=amount,
            currency=currency,
            status="captured",
            captured=True,
            # Razorpay copies the QR code's notes into its payments.
            notes=copy.deepcopy(qr_code["notes"]) or [],
            created_at=now,
        )
        qr_code["payments_amount_received"] += amount
        qr_code["payments_count_received"] += 1
        self.payments[payment["id"]] = payment
        return PaidQrCode(copy.deepcopy(qr_code), copy.deepcopy(payment), self.account_id)

    def settle_refund(self, refund_id: str, status: str = "processed") -> Webhook:
        """Move a refund to ``processed`` or ``failed``; return its ``refund.<status>`` webhook.

        A failed refund gives its amount back to the payment's refundable amount.
        """
        if status not in ("processed", "failed"):
            raise ValueError(f"a refund settles as processed or failed, not {status!r}")
        refund = self.refunds[refund_id]
        payment = self.payments[refund["payment_id"]]
        if status == "failed" and refund["status"] != "failed":
            self._add_refunded(payment, -int(refund["amount"]))
        refund["status"] = status
        return build_webhook(
            f"refund.{status}__normal_refunds",
            account_id=self.account_id,
            created_at=int(time.time()),
            entities={"refund": refund, "payment": payment},
        )

    # -- HTTP -------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if (request.match_info.route.name or "").startswith(PAGE_ROUTE_PREFIX):
            return await handler(request)
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.calls.append(Call(request.method, request.path, dict(request.headers), body))
        request["json"] = body

        failure = self._take_fault(request, delay=False)
        delay = self._take_fault(request, delay=True)
        response: web.StreamResponse
        try:
            if failure is not None:
                response = self._failure(failure)
            else:
                if not request.path.startswith("/pay/"):  # the checkout page is public
                    self._check_auth(request)
                response = await handler(request)
        except _ApiError as err:
            response = web.json_response(err.body, status=err.status)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
            response = web.json_response(
                _ApiError("The requested URL was not found on the server.").body, status=400
            )
        if delay is not None:
            with contextlib.suppress(TimeoutError):
                timeout = None if delay.release else delay.seconds
                await asyncio.wait_for(self._until_released(delay), timeout)
        return response

    async def _until_released(self, delay: _Fault) -> None:
        """Until the stand-in stops, or the test releases a held answer."""
        waits = [self._stopping.wait()] + ([delay.release.wait()] if delay.release else [])
        tasks = [asyncio.ensure_future(wait) for wait in waits]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()

    def _take_fault(self, request: web.Request, *, delay: bool) -> _Fault | None:
        for fault in self._faults:
            if (fault.status is None) == delay and fault.matches(request):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _failure(fault: _Fault) -> web.Response:
        status = fault.status or 500
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        if fault.body is not None:
            return web.Response(
                status=status, text=fault.body, content_type="text/html", headers=headers
            )
        if status == 429:
            error = _ApiError("Too many requests", status=status)
        elif status >= 500:
            error = _ApiError(
                "The server encountered an error. The incident has been reported to admins.",
                status=status,
                code="SERVER_ERROR",
            )
        else:
            error = _ApiError("Injected failure", status=status)
        return web.json_response(error.body, status=status, headers=headers)

    def _check_auth(self, request: web.Request) -> None:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            credentials = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            credentials = ""
        if scheme.lower() != "basic" or credentials != f"{self.key_id}:{self.key_secret}":
            raise _ApiError("Authentication failed", status=401)

    @staticmethod
    def _json_object(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _ApiError("The request body should be a JSON object")
        return body

    def _lookup(self, table: dict[str, dict[str, Any]], request: web.Request) -> dict[str, Any]:
        entity = table.get(request.match_info["id"])
        if entity is None:
            raise _ApiError("The id provided does not exist", field="id")
        return entity

    async def _create_link(self, request: web.Request) -> web.Response:
        data = self._json_object(request["json"])
        amount = data.get("amount")
        if amount is None:
            raise _ApiError("The amount field is required.", field="amount")
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise _ApiError("The amount must be an integer.", field="amount")
        if amount < MIN_AMOUNT:
            raise _ApiError("The amount must be at least INR 1.00", field="amount")
        currency = data.get("currency", "INR")
        if currency != "INR":
            raise _ApiError("The currency is invalid.", field="currency")
        reference_id = data.get("reference_id")
        if reference_id is not None:
            if not isinstance(reference_id, str) or len(reference_id) > MAX_REFERENCE_ID:
                raise _ApiError(
                    "The reference id may not be greater than 40 characters.",
                    field="reference_id",
                )
            if any(link["reference_id"] == reference_id for link in self.links.values()):
                raise _ApiError(
                    f"Payment Link with reference id {reference_id} already exists",
                    field="reference_id",
                )
        now = int(time.time() + self.clock_ahead_s)
        expire_by = data.get("expire_by", 0)
        if expire_by and (not isinstance(expire_by, int) or expire_by < now + MIN_EXPIRY_S):
            raise _ApiError(
                "expire_by should be at least 15 minutes after current time",
                field="expire_by",
            )
        notes = data.get("notes") or {}
        if not isinstance(notes, dict) or len(notes) > MAX_NOTES:
            raise _ApiError("Number of notes cannot exceed 15", field="notes")
        link_id = new_id("plink")
        link = payment_link_entity(
            accept_partial=bool(data.get("accept_partial", False)),
            amount=amount,
            amount_paid=0,
            callback_method=data.get("callback_method", ""),
            callback_url=data.get("callback_url", ""),
            cancelled_at=0,
            created_at=now,
            currency=currency,
            customer=data.get("customer", {}),
            description=data.get("description", ""),
            expire_by=expire_by,
            expired_at=0,
            first_min_partial_amount=data.get("first_min_partial_amount", 0),
            id=link_id,
            notes=notes,
            notify=data.get("notify", {"email": False, "sms": False}),
            order_id=None,
            payments=None,
            reference_id=reference_id or "",
            reminder_enable=bool(data.get("reminder_enable", False)),
            reminders=[],
            short_url=f"{self.base_url}/pay/{link_id}",
            status="created",
            updated_at=now,
            upi_link=bool(data.get("upi_link", False)),
            user_id="",
            whatsapp_link=False,
        )
        self.links[link_id] = link
        return web.json_response(link)

    async def _create_qr_code(self, request: web.Request) -> web.Response:
        if self.refuse_qr_codes:
            # What Razorpay answers an account without the QR code feature.
            return web.json_response(load("api/qr_create__failure.json"), status=400)
        data = self._json_object(request["json"])
        if data.get("type") != "upi_qr":
            raise _ApiError("The type field is invalid.", field="type")
        if data.get("usage") not in ("single_use", "multiple_use"):
            raise _ApiError("The usage field is invalid.", field="usage")
        fixed = data.get("fixed_amount", False)
        if fixed and not isinstance(data.get("payment_amount"), int):
            raise _ApiError("The payment amount field is required.", field="payment_amount")
        notes = data.get("notes") or {}
        if not isinstance(notes, dict) or len(notes) > MAX_NOTES:
            raise _ApiError("Number of notes cannot exceed 15", field="notes")
        now = int(time.time())
        qr_id = new_id("qr")
        qr_code = load("api/qr_create__success.json") | {
            "id": qr_id,
            "created_at": now,
            "name": data.get("name", ""),
            "usage": data["usage"],
            "type": "upi_qr",
            "image_url": f"{self.base_url}/qr/{qr_id}.png",
            "payment_amount": data.get("payment_amount") if fixed else None,
            "status": "active",
            "description": data.get("description", ""),
            "fixed_amount": bool(fixed),
            "notes": notes,
            "customer_id": data.get("customer_id"),
            "close_by": data.get("close_by"),
        }
        self.qr_codes[qr_id] = qr_code
        return web.json_response(qr_code)

    async def _fetch_qr_code(self, request: web.Request) -> web.Response:
        return web.json_response(self._lookup(self.qr_codes, request))

    async def _close_qr_code(self, request: web.Request) -> web.Response:
        qr_code = self._lookup(self.qr_codes, request)
        if qr_code["status"] == "closed":
            raise _ApiError("QR code is already closed")
        qr_code.update(status="closed", closed_at=int(time.time()), close_reason="on_demand")
        return web.json_response(qr_code)

    async def _qr_image(self, request: web.Request) -> web.Response:
        """The QR code's image: a UPI payment code (Razorpay's also has its branding)."""
        qr_code = self.qr_codes.get(request.match_info["id"])
        if qr_code is None:
            return web.Response(status=404, text="No such QR code")
        out = io.BytesIO()
        segno.make(upi_intent(qr_code), error="m").save(out, kind="png", scale=8, border=4)
        return web.Response(body=out.getvalue(), content_type="image/png")

    async def _checkout(self, request: web.Request) -> web.Response:
        link = self.links.get(request.match_info["id"])
        if link is None:
            return web.Response(status=404, text="No such link")
        rupees = f"{link['amount'] / 100:.2f}"
        body = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>Razorpay stand-in</title></head><body style='font-family:sans-serif'>"
            f"<h1>Razorpay (test)</h1><p>{html.escape(link['description'])}</p>"
            f"<p>Amount: INR {rupees}</p><p>Status: {html.escape(link['status'])}</p>"
            "<form method='post'><button type='submit'>Pay (test)</button></form>"
            "</body></html>"
        )
        return web.Response(text=body, content_type="text/html")

    async def _checkout_pay(self, request: web.Request) -> web.StreamResponse:
        link_id = request.match_info["id"]
        link = self.links.get(link_id)
        if link is None or link["status"] != "created":
            return web.Response(status=409, text="This link cannot be paid")
        paid = self.pay_link(link_id)
        if self.webhook_url is not None:
            async with aiohttp.ClientSession() as session:
                for webhook in paid.webhooks():
                    await session.post(
                        self.webhook_url,
                        data=webhook.body,
                        headers=webhook.headers(self.webhook_secret),
                    )
        callback = return_address(link, paid.payment_id)
        if not callback:
            return web.Response(text="Paid", content_type="text/plain")
        raise web.HTTPFound(callback)

    async def _list_links(self, request: web.Request) -> web.Response:
        links = sorted(self.links.values(), key=lambda link: link["created_at"], reverse=True)
        if "reference_id" in request.query:
            links = [
                link for link in links if link["reference_id"] == request.query["reference_id"]
            ]
        try:
            count = min(int(request.query.get("count", 10)), 100)
            skip = int(request.query.get("skip", 0))
        except ValueError as err:
            raise _ApiError("The count must be an integer.", field="count") from err
        return web.json_response({"payment_links": links[skip : skip + count]})

    async def _fetch_link(self, request: web.Request) -> web.Response:
        return web.json_response(self._lookup(self.links, request))

    async def _cancel_link(self, request: web.Request) -> web.Response:
        """Razorpay cancels only a link in the ``created`` state; it answers with the link."""
        link = self._lookup(self.links, request)
        if link["status"] != "created" or _past_expiry(link):
            raise _ApiError("Payment Link cannot be cancelled as it is not in created state")
        now = int(time.time())
        link.update(status="cancelled", cancelled_at=now, updated_at=now)
        return web.json_response(link)

    async def _fetch_payment(self, request: web.Request) -> web.Response:
        return web.json_response(self._lookup(self.payments, request))

    async def _fetch_refund(self, request: web.Request) -> web.Response:
        payment = self._lookup(self.payments, request)
        refund = self.refunds.get(request.match_info["refund_id"])
        if refund is None or refund["payment_id"] != payment["id"]:
            raise _ApiError("The id provided does not exist", field="id")
        return web.json_response(refund)

    async def _refund(self, request: web.Request) -> web.Response:
        payment = self._lookup(self.payments, request)
        data = self._json_object(request["json"] or {})
        amount = data.get("amount", payment["amount"] - payment["amount_refunded"])
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < MIN_AMOUNT:
            raise _ApiError("The amount must be at least INR 1.00", field="amount")

        key = request.headers.get("X-Refund-Idempotency")
        if key is not None and key in self._refund_keys:
            payment_id, first_amount, refund_id = self._refund_keys[key]
            if (payment_id, first_amount) != (payment["id"], amount):
                raise _ApiError(
                    "The idempotency key was already used for a different refund request"
                )
            return web.json_response(self.refunds[refund_id])

        if payment["status"] != "captured":
            raise _ApiError("Only captured payments can be refunded", field="payment_id")
        if amount > payment["amount"] - payment["amount_refunded"]:
            raise _ApiError(
                "The refund amount provided is greater than amount captured", field="amount"
            )
        refund = refund_entity(
            id=new_id("rfnd"),
            amount=amount,
            currency=payment["currency"],
            payment_id=payment["id"],
            notes=data.get("notes") or [],
            receipt=data.get("receipt"),
            acquirer_data={"arn": None},
            created_at=int(time.time()),
            batch_id=None,
            status=self.refund_status,
            speed_processed="normal",
            speed_requested=data.get("speed", "normal"),
        )
        self.refunds[refund["id"]] = refund
        if key is not None:
            self._refund_keys[key] = (payment["id"], amount, refund["id"])
        self._add_refunded(payment, amount)
        return web.json_response(refund)

    @staticmethod
    def _add_refunded(payment: dict[str, Any], amount: int) -> None:
        payment["amount_refunded"] += amount
        refunded = payment["amount_refunded"]
        payment["refund_status"] = (
            None if refunded == 0 else "full" if refunded >= payment["amount"] else "partial"
        )


def return_address(link: dict[str, Any], payment_id: str) -> str | None:
    """Where Razorpay sends the customer after paying a link; None for a link without one.

    The link's ``callback_url`` with the payment's query parameters, as Razorpay adds them.
    """
    callback = link.get("callback_url")
    if not callback:
        return None
    params = {
        "razorpay_payment_id": payment_id,
        "razorpay_payment_link_id": link["id"],
        "razorpay_payment_link_reference_id": link["reference_id"],
        "razorpay_payment_link_status": "paid",
        "razorpay_signature": "standin",
    }
    joiner = "&" if "?" in callback else "?"
    return f"{callback}{joiner}{urlencode(params)}"


def _past_expiry(link: dict[str, Any]) -> bool:
    return bool(link.get("expire_by")) and int(link["expire_by"]) <= time.time()
