"""What every Home Assistant benchmark needs around it: a broker, Razorpay, webhooks to post.

Razorpay is the tests' stand-in (``devtools/razorpay_standin``: a real HTTP server
on 127.0.0.1 the real ``razorpay`` SDK talks to), and webhooks are built from Razorpay's
documented examples by ``devtools/razorpay_standin/fixtures.py`` and signed with the
webhook secret, as Razorpay signs them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from benchmarks.ha import WEBHOOK_ID, WEBHOOK_SECRET
from custom_components.qr_charging.razorpay_events import NOTE_BAY, NOTE_PLAN, NOTE_SESSION
from custom_components.qr_charging.records import LinkRecord
from devtools.razorpay_standin import RazorpayStandin
from devtools.razorpay_standin.fixtures import Webhook, new_id, payment_link_entity
from tests.mosquitto import Broker

T = TypeVar("T")
# Blocking waits (paho subscribers, pin readers) run here, not in the default executor.
_waiters: ThreadPoolExecutor | None = None


async def blocking(func: Callable[..., T], *args: Any) -> T:
    """Run a blocking wait off the benchmark's event loop."""
    global _waiters  # noqa: PLW0603 - one pool, made when first needed
    if _waiters is None:
        _waiters = ThreadPoolExecutor(max_workers=48, thread_name_prefix="bench-wait")
    return await asyncio.get_running_loop().run_in_executor(_waiters, func, *args)


def close_waiters() -> None:
    """Join the waiting threads (a benchmark leaves no thread behind)."""
    global _waiters  # noqa: PLW0603
    if _waiters is not None:
        _waiters.shutdown(wait=True)
        _waiters = None


@dataclass(frozen=True)
class Tuning:
    """The conditions a benchmark runs in.

    The default is the system as it ships: Mosquitto's default configuration, and paho (Home
    Assistant's MQTT client, the agent's, the benchmark's) with Nagle's algorithm on, as paho
    leaves it. ``broker_nodelay`` is Mosquitto's ``set_tcp_nodelay true`` (Nagle's algorithm
    off on the broker's sockets); ``nodelay`` also turns it off on every client: TCP_NODELAY
    on Home Assistant's MQTT socket (set by the probe), the agent's (set by its benchmark
    wrapper) and the benchmark's. ``ram`` keeps Home Assistant's configuration folder (its
    ledger database) and the agent's state file on tmpfs, where fsync costs nothing: what is
    left is the code's own time.
    """

    broker_nodelay: bool = False
    nodelay: bool = False
    ram: bool = False

    @property
    def label(self) -> str:
        """Short name for tables."""
        if self.nodelay:
            label = "TCP_NODELAY everywhere"
        elif self.broker_nodelay:
            label = "Mosquitto set_tcp_nodelay"
        else:
            label = "stock TCP"
        return label + (", storage in RAM" if self.ram else "")


STOCK = Tuning()
BROKER_NODELAY = Tuning(broker_nodelay=True)
NODELAY = Tuning(broker_nodelay=True, nodelay=True)
NODELAY_RAM = Tuning(broker_nodelay=True, nodelay=True, ram=True)


def start_broker(workdir: Path, tuning: Tuning = STOCK) -> Broker:
    """A Mosquitto on a free port of 127.0.0.1 (the tests' configuration)."""
    workdir.mkdir(parents=True, exist_ok=True)
    broker = Broker(workdir)
    if tuning.broker_nodelay:
        with broker.conf.open("a") as conf:
            conf.write("set_tcp_nodelay true\n")
    broker.start()
    return broker


def commit_floor(directory: Path) -> Callable[[], float]:
    """One durable SQLite commit in ``directory``, as the ledger makes them: its seconds.

    The same settings as ``LedgerStore`` (WAL, ``synchronous=FULL``): the disk's part of every
    change the integration stores.
    """
    directory.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        directory / "bench-floor.db", isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)")
    count = itertools.count()

    def commit() -> float:
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (next(count) % 100, "x" * 200))
        conn.execute("COMMIT")
        return time.perf_counter() - start

    return commit


async def start_standin() -> RazorpayStandin:
    """Razorpay's API stand-in."""
    standin = RazorpayStandin()
    await standin.start()
    return standin


async def start_broker_and_standin(
    stack: contextlib.AsyncExitStack, workdir: Path, tuning: Tuning
) -> tuple[Broker, RazorpayStandin]:
    """A Mosquitto in ``workdir / "broker"`` and Razorpay's stand-in, stopped by ``stack``.

    The stack also closes the waiters' threads (``close_waiters``) once everything has stopped.
    """
    stack.callback(close_waiters)
    broker = start_broker(workdir / "broker", tuning)
    stack.callback(broker.stop)
    standin = await start_standin()
    stack.push_async_callback(standin.stop)
    return broker, standin


