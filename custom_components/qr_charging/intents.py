"""What a customer was shown before paying, kept with the link (and the session) it paid.

Plain Python, no Home Assistant imports. A payment made while the bay was busy is a top-up
only when its payer was told so: a page that said "adds time to the running session" made the
link. Anyone else (a link made while the bay was free, a static UPI QR code) could not have
known, so the payment is refunded in full as ``bay_busy``. Links without an intent are the
owner's (the ``create_payment_link`` action, links made before 0.3): they keep the rule of 0.2,
a payment while the bay is charging tops it up.
"""

from __future__ import annotations

# The bay page said the bay was free: the payment starts a session (links made before 0.3,
# and while a bay's holds are suspended: ``holds.HoldGuard``).
START = "start"
# The bay page said the bay was free and held it for this payer while they pay (``holds``).
HOLD = "hold"
# A payment to the bay's static UPI QR code: its payer saw no page at all.
STATIC_QR = "static_qr"
_ADD = "add:"


def add_time(session_id: str) -> str:
    """The page said the payment adds time to this running session."""
    return f"{_ADD}{session_id}"


def added_to(intent: str | None) -> str | None:
    """The session an "add time" payment was for."""
    if intent is not None and intent.startswith(_ADD):
        return intent.removeprefix(_ADD)
    return None


def may_top_up(intent: str | None, running_session_id: str) -> bool:
    """Whether a payment with this intent may extend the bay's running session."""
    return intent is None or added_to(intent) == running_session_id
