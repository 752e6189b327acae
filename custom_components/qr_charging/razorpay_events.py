"""Read Razorpay webhook bodies into the few facts the ledger needs.

Plain Python, no Home Assistant imports. Razorpay's payloads are loose: ``notes`` may be a dict,
``[]`` or ``null``; one payment arrives in ``payment_link.paid``, ``payment.captured`` and
``order.paid``; the link id appears in the link entity, in the payment's ``description``
(``#<id without plink_>``) and, through the order's ``receipt``, as our ``reference_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .sites import PriceBand

# Events that carry a payment which may pay for charging.
PAYMENT_EVENTS = frozenset(
    {"payment_link.paid", "payment.captured", "order.paid", "qr_code.credited"}
)
REFUND_EVENTS = frozenset({"refund.created", "refund.processed", "refund.failed"})
LINK_CLOSED_EVENTS = frozenset({"payment_link.expired", "payment_link.cancelled"})
# What the owner ticks in Razorpay's dashboard (the setup step lists them).
SUBSCRIBED_EVENTS = (
    "payment_link.paid",
    "payment.captured",
    "qr_code.credited",
    "refund.processed",
    "refund.failed",
    # A hold ends with its link: told at once, not at the next reconciliation.
    "payment_link.expired",
    "payment_link.cancelled",
)
# The ledger's integers (SQLite's): a number beyond them is no amount or time Razorpay sends.
MAX_INTEGER = 2**63 - 1
NOTE_SESSION = "session"
# Our idempotency key, sent in a refund's notes: its events are matched to it by that.
NOTE_REFUND_KEY = "refund_key"
NOTE_BAY = "bay"
NOTE_PLAN = "plan"
# A link's price band (its percent of the plan's price), when it was sold in one (issue #25).
NOTE_BAND = "band"


class EventFormatError(ValueError):
    """The body is JSON but not a Razorpay event we can read."""


@dataclass(frozen=True, slots=True)
class PaymentNotice:
    """A payment as one event reports it."""

    payment_id: str
    amount: int
    currency: str
    status: str
    method: str | None = None
    link_id: str | None = None
    reference_id: str | None = None
    order_id: str | None = None
    qr_id: str | None = None
    notes: dict[str, str] = field(default_factory=dict)
    created_at: int | None = None

    @property
    def captured(self) -> bool:
        """Only captured money may buy time."""
        return self.status == "captured"


@dataclass(frozen=True, slots=True)
class RefundNotice:
    """A refund's state as Razorpay reports it."""

    refund_id: str
    payment_id: str
    amount: int
    status: str
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One delivered event."""

    event: str
    created_at: int | None
    payment: PaymentNotice | None = None
    refund: RefundNotice | None = None
    link_id: str | None = None
    link_status: str | None = None


def notes_dict(value: object) -> dict[str, str]:
    """Razorpay sends notes as a dict, ``[]`` or ``null``; always give a dict of strings."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items() if v is not None}
    return {}


def _entity(payload: dict[str, Any], name: str) -> dict[str, Any] | None:
    wrapper = payload.get(name)
    if wrapper is None:
        return None
    entity = wrapper.get("entity") if isinstance(wrapper, dict) else None
    if not isinstance(entity, dict):
        raise EventFormatError(f"payload.{name}.entity is not an object")
    return entity


def _str(entity: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = entity.get(key)
    if isinstance(value, str) and value:
        return value
    if required:
        raise EventFormatError(f"{key} missing or not a string")
    return None


def _int(entity: dict[str, Any], key: str) -> int:
    value = entity.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventFormatError(f"{key} missing or not an integer")
    if not -MAX_INTEGER <= value <= MAX_INTEGER:
        raise EventFormatError(f"{key} out of range")
    return value


def _epoch(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if -MAX_INTEGER <= value <= MAX_INTEGER else None


def _link_id_from_description(description: str | None) -> str | None:
    # Razorpay describes a payment link's payment as "#<link id without its plink_ prefix>".
    if description and description.startswith("#") and len(description) > 1:
        return f"plink_{description[1:]}"
    return None


def _payment_notice(payload: dict[str, Any]) -> PaymentNotice | None:
    payment = _entity(payload, "payment")
    if payment is None:
        return None
    link = _entity(payload, "payment_link")
    order = _entity(payload, "order")
    qr_code = _entity(payload, "qr_code")
    link_id = (_str(link, "id", required=False) if link else None) or _link_id_from_description(
        _str(payment, "description", required=False)
    )
    reference_id = (_str(link, "reference_id", required=False) if link else None) or (
        _str(order, "receipt", required=False) if order else None
    )
    return PaymentNotice(
        payment_id=str(_str(payment, "id")),
        amount=_int(payment, "amount"),
        currency=str(_str(payment, "currency")),
        status=str(_str(payment, "status")),
        method=_str(payment, "method", required=False),
        link_id=link_id,
        reference_id=reference_id,
        order_id=_str(payment, "order_id", required=False),
        qr_id=_str(qr_code, "id", required=False) if qr_code else None,
        notes=notes_dict(payment.get("notes")),
        created_at=_epoch(payment.get("created_at")),
    )


def _refund_notice(payload: dict[str, Any]) -> RefundNotice | None:
    refund = _entity(payload, "refund")
    if refund is None:
        return None
    return RefundNotice(
        refund_id=str(_str(refund, "id")),
        payment_id=str(_str(refund, "payment_id")),
        amount=_int(refund, "amount"),
        status=str(_str(refund, "status")),
        notes=notes_dict(refund.get("notes")),
    )


def parse_event(body: object) -> WebhookEvent:
    """Read one webhook body (already JSON-decoded)."""
    if not isinstance(body, dict) or not isinstance(body.get("event"), str):
        raise EventFormatError("not a Razorpay event")
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise EventFormatError("payload is not an object")
    event: str = body["event"]
    created_at = _epoch(body.get("created_at"))
    if event in PAYMENT_EVENTS:
        return WebhookEvent(event, created_at, payment=_payment_notice(payload))
    if event in REFUND_EVENTS:
        return WebhookEvent(event, created_at, refund=_refund_notice(payload))
    if event in LINK_CLOSED_EVENTS:
        link = _entity(payload, "payment_link")
        return WebhookEvent(
            event,
            created_at,
            link_id=_str(link, "id") if link else None,
            link_status=_str(link, "status", required=False) if link else None,
        )
    return WebhookEvent(event, created_at)


def link_notes(
    bay_id: str, plan_code: str, session_id: str, band: PriceBand | None
) -> dict[str, str]:
    """A payment link's notes: what it sells, and the percent of its price band if any.

    The band is kept for a receipt to name it (issue #26).
    """
    notes = {NOTE_BAY: bay_id, NOTE_PLAN: plan_code, NOTE_SESSION: session_id}
    if band is not None:
        notes[NOTE_BAND] = str(band.percent)
    return notes
