"""A bay's static UPI QR code: any amount buys time at the bay's per-minute plan.

Plain Python, no Home Assistant imports. Razorpay reports a payment to a QR code in
``qr_code.credited`` (with the QR code's id) and in ``payment.captured`` (with the QR code's
notes copied into the payment); either finds the bay, whichever comes first, and the payment
id is recorded once. An amount below the plan's minimum (or above its maximum) buys nothing:
the session fails at once and the payment is refunded in full with that reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .catalog import Bay, Plan
from .intents import STATIC_QR
from .ledger import Sale
from .razorpay_events import NOTE_BAY, PaymentNotice

# The note on a bay's QR code (and so on its payments) that names the bay.
NOTE_QR_BAY = "qr_charging_bay"
BELOW_MINIMUM = "below_minimum"
ABOVE_MAXIMUM = "above_maximum"
NO_RATE_PLAN = "no_rate_plan"


def qr_notes(bay: Bay) -> dict[str, str]:
    """The notes a bay's QR code is created with."""
    return {NOTE_BAY: bay.bay_id, NOTE_QR_BAY: bay.bay_id}


@dataclass(frozen=True, slots=True)
class StaticSale:
    """What a QR code payment bought, and why it buys nothing when it does not."""

    sale: Sale
    problem: str | None


def _bay_of(notice: PaymentNotice, bays: Mapping[str, Bay]) -> Bay | None:
    for bay in bays.values():
        if bay.qr_code_id is not None and bay.qr_code_id == notice.qr_id:
            return bay
    named = bays.get(notice.notes.get(NOTE_QR_BAY, ""))
    return named if named is not None and named.qr_code_id is not None else None


def static_sale(
    notice: PaymentNotice, bays: Mapping[str, Bay], plans: Mapping[str, Plan], session_id: str
) -> StaticSale | None:
    """The sale a payment to one of our bays' QR codes makes; None when it is not one."""
    if notice.link_id is not None:
        return None
    bay = _bay_of(notice, bays)
    if bay is None:
        return None
    plan = bay.rate_plan(plans)
    seconds = plan.seconds_for(notice.amount) if plan is not None else None
    problem: str | None = None
    if plan is None:
        problem = NO_RATE_PLAN
    elif seconds is None:
        low = notice.amount < plan.min_minutes * plan.rate_paise
        problem = BELOW_MINIMUM if low else ABOVE_MAXIMUM
    sale = Sale(
        session_id=session_id,
        bay_id=bay.bay_id,
        plan_code=plan.code if plan is not None else None,
        seconds=seconds or 0,
        intent=STATIC_QR,
    )
    return StaticSale(sale, problem)
