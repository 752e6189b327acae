"""What one payment costs the ledger as its history grows (plain Python, no Home Assistant).

One payment is one ``Books.change`` as the webhook makes it: fetch what the payment needs from
the database (``Wanted.for_payment``), ``apply_payment`` and note the event, commit the change
as one SQLite transaction (WAL, ``synchronous=FULL``), evict. Measured at 0, 10,000 and
100,000 past sessions in the database (``history.prefill``), with the three ledgers open side
by side and their payments interleaved, so the machine's noise falls on all of them alike.
Between payments (not timed) the session is started and ended, as its bay would, so the
working set stays what it is in a steady state.

The longest synchronous stretch in the event loop during each change is measured with
``loop_probe.BlockProbe`` (every callback the loop runs, timed; in CPU time less garbage
collection, so that a thread descheduled on a shared machine does not count as work; the wall
clock's longest is kept beside it): the store's SQL runs in the executor, so what the loop
itself does must stay small at any size.

Targets: the median change at 10,000 and 100,000 sessions within 20 % of the empty ledger's,
and no stretch in the loop over 5 ms.

Beside them, the same payment with a large working set in memory (``WORKING_SET``: 2,000 open
payment links and 200 running sessions of 10 payments each, what 200 busy bays can hold):
informative, with the same 5 ms bound on loop blocks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.history import open_store, prefill
from benchmarks.loop_probe import BlockProbe
from benchmarks.stats import summary
from custom_components.qr_charging import session_rules as rules
from custom_components.qr_charging.books import Books
from custom_components.qr_charging.ledger import Wanted
from custom_components.qr_charging.payment_rules import Outcome, apply_payment
from custom_components.qr_charging.razorpay_events import (
    NOTE_BAY,
    NOTE_PLAN,
    NOTE_SESSION,
    PaymentNotice,
)
from custom_components.qr_charging.records import (
    LinkRecord,
    PaymentRecord,
    PaymentState,
    Record,
    SessionRecord,
    SessionState,
)

SIZES = (0, 10_000, 100_000)
BAYS = tuple(f"bay-{n}" for n in range(1, 9))
# Open links, running sessions and payments per session kept in memory.
WORKING_SET = (2000, 200, 10)
RATIO_TARGET = 1.2
BLOCK_TARGET_MS = 5.0


def working_set(links: int, sessions: int, payments: int) -> list[Record]:
    """Open links and running sessions with their payments, as busy bays keep them in memory."""
    now = time.time()
    records: list[Record] = [
        LinkRecord(
            link_id=f"plink_w{i:013d}",
            reference_id=f"s-w{i:024d}",
            bay_id=f"bay-w{i % sessions:03d}",
            plan_code="p30",
            amount=2000,
            currency="INR",
            seconds=1800,
            expire_by=int(now) + 1200,
            created_at=now - 60,
            short_url=f"https://rzp.io/i/w{i}",
        )
        for i in range(links)
    ]
    for s in range(sessions):
        ids = [f"pay_w{s:06d}{p:07d}" for p in range(payments)]
        records.append(
            SessionRecord(
                session_id=f"s-a{s:024d}",
                bay_id=f"bay-w{s:03d}",
                state=SessionState.ACTIVE,
                created_at=now - 60,
                seconds=1800 * payments,
                paid_paise=2000 * payments,
                payment_ids=ids,
                plan_code="p30",
                started_at=now - 55,
                until=now + 1800 * payments,
            )
        )
        records += [
            PaymentRecord(
                payment_id=p,
                amount=2000,
                currency="INR",
                received_at=now - 60,
                state=PaymentState.SESSION,
                events=["payment.captured", "payment_link.paid"],
                session_id=f"s-a{s:024d}",
                bay_id=f"bay-w{s:03d}",
                plan_code="p30",
            )
            for p in ids
        ]
    return records


class _Ledger:
    """One database of ``size`` past sessions (and ``extra`` records in memory), via ``Books``."""

    def __init__(self, size: int, path: Path, extra: list[Record] | None = None) -> None:
        self.size = size
        self.extra = extra or []
        self.label = f"{size:,}" + (f" + {len(self.extra):,} in memory" if self.extra else "")
        self.path = path
        self.books = Books(open_store(path))
        self.times: list[float] = []
        self.blocks: list[float] = []
        self.wall_blocks: list[float] = []
        self.prefill_s = 0.0

    async def pay(self, index: int, probe: BlockProbe, *, timed: bool) -> None:
        now = time.time()
        bay = BAYS[index % len(BAYS)]
        session_id = f"s-b{self.size:07d}{len(self.extra):06d}{index:011d}"
        link = LinkRecord(
            link_id=f"plink_b{index:013d}",
            reference_id=session_id,
            bay_id=bay,
            plan_code="p30",
            amount=2000,
            currency="INR",
            seconds=1800,
            expire_by=int(now) + 1200,
            created_at=now,
            short_url=f"https://rzp.io/i/b{index}",
        )
        async with self.books.change() as ledger:
            ledger.add_link(link)
        notice = PaymentNotice(
            payment_id=f"pay_b{index:014d}",
            amount=2000,
            currency="INR",
            status="captured",
            method="upi",
            link_id=link.link_id,
            reference_id=session_id,
            notes={NOTE_BAY: bay, NOTE_PLAN: "p30", NOTE_SESSION: session_id},
            created_at=int(now),
        )
        event_id = f"evt_b{self.size}_{len(self.extra)}_{index}"
        probe.reset()
        start = time.perf_counter()
        async with self.books.change(Wanted.for_payment(notice, event_id)) as ledger:
            assert not ledger.seen_event(event_id)
            result = apply_payment(ledger, notice, "payment_link.paid", now)
            ledger.note_event(event_id, "payment_link.paid", result.outcome.value, now)
        spent = time.perf_counter() - start
        assert result.outcome is Outcome.NEW_SESSION, result.outcome
        if timed:
            self.times.append(spent)
            self.blocks.append(probe.max_own_s)
            self.wall_blocks.append(probe.max_s)
        # The bay starts the session and it ends (not timed): the working set stays small.
        async with self.books.change() as ledger:
            session = ledger.sessions[session_id]
            rules.begin(session, now)
            rules.confirm(session, now)
            rules.finish(session, now + 1, "deadline")


async def run_async(
    sizes: tuple[int, ...],
    changes: int,
    workdir: Path,
    warmup: int = 20,
    working: tuple[int, int, int] = WORKING_SET,
) -> dict[str, Any]:
    """Measure every size, and the working set; return the figures and the verdicts."""
    ledgers = [_Ledger(size, workdir / f"ledger-{size}.db") for size in sizes]
    ledgers.append(_Ledger(0, workdir / "ledger-working-set.db", working_set(*working)))
    for ledger in ledgers:
        ledger.prefill_s = await prefill(ledger.path, ledger.size, BAYS, extra=ledger.extra)
        await ledger.books.async_open()
    probe = BlockProbe(chains=False)
    probe.install()
    try:
        for index in range(warmup + changes):
            for ledger in ledgers:
                await ledger.pay(index, probe, timed=index >= warmup)
    finally:
        probe.uninstall()
        for ledger in ledgers:
            await ledger.books.store.async_close()
    rows = []
    base = summary(ledgers[0].times)["p50"]
    for ledger in ledgers:
        figures = summary(ledger.times)
        block_max = max(ledger.blocks) * 1000
        ratio = figures["p50"] / base
        grown = ledger.size > 0 and not ledger.extra
        rows.append(
            {
                "sessions": ledger.size,
                "in_memory": len(ledger.extra),
                "label": ledger.label,
                "change_ms": figures,
                "ratio_to_empty": round(ratio, 3),
                "block_max_ms": round(block_max, 3),
                "block_wall_max_ms": round(max(ledger.wall_blocks) * 1000, 3),
                "block_p99_ms": summary(ledger.blocks)["p99"],
                "db_mb": round(ledger.path.stat().st_size / 1e6, 2),
                "prefill_s": round(ledger.prefill_s, 2),
                # The in-memory row has no ratio target (informative); every row the block one.
                "met": (ratio <= RATIO_TARGET or not grown) and block_max <= BLOCK_TARGET_MS,
            }
        )
    return {
        "rows": rows,
        "changes_per_size": changes,
        "working_set": dict(zip(("open_links", "sessions", "payments_each"), working, strict=True)),
        "target": f"p50 within {RATIO_TARGET - 1:.0%} of the empty ledger's; no loop block over "
        f"{BLOCK_TARGET_MS:g} ms",
        "met": all(row["met"] for row in rows),
    }


def run(
    sizes: tuple[int, ...] = SIZES,
    changes: int = 300,
    workdir: Path | None = None,
    working: tuple[int, int, int] = WORKING_SET,
) -> dict[str, Any]:
    """Synchronous entry point (a temporary directory unless ``workdir`` is given)."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(run_async(sizes, changes, workdir, working=working))
    with tempfile.TemporaryDirectory(prefix="qr-ledger-bench-") as tmp:
        return asyncio.run(run_async(sizes, changes, Path(tmp), working=working))


def main(argv: list[str] | None = None) -> int:
    """Print a table; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = run(tuple(int(s) for s in args.sizes.split(",")), args.changes)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if result["met"] else 1
    print(f"{'sessions':>24} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} {'block ms':>9} {'db MB':>6}")
    for row in result["rows"]:
        figures = row["change_ms"]
        print(
            f"{row['label']:>24} {figures['p50']:>8.3f} {figures['p99']:>8.3f} "
            f"{row['ratio_to_empty']:>6.2f} {row['block_max_ms']:>9.3f} {row['db_mb']:>6.1f}"
        )
    print(f"target: {result['target']}: {'met' if result['met'] else 'MISSED'}")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
