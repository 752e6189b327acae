"""A ledger database with past sessions in it, written through the integration's own store.

Each past session is what a paid one leaves behind: its payment link (paid), the payment
(two events: ``payment.captured`` and ``payment_link.paid``), the session (ended at its
deadline) and, for one in fifty, a processed refund. They are spread over a year before
``now``; the event ids of the last eight days (what Razorpay may still re-deliver) are kept,
as the reconciler keeps them. The bays' running totals are written in the same transactions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

from custom_components.qr_charging.ledger import EVENT_MEMORY_S, Changes
from custom_components.qr_charging.records import (
    LINKS,
    PAYMENTS,
    REFUNDS,
    SESSIONS,
    BayTotals,
    LinkRecord,
    PaymentRecord,
    PaymentState,
    Record,
    RefundRecord,
    RefundState,
    SessionRecord,
    SessionState,
    add_totals,
)
from custom_components.qr_charging.store import LedgerStore

YEAR_S = 365 * 24 * 3600
BATCH = 5000
PLAN_CODE = "p30"
PLAN_S = 1800
PLAN_PAISE = 2000


def open_store(path: Path) -> LedgerStore:
    """The store on ``path``, running its jobs in the running loop's default executor."""
    loop = asyncio.get_running_loop()
    return LedgerStore(path, lambda job: loop.run_in_executor(None, job))


def past_session(index: int, bay_id: str, created_at: float) -> list[Record]:
    """The records one paid and ended session leaves in the ledger."""
    session_id = f"s-h{index:024d}"
    link_id = f"plink_h{index:013d}"
    payment_id = f"pay_h{index:014d}"
    started = created_at + 6
    records: list[Record] = [
        LinkRecord(
            link_id=link_id,
            reference_id=session_id,
            bay_id=bay_id,
            plan_code=PLAN_CODE,
            amount=PLAN_PAISE,
            currency="INR",
            seconds=PLAN_S,
            expire_by=int(created_at) + 1200,
            created_at=created_at - 60,
            short_url=f"https://rzp.io/i/h{index}",
            status="paid",
            payment_id=payment_id,
        ),
        PaymentRecord(
            payment_id=payment_id,
            amount=PLAN_PAISE,
            currency="INR",
            received_at=created_at,
            state=PaymentState.SESSION,
            events=["payment.captured", "payment_link.paid"],
            link_id=link_id,
            session_id=session_id,
            bay_id=bay_id,
            plan_code=PLAN_CODE,
            method="upi",
            paid_at=created_at - 2,
        ),
        SessionRecord(
            session_id=session_id,
            bay_id=bay_id,
            state=SessionState.ENDED,
            created_at=created_at,
            seconds=PLAN_S,
            paid_paise=PLAN_PAISE,
            payment_ids=[payment_id],
            plan_code=PLAN_CODE,
            started_at=started,
            until=started + PLAN_S,
            ended_at=started + PLAN_S,
            end_reason="deadline",
        ),
    ]
    if index % 50 == 0:
        records.append(
            RefundRecord(
                key=f"rfk-h{index:020d}",
                payment_id=payment_id,
                amount=PLAN_PAISE // 4,
                created_at=started + PLAN_S * 0.75,
                state=RefundState.PROCESSED,
                reason="power_cut",
                session_id=session_id,
                refund_id=f"rfnd_h{index:013d}",
                bay_id=bay_id,
            )
        )
    return records


def kind_of(record: Record) -> object:
    """The table a record goes to."""
    for kind in (LINKS, PAYMENTS, SESSIONS, REFUNDS):
        if isinstance(record, kind.cls):
            return kind
    raise TypeError(record)


async def prefill(
    path: Path,
    sessions: int,
    bays: Sequence[str],
    *,
    now: float | None = None,
    extra: Sequence[Record] = (),
) -> float:
    """Write ``sessions`` past sessions (and ``extra`` records) into a new database at ``path``.

    Returns the seconds it took.
    """
    started = time.perf_counter()
    now = time.time() if now is None else now
    store = open_store(path)
    await store.async_open(now)
    step = YEAR_S / max(sessions, 1)
    recent = now - EVENT_MEMORY_S
    try:
        for first in range(0, max(sessions, 1), BATCH):
            upserts: list[tuple[object, Record]] = []
            events: list[tuple[str, float, str, str]] = []
            totals: dict[str, BayTotals] = {}
            for index in range(first, min(first + BATCH, sessions)):
                created = now - 3600 - (sessions - index) * step
                for record in past_session(index, bays[index % len(bays)], created):
                    upserts.append((kind_of(record), record))
                    add_totals(totals, record)
                if created >= recent:
                    events.append((f"h{index:013d}c", created, "payment.captured", "new_session"))
                    events.append((f"h{index:013d}p", created, "payment_link.paid", "duplicate"))
            if first == 0:
                for record in extra:
                    upserts.append((kind_of(record), record))
                    add_totals(totals, record)
            if upserts:
                await store.async_commit(Changes(upserts, [], events, totals))  # type: ignore[arg-type]
    finally:
        await store.async_close()
    return time.perf_counter() - started
