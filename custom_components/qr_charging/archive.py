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


def _settled(ledger: Ledger, session: SessionRecord, cutoff: float, owed: set[str]) -> bool:
    if session.running or (session.ended_at or session.created_at) >= cutoff:
        return False
    for payment_id in session.payment_ids:
        payment = ledger.payments.get(payment_id)
        if payment_id in owed or (payment is not None and payment.state is PaymentState.ATTENTION):
            return False
    return True


def select_archivable(ledger: Ledger, cutoff: float) -> dict[str, list[Any]] | None:
    """The settled records older than ``cutoff`` (the ledger is not changed); None if none.

    Settled: the session ended, failed or was refunded, and no refund of any of its payments
    is still requested or pending.
    """
    owed = {r.payment_id for r in ledger.refunds.values() if r.state not in SETTLED_REFUNDS}
    sessions = [s for s in ledger.sessions.values() if _settled(ledger, s, cutoff, owed)]
    session_ids = {s.session_id for s in sessions}
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
    return {"links": links, "payments": payments, "sessions": sessions, "refunds": refunds}


def drop_archived(ledger: Ledger, batch: dict[str, list[Any]]) -> None:
    """Remove an archived batch from the ledger; the bays' totals keep what it counted for."""
    _count(ledger, batch["sessions"], batch["payments"], batch["refunds"])
    for session in batch["sessions"]:
        del ledger.sessions[session.session_id]
    for payment in batch["payments"]:
        del ledger.payments[payment.payment_id]
    for refund in batch["refunds"]:
        del ledger.refunds[refund.key]
    for link in batch["links"]:
        ledger.drop_link(link)


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
