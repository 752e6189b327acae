"""A bay's static UPI QR code: any amount buys time at the bay's per-minute plan.

Plain Python, no Home Assistant imports. Razorpay reports a payment to a QR code in
``qr_code.credited`` (with the QR code's id) and in ``payment.captured`` (with the QR code's
notes copied into the payment); either finds the bay, whichever comes first, and the payment
id is recorded once. An amount below the plan's minimum (or above its maximum), or in another
currency than the plan's, buys nothing: the session fails at once and the payment is refunded
in full with that reason.

A code stops being a bay's when its option is unticked, ticked again (a new code) or the bay
is removed. The account remembers every code it made (``remember_codes``) so that it closes
each one at Razorpay, and so that a payment still arriving on one (it raced the close, or the
close has not succeeded yet) is known as ours and refunded in full (``qr_closed``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .catalog import (
    CURRENCY,
    Bay,
    Plan,
)
from .intents import STATIC_QR
from .payment_rules import Sale
from .razorpay_events import NOTE_BAY, PaymentNotice

# The note on a bay's QR code (and so on its payments) that names the bay.
NOTE_QR_BAY = "qr_charging_bay"
# The note that tells one of a bay's codes from another (``Bay.qr_code_tag``).
NOTE_QR_TAG = "qr_charging_code"
BELOW_MINIMUM = "below_minimum"
ABOVE_MAXIMUM = "above_maximum"
NO_RATE_PLAN = "no_rate_plan"
CURRENCY_MISMATCH = "currency_mismatch"
QR_CLOSED = "qr_closed"

# Where closing a code the account made stands: still a bay's, to be closed, closed.
OPEN = "open"
TO_CLOSE = "to_close"
CLOSED = "closed"
# Every code the account made, by id: ``{"bay": bay id, "state": OPEN | TO_CLOSE | CLOSED,
# "tag": its NOTE_QR_TAG}``; no "tag" for a code made before tags, or recorded before tags were.
RECORD_TAG = "tag"
type KnownCodes = Mapping[str, Mapping[str, str]]


def qr_notes(bay: Bay, tag: str) -> dict[str, str]:
    """The notes a bay's QR code is created with."""
    return {NOTE_BAY: bay.bay_id, NOTE_QR_BAY: bay.bay_id, NOTE_QR_TAG: tag}


def remember_codes(known: KnownCodes, bays: Mapping[str, Bay]) -> dict[str, dict[str, str]]:
    """The record of codes once the bays are as configured now.

    Each bay's code is remembered as open, with its tag (``payment.captured`` of a code is
    known as ours by it); a code that was open and is no longer any bay's (unticked,
    replaced, bay removed) is to be closed. Nothing is ever forgotten.
    """
    current = {bay.qr_code_id: bay for bay in bays.values() if bay.qr_code_id}
    codes = {code_id: dict(code) for code_id, code in known.items()}
    for code_id, code in codes.items():
        if code["state"] == OPEN and code_id not in current:
            code["state"] = TO_CLOSE
    for code_id, bay in current.items():
        code = codes.setdefault(code_id, {"bay": bay.bay_id, "state": OPEN})
        if bay.qr_code_tag:
            code.setdefault(RECORD_TAG, bay.qr_code_tag)
    return codes


def codes_to_close(known: KnownCodes, *, all_open: bool = False) -> list[str]:
    """The codes to close at Razorpay; ``all_open`` adds the bays' own (the account goes)."""
    wanted = {TO_CLOSE, OPEN} if all_open else {TO_CLOSE}
    return [code_id for code_id, code in known.items() if code["state"] in wanted]


def with_closed(known: KnownCodes, code_id: str) -> dict[str, dict[str, str]]:
    """The record once Razorpay has closed a code."""
    codes = {key: dict(code) for key, code in known.items()}
    codes[code_id]["state"] = CLOSED
    return codes


@dataclass(frozen=True, slots=True)
class StaticSale:
    """What a QR code payment bought, and why it buys nothing when it does not."""

    sale: Sale
    problem: str | None


def _code_of(
    notice: PaymentNotice, bays: Mapping[str, Bay], known: KnownCodes
) -> tuple[str, Bay | None] | None:
    """The bay a payment to one of our codes is for, and that bay when the code is its own.

    None when the payment is to no code of ours: Razorpay sends every event of the account to
    every webhook, so a code another install made on it (notes naming a bay too) must stay
    unmatched. Ours is a code whose id (``qr_code.credited``) or tag (``payment.captured``,
    which only carries the notes) is a bay's or in our record; or a code made before tags
    (untagged notes) naming a bay that still sells through an untagged code, as before tags,
    or whose bay had an untagged code we recorded.
    """
    if notice.qr_id is not None:
        for bay in bays.values():
            if bay.qr_code_id == notice.qr_id:
                return bay.bay_id, bay
        if notice.qr_id in known:
            return known[notice.qr_id]["bay"], None
    tag = notice.notes.get(NOTE_QR_TAG)
    if tag:
        return None if notice.qr_id is not None else _tagged(tag, bays, known)
    named = notice.notes.get(NOTE_QR_BAY) or ""
    legacy = bays.get(named)
    if legacy is not None and legacy.qr_code_id is not None and legacy.qr_code_tag is None:
        return named, legacy
    untagged = (c for c in known.values() if c["bay"] == named and not c.get(RECORD_TAG))
    if notice.qr_id is None and any(untagged):
        return named, None
    return None


def _tagged(tag: str, bays: Mapping[str, Bay], known: KnownCodes) -> tuple[str, Bay | None] | None:
    """The bay of the code a tag names: a bay's own code, or one in our record."""
    for bay in bays.values():
        if bay.qr_code_id is not None and bay.qr_code_tag == tag:
            return bay.bay_id, bay
    for code in known.values():
        if code.get(RECORD_TAG) == tag:
            return code["bay"], None
    return None


def static_sale(
    notice: PaymentNotice,
    bays: Mapping[str, Bay],
    plans: Mapping[str, Plan],
    session_id: str,
    known: KnownCodes,
    *,
    as_sold: Callable[[str, Plan], Plan] = lambda _bay, plan: plan,
) -> StaticSale | None:
    """The sale a payment to one of our QR codes makes; None when it is not one.

    A payment to a code of ours that is no bay's any more buys nothing (``qr_closed``).
    ``as_sold`` gives the bay's rate plan as sold when it was paid (its price band).
    """
    if notice.link_id is not None:
        return None
    code = _code_of(notice, bays, known)
    if code is None:
        return None
    bay_id, bay = code
    plan = bay.rate_plan(plans) if bay is not None else None
    plan = as_sold(bay_id, plan) if plan is not None else None
    seconds = plan.seconds_for(notice.amount) if plan is not None else None
    problem: str | None = None
    if bay is None:
        problem = QR_CLOSED
    elif plan is None:
        problem = NO_RATE_PLAN
    elif notice.currency != CURRENCY:
        problem = CURRENCY_MISMATCH
    elif seconds is None:
        low = notice.amount < plan.rate_total(plan.min_minutes)
        problem = BELOW_MINIMUM if low else ABOVE_MAXIMUM
    sale = Sale(
        session_id=session_id,
        bay_id=bay_id,
        plan_code=plan.code if plan is not None else None,
        seconds=0 if problem is not None else seconds or 0,
        intent=STATIC_QR,
    )
    return StaticSale(sale, problem)
