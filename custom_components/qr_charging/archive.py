"""Moving settled history out of the live ledger, keeping what the bays' totals need.

Plain Python, no Home Assistant imports. The live ledger is rewritten on every change (see
``ledger_file``), so its cost grows with what it holds; sessions settled long ago (ended or
refunded, every refund processed or failed) move to an append-only archive, and each bay keeps
the revenue and session count they contributed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .ledger import (
    Ledger,
    LinkRecord,
    PaymentRecord,
    PaymentState,
    RefundRecord,
    RefundState,
    SessionRecord,
    SessionState,
)

ARCHIVE_AFTER_S = 30 * 24 * 3600
SETTLED_REFUNDS = frozenset({RefundState.PROCESSED, RefundState.FAILED})
LOOSE_PAYMENTS = frozenset({PaymentState.UNMATCHED, PaymentState.NOT_CAPTURED})


def _settled(ledger: Ledger, session: SessionRecord, cutoff: float) -> bool:
    if session.running or (session.ended_at or session.created_at) >= cutoff:
        return False
    for payment_id in session.payment_ids:
        payment = ledger.payments.get(payment_id)
        if payment is not None and payment.state is PaymentState.ATTENTION:
            return False
    return all(
        r.state in SETTLED_REFUNDS
        for r in ledger.refunds.values()
        if r.session_id == session.session_id
    )


def take_archivable(ledger: Ledger, cutoff: float) -> dict[str, list[Any]] | None:
    """Remove settled records older than ``cutoff`` from the ledger and return them.

    The bays' totals keep what the removed records counted for. None when nothing is due.
    """
    sessions = [s for s in ledger.sessions.values() if _settled(ledger, s, cutoff)]
    session_ids = {s.session_id for s in sessions}
    owed = {r.payment_id for r in ledger.refunds.values() if r.state not in SETTLED_REFUNDS}
    payments: list[PaymentRecord] = [
        p
        for p in ledger.payments.values()
        if p.session_id in session_ids
        or (p.state in LOOSE_PAYMENTS and p.received_at < cutoff and p.payment_id not in owed)
    ]
    payment_ids = {p.payment_id for p in payments}
    refunds: list[RefundRecord] = [
        r
        for r in ledger.refunds.values()
        if r.payment_id in payment_ids and r.state in SETTLED_REFUNDS
    ]
    links: list[LinkRecord] = [
        link
        for link in ledger.links.values()
        if link.reference_id in session_ids
        or link.payment_id in payment_ids
        or (link.status in ("expired", "cancelled") and link.created_at < cutoff)
    ]
    if not (sessions or payments or links):
        return None
    _count(ledger, sessions, payments, refunds)
    for session in sessions:
        del ledger.sessions[session.session_id]
    for payment in payments:
        del ledger.payments[payment.payment_id]
    for refund in refunds:
        del ledger.refunds[refund.key]
    for link in links:
        ledger.drop_link(link)
    return {"links": links, "payments": payments, "sessions": sessions, "refunds": refunds}


def _count(
    ledger: Ledger,
    sessions: list[SessionRecord],
    payments: list[PaymentRecord],
    refunds: list[RefundRecord],
) -> None:
    """Add what leaving records counted for (session_rules' revenue and sessions served)."""
    by_id = {p.payment_id: p for p in payments}
    for payment in payments:
        if payment.bay_id and payment.state is PaymentState.SESSION:
            ledger.archived_totals.setdefault(payment.bay_id, [0, 0])[0] += payment.amount
    for refund in refunds:
        payment = by_id[refund.payment_id]
        if payment.bay_id and refund.state is not RefundState.FAILED:
            ledger.archived_totals.setdefault(payment.bay_id, [0, 0])[0] -= refund.amount
    for session in sessions:
        if session.state is SessionState.ENDED:
            ledger.archived_totals.setdefault(session.bay_id, [0, 0])[1] += 1


def with_archive(ledger: Ledger, batches: Iterable[dict[str, Any]]) -> Ledger:
    """A ledger of the archive and the live records together (for an export)."""
    merged: dict[str, list[Any]] = {"links": [], "payments": [], "sessions": [], "refunds": []}
    for batch in [*batches, ledger.as_dict()]:
        for key, records in merged.items():
            records.extend(batch.get(key, []))
    # A batch written again after a crash (before the ledger was saved) repeats records; the
    # ledger keys them by id, so each counts once.
    return Ledger.from_dict(merged)
