"""Razorpay's documented payloads (``tests/fixtures/razorpay``), loaded and re-keyed.

The fixtures are Razorpay's own examples, copied verbatim from its documentation. Tests use
them as templates: an entity keeps every field of the documented one, and the fields that
matter (ids, amounts, currency, notes, times, states) are overwritten with the values of the
payment being simulated. Webhook bodies keep the documented envelope of their event.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "razorpay"

_ID_ALPHABET = string.ascii_letters + string.digits


@cache
def _read(relative_path: str) -> str:
    return (FIXTURES_DIR / relative_path).read_text(encoding="utf-8")


def load(relative_path: str) -> dict[str, Any]:
    """Return a fresh copy of one fixture, e.g. ``load("api/refund_entity__entity.json")``."""
    data = json.loads(_read(relative_path))
    assert isinstance(data, dict), relative_path
    return data


def new_id(prefix: str) -> str:
    """Return a Razorpay-style id: a prefix such as ``pay`` and 14 random letters or digits."""
    return f"{prefix}_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


def strip_prefix(entity_id: str) -> str:
    """``plink_Qb2gHrKr01Maky`` -> ``Qb2gHrKr01Maky``."""
    return entity_id.split("_", 1)[1]


def sign(body: bytes, secret: str) -> str:
    """Return the ``X-Razorpay-Signature`` of a webhook body: hex HMAC-SHA256 of the raw bytes."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _rekeyed(template: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    entity = copy.deepcopy(template)
    entity.update(copy.deepcopy(values))
    return entity


def payment_link_entity(**values: Any) -> dict[str, Any]:
    """A payment link shaped like api/payment_link_entity__standard_payment_link_entity.json."""
    return _rekeyed(load("api/payment_link_entity__standard_payment_link_entity.json"), values)


def payment_entity(method: str, **values: Any) -> dict[str, Any]:
    """A captured payment made through a payment link, by ``upi`` or ``card``.

    UPI takes the payment of webhooks/payment_link.paid__payment_link_paid_upi.json (a real
    payment-link payment: description ``#<link id>``, the link's notes); card takes the one of
    webhooks/payment.captured__card.json, which carries the card details.
    """
    if method == "upi":
        event = load("webhooks/payment_link.paid__payment_link_paid_upi.json")
    elif method == "card":
        event = load("webhooks/payment.captured__card.json")
    else:
        raise ValueError(f"no fixture for payment method {method!r}")
    return _rekeyed(event["payload"]["payment"]["entity"], values)


def order_entity(**values: Any) -> dict[str, Any]:
    """The order Razorpay makes for a paid payment link (from the payment_link.paid fixture)."""
    event = load("webhooks/payment_link.paid__payment_link_paid_upi.json")
    return _rekeyed(event["payload"]["order"]["entity"], values)


def refund_entity(**values: Any) -> dict[str, Any]:
    """A refund shaped like api/refund_entity__entity.json."""
    return _rekeyed(load("api/refund_entity__entity.json"), values)


@dataclass(frozen=True)
class Webhook:
    """One webhook delivery: the raw body and the event id Razorpay sends with it.

    A redelivery of the same event carries the same body and the same event id.
    """

    event: str
    event_id: str
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        """The body, parsed."""
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data

    def headers(self, secret: str) -> dict[str, str]:
        """The headers of the delivery, signed with the webhook secret."""
        return {
            "Content-Type": "application/json",
            "X-Razorpay-Signature": sign(self.body, secret),
            "X-Razorpay-Event-Id": self.event_id,
        }


def build_webhook(
    fixture: str, *, account_id: str, created_at: int, entities: dict[str, dict[str, Any]]
) -> Webhook:
    """Fill the envelope of ``webhooks/<fixture>.json`` with the given entities.

    ``entities`` maps each name in the envelope's ``contains`` (payment, order, ...) to the
    entity to send; the documented entities are replaced whole, so that every event that
    carries one payment carries the same values for it.
    """
    envelope = load(f"webhooks/{fixture}.json")
    envelope["account_id"] = account_id
    envelope["created_at"] = created_at
    for name in envelope["contains"]:
        envelope["payload"][name]["entity"] = copy.deepcopy(entities[name])
    body = json.dumps(envelope, separators=(",", ":")).encode()
    return Webhook(event=envelope["event"], event_id=strip_prefix(new_id("evt")), body=body)
