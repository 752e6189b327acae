"""How the ledger's per-webhook cost grows with its size.

Every delivery that changes the ledger rewrites its whole file (one JSON document, serialised in
HA's event loop by ``ledger_file.LedgerFile`` with orjson), and finding a bay's running session
scans the sessions. Both grow with the number of sessions kept; this measures them at sizes a
kiosk reaches in months and years. The write itself (fsync) happens in the executor and is not
counted: it depends on the disk.
Target: at 10,000 sessions (a busy bay for a year) one payment costs under 50 ms of CPU.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parents[1]))

from custom_components.qr_charging.ledger import Ledger, LinkRecord
from custom_components.qr_charging.razorpay_events import PaymentNotice

TARGET_MS = 50.0


def _link(i: int) -> LinkRecord:
    return LinkRecord(
        link_id=f"plink_{i:014d}",
        reference_id=f"s-{i:026d}",
        bay_id=f"bay-{i % 8}",
        plan_code="p30",
        amount=2000,
        currency="INR",
        seconds=1800,
        expire_by=1_800_000_000,
        created_at=1_700_000_000 + i,
        short_url=f"https://rzp.io/i/{i}",
    )


def _notice(i: int) -> PaymentNotice:
    return PaymentNotice(
        payment_id=f"pay_{i:014d}",
        amount=2000,
        currency="INR",
        status="captured",
        link_id=f"plink_{i:014d}",
    )


def build(size: int) -> Ledger:
    """A ledger with ``size`` paid sessions, all ended."""
    ledger = Ledger()
    for i in range(size):
        ledger.add_link(_link(i))
        result = ledger.apply_payment(_notice(i), "payment_link.paid", 1_700_000_000 + i)
        assert result.session is not None
        result.session.state = result.session.state.ENDED
        ledger.note_event(f"evt_{i}", "payment_link.paid", "new_session", 1_700_000_000 + i)
    return ledger


def measure(size: int, rounds: int = 5) -> dict[str, float]:
    """CPU cost of one more payment (match, running-session scan, serialise) at ``size``."""
    ledger = build(size)
    best = float("inf")
    for r in range(rounds):
        i = size + r
        ledger.add_link(_link(i))
        start = time.perf_counter()
        result = ledger.apply_payment(_notice(i), "payment_link.paid", 1_800_000_000)
        assert result.session is not None
        ledger.running_session(result.session.bay_id, besides=result.session.session_id)
        text = orjson.dumps(ledger.snapshot(), option=orjson.OPT_NON_STR_KEYS)
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    orjson.dumps(ledger.snapshot(), option=orjson.OPT_NON_STR_KEYS)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"ms": best * 1000, "json_mb": len(text) / 1e6, "peak_mb": peak / 1e6}


def main() -> int:
    """Print a table; exit 1 when the 10,000-session target is missed."""
    print(f"{'sessions':>9} {'ms/payment':>11} {'file MB':>8} {'peak MB':>8}")
    failed = False
    for size in (1_000, 10_000, 50_000):
        row = measure(size)
        print(f"{size:>9} {row['ms']:>11.1f} {row['json_mb']:>8.2f} {row['peak_mb']:>8.1f}")
        if size == 10_000 and row["ms"] > TARGET_MS:
            failed = True
    verdict = "MISSED" if failed else "met"
    print(f"target: under {TARGET_MS:.0f} ms per payment at 10,000 sessions: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
