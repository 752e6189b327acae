"""Run every benchmark; write ``bench/results.json`` and ``bench/results.md``.

    python -m benchmarks            # the default run (about 10 minutes)
    python -m benchmarks --long     # longer sessions and windows (1, 5 and 30-minute sessions)
    python -m benchmarks --smoke    # tiny counts: proves the code works, measures nothing
    python -m benchmarks --only pay,scale
    python -m benchmarks --only pages   # the customer's pages under load while paying
    python -m benchmarks --only meter   # the agent's energy cut-off (metered bays)
    python -m benchmarks --only metered # 200 metered bays' state reports (10 s and 1 s)
    python -m benchmarks --only tax     # export_tax over a month of 10,000 paid sessions
    python -m benchmarks --fleet        # 1,000 bays on a NATS cluster (nodes killed), on Mosquitto

Speed and memory targets are checked here, never by timed tests. The exit status is 1 when a
target is missed (not in ``--smoke``), 2 when a benchmark failed to run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import (
    bench_fleet,
    bench_history,
    bench_meter,
    bench_metered,
    bench_pages,
    bench_pay,
    bench_scale,
    bench_tax,
    ledger_growth,
)
from benchmarks.agent_process import agent_python
from benchmarks.report import markdown, rows
from benchmarks.rig import BROKER_NODELAY, NODELAY, NODELAY_RAM, STOCK
from benchmarks.stats import machine
from tests.mosquitto import MOSQUITTO

ROOT = Path(__file__).resolve().parents[1]


def scenarios(mode: str) -> dict[str, Callable[[Path], dict[str, Any]]]:
    """Each benchmark by name, sized for ``mode`` (default, long or smoke)."""
    smoke, long = mode == "smoke", mode == "long"
    pay = bench_pay.SMOKE if smoke else bench_pay.LONG if long else bench_pay.DEFAULT
    pay_variant = bench_pay.SMOKE_VARIANT if smoke else bench_pay.VARIANT
    history = (
        bench_history.SMOKE
        if smoke
        else bench_history.LONG
        if long
        else bench_history.HistoryConfig()
    )
    scale = bench_scale.SMOKE if smoke else bench_scale.LONG if long else bench_scale.DEFAULT
    scale_variant = bench_scale.SMOKE_VARIANT if smoke else bench_scale.VARIANT
    ledger_sizes = (0, 100, 1000) if smoke else ledger_growth.SIZES
    ledger_changes = 5 if smoke else 1000 if long else 300
    working = (100, 10, 3) if smoke else ledger_growth.WORKING_SET
    pages = bench_pages.SMOKE if smoke else bench_pages.DEFAULT
    meter = bench_meter.SMOKE if smoke else bench_meter.DEFAULT
    metered = bench_metered.SMOKE if smoke else bench_metered.DEFAULT
    tax = bench_tax.SMOKE if smoke else bench_tax.TaxConfig()
    fleet = bench_fleet.SMOKE if smoke else bench_fleet.DEFAULT
    return {
        "ledger": lambda work: ledger_growth.run(ledger_sizes, ledger_changes, work, working),
        "pay": lambda work: asyncio.run(bench_pay.run(work, pay, STOCK)),
        "pay_broker_nodelay": lambda work: asyncio.run(
            bench_pay.run(work, pay_variant, BROKER_NODELAY)
        ),
        "pay_nodelay": lambda work: asyncio.run(bench_pay.run(work, pay_variant, NODELAY)),
        "pay_ram": lambda work: asyncio.run(bench_pay.run(work, pay_variant, NODELAY_RAM)),
        "history": lambda work: asyncio.run(bench_history.run(work, history, NODELAY)),
        "scale": lambda work: asyncio.run(bench_scale.run(work, scale, STOCK)),
        "scale_nodelay": lambda work: asyncio.run(bench_scale.run(work, scale_variant, NODELAY)),
        "pages": lambda work: asyncio.run(bench_pages.run(work, pages)),
        "meter": lambda work: bench_meter.run(work, meter),
        "metered": lambda work: asyncio.run(bench_metered.run(work, metered)),
        "tax": lambda work: bench_tax.run(work, tax),
        "fleet": lambda work: asyncio.run(bench_fleet.run(work, fleet)),
        "fleet_mosquitto": lambda work: asyncio.run(bench_fleet.run(work, fleet, cluster=False)),
    }


# Not in the default run (minutes, and nats-server and HAProxy): ``--fleet`` or ``--only``.
OPT_IN = ("fleet", "fleet_mosquitto")


def run(mode: str, out: Path, only: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmarks (all, or ``only``); write and return the results."""
    table = scenarios(mode)
    names = only or [name for name in table if name not in OPT_IN]
    unknown = set(names) - set(table)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results: dict[str, Any] = {
        "mode": mode,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(agent_python(), MOSQUITTO),
        "scenarios": {},
    }
    begun = time.monotonic()
    for name in names:
        print(f"==> {name}", file=sys.stderr, flush=True)
        start = time.monotonic()
        try:
            outcome = table[name](work / name)
        except Exception:
            outcome = {"error": traceback.format_exc()}
            print(outcome["error"], file=sys.stderr)
        outcome["seconds"] = round(time.monotonic() - start, 1)
        results["scenarios"][name] = outcome
    results["seconds"] = round(time.monotonic() - begun, 1)
    results["table"] = rows(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--smoke", action="store_true", help="tiny counts: checks the code runs")
    sizes.add_argument("--long", action="store_true", help="long sessions and windows")
    parser.add_argument(
        "--fleet", action="store_true", help="the fleet benchmarks: --only " + ",".join(OPT_IN)
    )
    parser.add_argument("--only", help="comma-separated names: " + ", ".join(scenarios("default")))
    parser.add_argument("--out", type=Path, default=ROOT / "bench", help="where results go")
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else "long" if args.long else "default"
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    if args.fleet:
        only = [*(only or []), *OPT_IN]
    results = run(mode, args.out, only)
    print(markdown(results))
    if any("error" in outcome for outcome in results["scenarios"].values()):
        return 2
    if mode != "smoke" and any(row["met"] is False for row in results["table"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
