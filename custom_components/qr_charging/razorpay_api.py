"""Blocking client for the parts of Razorpay's API that qr_charging uses.

Plain Python on purpose (no Home Assistant imports): Home Assistant runs these calls in its
executor, and the module can be tested against a local stand-in of Razorpay's API.

It wraps the official ``razorpay`` SDK, which has three gaps this module closes:

* no timeout on any request (a stalled connection would hang an executor thread forever);
* TLS verification against a CA bundle frozen inside the SDK (2015), not the maintained one;
* errors carry only Razorpay's description: no HTTP status, so rejected keys (HTTP 401) look
  like any other bad request, and network failures surface as raw ``requests`` exceptions
  after the SDK has printed them to stdout.

All of that is done by :class:`_RazorpaySession`, the ``requests.Session`` handed to the SDK:
it adds the timeout and the CA bundle, and turns every failure into one of the exceptions
below *before* the SDK sees it. It keeps no per-call state, so one instance can serve
concurrent calls from several executor threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import certifi
import razorpay
import requests
from razorpay.errors import BadRequestError, GatewayError, ServerError

_LOGGER = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.razorpay.com"
DEFAULT_TIMEOUT = 10.0
# How long an account's Razorpay is left alone after it failed to answer (429, 5xx, network),
# unless it said how long itself (``Retry-After``, honoured up to ``MAX_BACKOFF_S``).
BACKOFF_S = 60.0
MAX_BACKOFF_S = 600.0

# Razorpay's documented header that makes a refund request idempotent.
REFUND_IDEMPOTENCY_HEADER = "X-Refund-Idempotency"

_T = TypeVar("_T")


class RazorpayError(Exception):
    """Base of every error of this module; str() is a human-readable description."""


class RazorpayAuthError(RazorpayError):
    """Keys rejected (HTTP 401)."""


class RazorpayConnectionError(RazorpayError):
    """Network failure or timeout: Razorpay not reachable."""


class RazorpayTimeoutError(RazorpayConnectionError):
    """The request timed out after it was sent: its outcome is unknown."""


class RazorpayRequestError(RazorpayError):
    """Razorpay refused the request (4xx other than 401, 5xx, or an unreadable answer)."""

    def __init__(
        self, description: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(description)
        self.description = description
        self.status = status
        self.retry_after = retry_after  # seconds, from the answer's ``Retry-After``


def is_outage(err: RazorpayError) -> bool:
    """Whether Razorpay failed to answer (network, timeout, 429, 5xx): try again later."""
    if isinstance(err, RazorpayConnectionError):
        return True
    return isinstance(err, RazorpayRequestError) and (err.status == 429 or (err.status or 0) >= 500)


class Reachability:
    """Whether one account's Razorpay answers: logged once per change, and a back-off.

    Every call of the account's client reports here. After an outage (``is_outage``) callers
    that may wait, such as the customers' pages, ask ``waiting`` before calling again: no call
    for ``BACKOFF_S`` (or the ``Retry-After`` Razorpay sent). The first outage is logged as a
    warning and the first answer after it as information, as a bay's agent going offline is.
    Thread-safe: calls run in several executor threads.
    """

    def __init__(self, label: str) -> None:
        self._label = label
        self._lock = threading.Lock()
        self._down = False
        self._until = 0.0

    @property
    def reachable(self) -> bool:
        """Whether Razorpay answered the last call."""
        return not self._down

    def waiting(self) -> float:
        """Seconds to leave Razorpay alone still (0: call it)."""
        return max(self._until - time.time(), 0.0)

    def failed(self, err: RazorpayError) -> None:
        """A call got no usable answer (an outage): back off, and warn if it is the first."""
        after = err.retry_after if isinstance(err, RazorpayRequestError) else None
        backoff = min(max(after, 0.0), MAX_BACKOFF_S) if after is not None else BACKOFF_S
        with self._lock:
            self._until = max(self._until, time.time() + backoff)
            first, self._down = not self._down, True
        if first:
            _LOGGER.warning("Razorpay is unavailable for account %s: %s", self._label, err)

    def answered(self) -> None:
        """Razorpay answered (whatever it said): no back-off; tell if it was unavailable."""
        with self._lock:
            was_down, self._down, self._until = self._down, False, 0.0
        if was_down:
            _LOGGER.info("Razorpay answers again for account %s", self._label)


def _retry_after(response: requests.Response) -> float | None:
    """The seconds of a ``Retry-After`` header (its HTTP-date form is not honoured)."""
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _error_description(response: requests.Response) -> str:
    """Return Razorpay's own description of an error response, or a generic one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    description = error.get("description") if isinstance(error, dict) else None
    if isinstance(description, str) and description:
        return description
    return f"HTTP {response.status_code} {response.reason or ''}".rstrip()


