"""The customer's pages under load while payments arrive: one Home Assistant, scripted agents.

Two runs of the same payments, one quiet and one with the load:

- the load: ``clients`` browsers (50), each from an address of its own (127.0.0.2 on, so
  each has the pages' per-client budget), each asking in turn for a bay's A4 poster, its
  display, its page and its status (``format=json``) at ``rate_per_client`` (5 a second:
  more than the budget, 2 a second, so each is also answered 429). They run in a process of
  their own (their CPU is not the timing's), and are counted once every client has spent its
  budget's burst (the steady state): pages served a second, 429s a second, the latency of
  the pages served;
- the payments: a signed ``payment_link.paid`` POSTed to Home Assistant until the ``on``
  reaches a paho client subscribed to the bay's ``set`` topic, as in ``bench_pay`` (the agents
  are scripted: they answer as the real agent does, nothing is switched); after each, the
  session is stopped (not timed) and ``gap_s`` passes;
- Home Assistant's event loop: every callback timed by the probe; the longest of ours (CPU
  time less garbage collection) while loaded.

Targets: pay → command p99 with the load within 2x the quiet run's; no loop block of ours
over 5 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from benchmarks.ha import Account, BaySpec, HomeAssistantProcess, PlanSpec
from benchmarks.mqtt_clients import PREFIX, ScriptedAgents, Subscriber
from benchmarks.rig import STOCK, Tuning, WebhookPoster, blocking, start_broker_and_standin
from benchmarks.stats import summary
from custom_components.qr_charging.pages_budget import PER_ADDRESS

NODE = "kiosk-1"
BAYS = [f"bay-{n}" for n in range(1, 5)]


@dataclass(frozen=True)
class PagesConfig:
    """How much load and how many payments."""

    clients: int = 50
    rate_per_client: float = 5.0
    payments: int = 120
    warmup: int = 5
    gap_s: float = 0.25
    settle_max_s: float = 30.0


DEFAULT = PagesConfig()
SMOKE = PagesConfig(clients=3, payments=3, warmup=1, gap_s=0.05, settle_max_s=1.0)


class _Load:
    """The browsers: each its own address, session and pace (run in a process of their own)."""

    def __init__(self, base: str, paths: list[str], config: PagesConfig) -> None:
        self.base = base
        self.paths = paths
        self.config = config
        self.statuses: Counter[int] = Counter()
        self.latencies: list[float] = []
        self.stop = asyncio.Event()

    async def _client(self, index: int) -> None:
        connector = aiohttp.TCPConnector(limit=1, local_addr=(f"127.0.0.{index + 2}", 0))
        period = 1 / self.config.rate_per_client
        async with aiohttp.ClientSession(self.base, connector=connector) as session:
            turn = index
            next_at = time.monotonic()
            while not self.stop.is_set():
                path = self.paths[turn % len(self.paths)]
                turn += 1
                start = time.monotonic()
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(path) as response:
                        await response.read()
                        self.statuses[response.status] += 1
                        if response.status == 200:
                            self.latencies.append(time.monotonic() - start)
                next_at = max(next_at + period, time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), next_at - time.monotonic())

    def reset(self) -> None:
        """Count from now on (the budgets' bursts are spent)."""
        self.statuses.clear()
        self.latencies.clear()

    async def run(self, control: Connection) -> None:
        """Load until told to stop; ``reset`` on the pipe counts from then; then the figures."""
        loop = asyncio.get_running_loop()
        tasks = [asyncio.create_task(self._client(i)) for i in range(self.config.clients)]
        control.send("started")
        started = time.monotonic()
        while (order := await loop.run_in_executor(None, control.recv)) == "reset":
            self.reset()
            started = time.monotonic()
        self.stop.set()
        await asyncio.gather(*tasks)
        seconds = time.monotonic() - started
        control.send(
            {
                "clients": self.config.clients,
                "offered_per_s": self.config.clients * self.config.rate_per_client,
                "seconds": round(seconds, 1),
                "statuses": dict(sorted(self.statuses.items())),
                "served_per_s": round(self.statuses[200] / seconds, 1),
                "refused_per_s": round(self.statuses[429] / seconds, 1),
                "served_ms": summary(self.latencies),
                "order": order,
            }
        )


def _load_process(base: str, paths: list[str], config: PagesConfig, control: Connection) -> None:
    asyncio.run(_Load(base, paths, config).run(control))


class _LoadProcess:
    """The load in a process of its own: its CPU is not the benchmark's timing thread's."""

    def __init__(self, base: str, paths: list[str], config: PagesConfig) -> None:
        self._control, child = multiprocessing.get_context("spawn").Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_load_process, args=(base, paths, config, child), daemon=True
        )

    async def start(self) -> None:
        self._process.start()
        await blocking(self._control.recv)

    def reset(self) -> None:
        self._control.send("reset")

    async def stop(self) -> dict[str, Any]:
        self._control.send("stop")
        figures: dict[str, Any] = await blocking(self._control.recv)
        figures.pop("order")
        await blocking(self._process.join, 30)
        return figures


