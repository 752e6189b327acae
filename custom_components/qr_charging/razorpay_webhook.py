"""The Razorpay webhook: verify, de-duplicate, record, then answer.

Razorpay signs the raw body with the webhook secret (HMAC-SHA256, hex, header
``X-Razorpay-Signature``) and disables a webhook that keeps failing, so a genuine event we
cannot use is answered 200 and recorded; only forged, oversized or unreadable bodies get 4xx.
A delivery the ledger cannot store is answered 503, with nothing changed: Razorpay delivers it
again (for 24 hours), and the delivery after the disk recovers is handled as the first.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from functools import partial
from http import HTTPStatus

from aiohttp import web
from homeassistant.components import webhook
from homeassistant.core import HomeAssistant

from .const import DOMAIN, LOGGER, MAX_WEBHOOK_BODY, WEBHOOK_UNREACHABLE
from .payments import Payments
from .razorpay_events import EventFormatError, parse_event
from .store import StorageError

type Handler = Callable[[HomeAssistant, str, web.Request], Awaitable[web.Response]]

SIGNATURE_HEADER = "X-Razorpay-Signature"
EVENT_ID_HEADER = "X-Razorpay-Event-Id"


def signature_valid(body: bytes, signature: str, secret: str) -> bool:
    """Constant-time check of Razorpay's signature over the exact bytes received."""
    # compare_digest raises TypeError on non-ASCII text; such a header is simply wrong.
    if not signature.isascii():
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


async def read_bounded(request: web.Request, limit: int = MAX_WEBHOOK_BODY) -> bytes:
    """The body, but no more than one byte past the limit.

    ``request.read()`` would take up to HA's 16 MiB of a chunked body (no Content-Length)
    before we could refuse it; reading stops here as soon as the body is too large.
    """
    body = bytearray()
    # Taken once: a cloudhook's MockRequest hands out a new reader, from the start, each time.
    stream = request.content
    while len(body) <= limit:
        chunk = await stream.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)


def _answer(status: HTTPStatus, outcome: str) -> web.Response:
    return web.json_response({"outcome": outcome}, status=status)


async def _apply(payments: Payments, event_id: str, decoded: object) -> str:
    """Record one signed delivery; a genuine event we cannot read is recorded as such."""
    try:
        event = parse_event(decoded)
    except EventFormatError as err:
        LOGGER.warning("Signed webhook event %s is not usable: %s", event_id, err)
        outcome = await payments.async_note_unusable(event_id, str(err))
    else:
        outcome = await payments.async_handle_event(event_id, event)
    # Razorpay's webhook reaches us (stored: a 503 would have raised).
    payments.notices.clear_repair(WEBHOOK_UNREACHABLE)
    return outcome


def register_webhook(
    hass: HomeAssistant, payments: Payments, webhook_id: str, secret: str
) -> Callable[[], None]:
    """Listen for Razorpay's deliveries on ``/api/webhook/<webhook_id>``; return the undo.

    The undo (at unload) leaves a handler that answers 503 until the entry is set up again or
    removed (``unregister_webhook``): HA answers 200 to a webhook it does not know, which
    Razorpay takes as delivered, so a delivery during a reload would be lost.
    """

    async def handle(hass: HomeAssistant, webhook_id: str, request: web.Request) -> web.Response:
        # A cloudhook's MockRequest has no content_length: its body is read with the bound.
        if (getattr(request, "content_length", None) or 0) > MAX_WEBHOOK_BODY:
            return _answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large")
        body = await read_bounded(request)
        if len(body) > MAX_WEBHOOK_BODY:
            return _answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large")
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature or not signature_valid(body, signature, secret):
            LOGGER.warning("Rejected a webhook delivery with a missing or wrong signature")
            return _answer(HTTPStatus.UNAUTHORIZED, "bad_signature")
        try:
            decoded = json.loads(body)
        except ValueError:
            return _answer(HTTPStatus.BAD_REQUEST, "invalid_json")
        # Razorpay sends the same event id on every re-delivery; a body hash stands in without it.
        event_id = (
            request.headers.get(EVENT_ID_HEADER) or f"sha256:{hashlib.sha256(body).hexdigest()}"
        )
        try:
            # Run to its end even if Razorpay hangs up: a delivery half handled (stored, but its
            # session never handed to the bay) would help nobody.
            outcome = await asyncio.shield(
                hass.async_create_task(_apply(payments, event_id, decoded), f"webhook {event_id}")
            )
        except StorageError:
            LOGGER.exception("Webhook %s not stored; Razorpay will deliver it again", event_id)
            return _answer(HTTPStatus.SERVICE_UNAVAILABLE, "not_stored")
        LOGGER.debug("Webhook %s: %s", event_id, outcome)
        return _answer(HTTPStatus.OK, outcome)

    _register(hass, webhook_id, handle)
    return partial(_register, hass, webhook_id, _not_loaded)


async def _not_loaded(hass: HomeAssistant, webhook_id: str, request: web.Request) -> web.Response:
    """The account is unloaded (reloading, or disabled): Razorpay is to deliver again later."""
    return _answer(HTTPStatus.SERVICE_UNAVAILABLE, "not_loaded")


def _register(hass: HomeAssistant, webhook_id: str, handler: Handler) -> None:
    webhook.async_unregister(hass, webhook_id)  # the handler of the last unload, if any
    webhook.async_register(
        hass, DOMAIN, "QR Charging (Razorpay)", webhook_id, handler, allowed_methods=["POST"]
    )


def unregister_webhook(hass: HomeAssistant, webhook_id: str) -> None:
    """The account is removed: HA no longer knows the webhook."""
    webhook.async_unregister(hass, webhook_id)