class _RazorpaySession(requests.Session):
    """The session the SDK sends every request through.

    The SDK calls ``session.get/post(url, auth=..., verify=..., **options)``, which all end in
    ``request()``; overriding it is the one place where every call can be given a timeout and
    where the HTTP status is still visible.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send one request with a timeout; raise this module's errors for any failure.

        Raising exceptions that are not ``requests`` exceptions also keeps the SDK from
        printing them to stdout (it prints, then re-raises, every ``RequestException``).
        """
        kwargs["timeout"] = self._timeout
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.ConnectTimeout as err:
            # No connection was made, so nothing was sent: a plain connection error.
            raise RazorpayConnectionError(f"Timed out connecting to Razorpay: {err}") from err
        except requests.Timeout as err:
            raise RazorpayTimeoutError(
                f"Razorpay did not answer within {self._timeout:g} s"
            ) from err
        except requests.ConnectionError as err:
            raise RazorpayConnectionError(f"Cannot reach Razorpay: {err}") from err
        except requests.RequestException as err:  # e.g. an invalid base URL
            raise RazorpayConnectionError(f"Cannot reach Razorpay: {err}") from err

        status = response.status_code
        if status == 401:
            raise RazorpayAuthError(_error_description(response))
        if not 200 <= status < 300:
            raise RazorpayRequestError(_error_description(response), status, _retry_after(response))
        if status != 204:
            try:
                response.json()
            except ValueError as err:
                raise RazorpayRequestError(
                    "Razorpay answered with a body that is not JSON", status
                ) from err
        return response