def stored_dir(
    stack: contextlib.ExitStack | contextlib.AsyncExitStack, workdir: Path, tuning: Tuning
) -> Path:
    """Where Home Assistant (and the agent) keep their files.

    ``workdir``, or with ``tuning.ram`` a folder in /dev/shm that ``stack`` removes at the end.
    """
    if not tuning.ram:
        return workdir
    ram = Path(tempfile.mkdtemp(prefix="qr-bench-", dir="/dev/shm"))
    stack.callback(shutil.rmtree, ram, ignore_errors=True)
    return ram


def add_link(
    standin: RazorpayStandin,
    *,
    index: int,
    bay_id: str,
    plan_code: str,
    amount: int,
    seconds: int,
    now: float | None = None,
    energy_wh: int = 0,
    price_per_kwh_paise: int = 0,
) -> LinkRecord:
    """A payment link that exists both at the stand-in and (returned) for the ledger.

    What ``Payments.async_create_link`` would have made, without a call per link: for
    benchmarks that need hundreds of open links before Home Assistant starts.
    """
    now = time.time() if now is None else now
    session_id = f"s-B{index:025d}"
    link_id = new_id("plink")
    notes = {NOTE_BAY: bay_id, NOTE_PLAN: plan_code, NOTE_SESSION: session_id}
    standin.links[link_id] = payment_link_entity(
        accept_partial=False,
        amount=amount,
        amount_paid=0,
        callback_method="",
        callback_url="",
        cancelled_at=0,
        created_at=int(now),
        currency="INR",
        customer={},
        description=f"{plan_code}, {bay_id}",
        expire_by=int(now) + 1200,
        expired_at=0,
        first_min_partial_amount=0,
        id=link_id,
        notes=notes,
        notify={"email": False, "sms": False},
        order_id=None,
        payments=None,
        reference_id=session_id,
        reminder_enable=False,
        reminders=[],
        short_url=f"{standin.base_url}/pay/{link_id}",
        status="created",
        updated_at=int(now),
        upi_link=False,
        user_id="",
        whatsapp_link=False,
    )
    return LinkRecord(
        link_id=link_id,
        reference_id=session_id,
        bay_id=bay_id,
        plan_code=plan_code,
        amount=amount,
        currency="INR",
        seconds=seconds,
        expire_by=int(now) + 1200,
        created_at=now,
        short_url=f"{standin.base_url}/pay/{link_id}",
        energy_wh=energy_wh,
        price_per_kwh_paise=price_per_kwh_paise,
    )


class WebhookPoster:
    """POSTs signed deliveries to Home Assistant's webhook, as Razorpay does."""

    def __init__(self, base: str, connections: int = 1) -> None:
        self.session = aiohttp.ClientSession(
            base, connector=aiohttp.TCPConnector(limit=connections)
        )

    async def post(self, webhook: Webhook) -> tuple[int, str]:
        """(status, outcome) of one delivery."""
        async with self.session.post(
            f"/api/webhook/{WEBHOOK_ID}",
            data=webhook.body,
            headers=webhook.headers(WEBHOOK_SECRET),
        ) as response:
            try:
                outcome = str((await response.json()).get("outcome"))
            except (aiohttp.ContentTypeError, ValueError):
                outcome = (await response.text())[:100]
            return response.status, outcome

    async def close(self) -> None:
        """Close the connections."""
        await self.session.close()


@contextlib.asynccontextmanager
async def py_spy(pid: int, out: Path, rate: int = 250) -> AsyncIterator[None]:
    """Sample process ``pid`` with py-spy while the block runs, when ``$QR_BENCH_PY_SPY`` is set.

    ``QR_BENCH_PY_SPY`` is the path of a ``py-spy`` executable (``pip install py-spy``, in a
    venv of its own). The raw collapsed stacks go to ``out``, and ``out`` + ``.top.txt`` lists
    the functions of the main thread by the share of its busy samples they are in.
    """
    exe = os.environ.get("QR_BENCH_PY_SPY")
    if not exe:
        yield
        return
    command = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw"]
    proc = subprocess.Popen(  # noqa: ASYNC220 - started here, stopped below
        [*command, "--nonblocking", "--threads", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await asyncio.sleep(1)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.get_running_loop().run_in_executor(None, proc.wait, 60)
        if out.exists():  # noqa: ASYNC240 - once, after the measurement
            (out.parent / f"{out.name}.top.txt").write_text(top_frames(out))


def top_frames(raw: Path, count: int = 60) -> str:
    """The main thread's functions by the share of its busy (not selecting) samples."""
    inclusive: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if "MainThread" not in frames[0] or "select (selectors.py" in frames[-1]:
            continue
        busy += int(n)
        for frame in set(frames[1:]):
            inclusive[frame] += int(n)
    lines = [f"{busy} busy samples of the main thread"]
    lines += [f"{n / busy * 100:5.1f}% {frame}" for frame, n in inclusive.most_common(count)]
    return "\n".join(lines) + "\n"