async def _payments(
    ha: HomeAssistantProcess, standin: Any, sub: Subscriber, config: PagesConfig
) -> dict[str, Any]:
    """Pay, time until the ``on``; stop the session; again."""
    poster = WebhookPoster(ha.base)
    samples: list[float] = []
    try:
        for index in range(config.warmup + config.payments):
            bay = BAYS[index % len(BAYS)]
            link = await ha.action(
                "qr_charging", "create_payment_link", {"bay": bay, "plan": "p30"}
            )
            webhook = standin.pay_link(link["id"]).payment_link_paid()
            await asyncio.sleep(config.gap_s)
            topic, session = f"{PREFIX}/{NODE}/{bay}/set", link["session_id"]
            mark = sub.mark()
            start = time.monotonic()
            status, outcome = await poster.post(webhook)
            if (status, outcome) != (200, "new_session"):
                raise RuntimeError(f"webhook answered {status} {outcome}")
            message = await blocking(
                sub.wait,
                lambda m, t=topic, s=session: m.topic == t and (m.json() or {}).get("session") == s,
                mark,
            )
            if index >= config.warmup:
                samples.append(message.at - start)
            await ha.wait_bay_status(bay, "charging")
            await ha.action("qr_charging", "stop_session", {"bay": bay, "refund": "none"})
            await ha.wait_bay_status(bay, "idle")
    finally:
        await poster.close()
    return {"pay_to_command_ms": summary(samples)}


async def _page_paths(ha: HomeAssistantProcess) -> list[str]:
    """Each bay's poster, display, page and status, as paths on Home Assistant."""
    links = (await ha.action("qr_charging", "bay_links", {}))["bays"]
    paths: list[str] = []
    for bay in BAYS:
        urls = links[bay]
        for url in (urls["poster_url"], urls["display_url"], urls["page_url"]):
            parts = urlsplit(url)
            paths.append(f"{parts.path}?{parts.query}")
        paths.append(paths[-1] + "&format=json")
    return paths


async def run(workdir: Path, config: PagesConfig, tuning: Tuning = STOCK) -> dict[str, Any]:
    """The quiet run, then the loaded one; the figures."""
    async with contextlib.AsyncExitStack() as stack:
        broker, standin = await start_broker_and_standin(stack, workdir, tuning)
        agents = ScriptedAgents(broker.port, {NODE: BAYS})
        stack.callback(agents.close)
        sub = Subscriber(broker.port, [f"{PREFIX}/{NODE}/+/set"])
        stack.callback(sub.close)
        account = Account(
            key_id=standin.key_id,
            key_secret=standin.key_secret,
            api_base_url=standin.base_url,
            plans=[PlanSpec("p30", 30, 2000)],
            bays=[BaySpec(bay, NODE, ["p30"]) for bay in BAYS],
        )
        ha = HomeAssistantProcess(workdir / "ha", chains=True)
        ha.write_config(broker.port, account)
        stack.push_async_callback(ha.stop)
        await ha.start()
        await ha.wait_bays(len(BAYS))
        paths = await _page_paths(ha)
        result: dict[str, Any] = {"pages": len(paths)}

        await ha.blocks(reset=True)
        result["quiet"] = await _payments(ha, standin, sub, config)
        result["quiet"]["blocks"] = _blocks(await ha.blocks(reset=True))

        load = _LoadProcess(ha.base, paths, config)
        await load.start()
        try:
            # Until every client has spent its burst: what is measured is the steady state.
            spare = config.rate_per_client - PER_ADDRESS.rate_per_s
            await asyncio.sleep(min(PER_ADDRESS.burst / spare + 2, config.settle_max_s))
            load.reset()
            await ha.blocks(reset=True)
            result["loaded"] = await _payments(ha, standin, sub, config)
        finally:
            result["load"] = await load.stop()
        result["loaded"]["blocks"] = _blocks(await ha.blocks(reset=True))
        quiet, loaded = result["quiet"], result["loaded"]
        result["p99_ratio"] = round(
            loaded["pay_to_command_ms"]["p99"] / quiet["pay_to_command_ms"]["p99"], 2
        )
        return result


def _blocks(blocks: dict[str, Any]) -> dict[str, Any]:
    keys = ("max_ms", "max_own_ms", "max_ours_ms", "ours_over_5ms", "gc_max_ms")
    return {k: blocks[k] for k in keys} | {"top": blocks["top"][:3]}