class RazorpayApi:
    """Razorpay's API as qr_charging uses it: payment links, payments and refunds.

    Every method blocks; call it from an executor. Methods may run concurrently.
    """

    def __init__(
        self,
        key_id: str,
        key_secret: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._client = razorpay.Client(
            auth=(key_id, key_secret),
            base_url=base_url.rstrip("/"),
            session=_RazorpaySession(timeout),
        )
        # The SDK passes verify=<its own ca-bundle.crt>, a copy frozen in 2015 that lacks
        # today's roots and keeps revoked ones; certifi's bundle is maintained and is the one
        # requests itself would use.
        self._client.cert_path = certifi.where()
        self.reachability = Reachability(key_id)

    def close(self) -> None:
        """Close the pooled connections (when the config entry is unloaded)."""
        self._client.session.close()

    def _call(self, what: str, func: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run one SDK call and let only this module's errors out.

        The session already raises them for transport failures and HTTP errors; the SDK's own
        errors are mapped too, in case a future SDK raises them for an answer the session let
        through. Nothing logged here includes the keys.
        """
        _LOGGER.debug("Razorpay: %s", what)
        try:
            answer = func(*args, **kwargs)
        except RazorpayError as err:
            _LOGGER.debug("Razorpay: %s failed: %s: %s", what, type(err).__name__, err)
            if is_outage(err):
                self.reachability.failed(err)
            else:
                self.reachability.answered()
            raise
        except (BadRequestError, GatewayError, ServerError) as err:
            self.reachability.answered()
            raise RazorpayRequestError(str(err) or type(err).__name__) from err
        self.reachability.answered()
        return answer

    def verify_keys(self) -> None:
        """Check the keys with the cheapest authenticated call there is (list one link)."""
        self._call("verify keys", self._client.payment_link.all, {"count": 1})

    def create_payment_link(
        self,
        *,
        amount: int,
        currency: str,
        reference_id: str,
        description: str,
        notes: dict[str, str],
        expire_by: int,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """Create a standard payment link (it accepts UPI and cards) and return it.

        ``reference_id`` is unique per link at Razorpay, which makes creation idempotent: a
        create that timed out may still have happened, so the link is looked up before
        creating again, and a create refused while a link for the same reference id and
        amount exists returns that link (so a caller may also repeat a failed call). Never
        two links for one reference id.
        """
        data: dict[str, Any] = {
            "amount": amount,
            "currency": currency,
            "accept_partial": False,
            "reference_id": reference_id,
            "description": description,
            "expire_by": expire_by,
            "notes": notes,
            # The kiosk shows the link itself: no SMS, e-mail or reminders from Razorpay.
            "notify": {"sms": False, "email": False},
            "reminder_enable": False,
        }
        if callback_url is not None:
            data["callback_url"] = callback_url
            data["callback_method"] = "get"  # the only method Razorpay accepts

        try:
            return self._create_link(data)
        except RazorpayTimeoutError:
            _LOGGER.warning(
                "Creating payment link %s timed out; checking whether it was created",
                reference_id,
            )
        if (link := self._existing_link(data)) is not None:
            return link
        return self._create_link(data)

    def _create_link(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a link; if the reference id is taken by the same link, return that one.

        Razorpay refuses a second link with a reference id. When a create is refused, the
        link may well exist: made by a request that timed out (carried out after our
        look-up, or by an earlier call that the caller now repeats). Whatever the wording
        of the refusal, an existing link for the same amount is the answer.
        """
        try:
            return self._call("create payment link", self._client.payment_link.create, data)
        except RazorpayRequestError as err:
            # Too many requests (429) is no refusal of this link: nothing to look up.
            if err.status is None or not 400 <= err.status < 500 or is_outage(err):
                raise
            if (link := self._existing_link(data)) is None:
                raise
            return link

    def _existing_link(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """Return the link already made for this request's reference id, if any.

        A link with the reference id but another amount or currency is not this request's:
        returning it would charge the customer the wrong amount, so that is an error.
        """
        link = self.find_payment_link(data["reference_id"])
        if link is None:
            return None
        if (link.get("amount"), link.get("currency")) != (data["amount"], data["currency"]):
            raise RazorpayRequestError(
                f"Payment link {link.get('id')} already has reference id "
                f"{data['reference_id']}, for another amount"
            )
        return link

    def find_payment_link(self, reference_id: str) -> dict[str, Any] | None:
        """Return the payment link created with this reference id, or None if there is none."""
        answer = self._call(
            "find payment link",
            self._client.payment_link.all,
            {"reference_id": reference_id},
        )
        links = answer.get("payment_links") if isinstance(answer, dict) else None
        for link in links or []:
            if isinstance(link, dict) and link.get("reference_id") == reference_id:
                return link
        return None

    def create_qr_code(
        self, *, name: str, description: str, notes: dict[str, str]
    ) -> dict[str, Any]:
        """Create a static UPI QR code that takes any amount, many times, and return it.

        Accounts without the QR code feature are refused (HTTP 400, "The requested URL was not
        found on the server."): that is a ``RazorpayRequestError``.
        """
        data = {
            "type": "upi_qr",
            "name": name,
            "usage": "multiple_use",
            "fixed_amount": False,
            "description": description,
            "notes": notes,
        }
        return self._call("create QR code", self._client.qrcode.create, data)

    def close_qr_code(self, qr_id: str) -> dict[str, Any]:
        """Close a QR code for good: Razorpay takes no more payments to it.

        Razorpay refuses to close one already closed (HTTP 400): see ``fetch_qr_code``.
        """
        return self._call("close QR code", self._client.qrcode.close, _path(qr_id))

    def fetch_qr_code(self, qr_id: str) -> dict[str, Any]:
        """Return one QR code (its ``status``: active or closed)."""
        return self._call("fetch QR code", self._client.qrcode.fetch, _path(qr_id))

    def fetch_payment_link(self, link_id: str) -> dict[str, Any]:
        """Return one payment link."""
        return self._call("fetch payment link", self._client.payment_link.fetch, _path(link_id))

    def cancel_payment_link(self, link_id: str) -> dict[str, Any]:
        """Cancel an unpaid link (Razorpay refuses one that is paid, expired or cancelled)."""
        return self._call("cancel payment link", self._client.payment_link.cancel, _path(link_id))

    def fetch_payment(self, payment_id: str) -> dict[str, Any]:
        """Return one payment."""
        return self._call("fetch payment", self._client.payment.fetch, _path(payment_id))

    def fetch_refund(self, payment_id: str, refund_id: str) -> dict[str, Any]:
        """Return one refund of a payment (its ``status``: pending, processed or failed)."""
        return self._call(
            "fetch refund",
            self._client.payment.fetch_refund_id,
            _path(payment_id),
            _path(refund_id),
        )

    def refund(
        self,
        payment_id: str,
        *,
        amount: int,
        idempotency_key: str,
        notes: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Refund (part of) a captured payment, at normal speed, and return the refund.

        Razorpay keeps one refund per idempotency key: repeating a call with the same key (for
        example after a timeout) returns the first refund instead of refunding twice.
        """
        data: dict[str, Any] = {"amount": amount, "speed": "normal"}
        if notes is not None:
            data["notes"] = notes
        return self._call(
            "refund",
            self._client.payment.refund,
            _path(payment_id),
            data,
            headers={REFUND_IDEMPOTENCY_HEADER: idempotency_key},
        )


def _path(entity_id: str) -> str:
    """Quote an id for use as a URL path segment.

    Ids reach this module from webhooks and service calls; quoting keeps an id such as
    ``../x`` from addressing another endpoint with the account's keys.
    """
    return quote(entity_id, safe="")
