"""Pay → command with 0, 10,000 and 100,000 past sessions in the ledger.

Three Home Assistant processes run side by side, each with its own ledger database filled
before it starts (``history.prefill``: through the integration's ``LedgerStore``, records from
``records.py``), its own agent node (scripted: it answers ``on`` as the real agent does) and
the same broker. Their payments are interleaved one by one, so whatever else the machine does
falls on all three alike; the figure is each one's median against the empty one's.

Inside each Home Assistant, the probe times every callback of the event loop and marks those
in qr_charging's code (the coroutine chains of the tasks they step, before and after): the
longest of ours while paying is the second figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.ha import Account, BaySpec, HomeAssistantProcess, PlanSpec
from benchmarks.history import prefill
from benchmarks.mqtt_clients import PREFIX, ScriptedAgents, Subscriber
from benchmarks.rig import (
    NODELAY,
    Tuning,
    WebhookPoster,
    blocking,
    commit_floor,
    start_broker_and_standin,
)
from benchmarks.stats import summary

BAYS = [f"bay-{n}" for n in range(1, 9)]
RATIO_TARGET = 1.2
BLOCK_TARGET_MS = 5.0


@dataclass
class HistoryConfig:
    """How much to measure."""

    sizes: tuple[int, ...] = (0, 10_000, 100_000)
    samples: int = 150
    warmup: int = 10


SMOKE = HistoryConfig(sizes=(0, 100), samples=3, warmup=1)
LONG = HistoryConfig(samples=400)


class _Instance:
    def __init__(self, size: int, ha: HomeAssistantProcess, account: Account, node: str) -> None:
        self.size = size
        self.ha = ha
        self.account = account
        self.node = node
        self.poster = WebhookPoster(ha.base)
        self.command: list[float] = []
        self.floor: list[float] = []
        self.commits: list[float] = []
        self.commit = commit_floor(ha.storage)
        self.startup: dict[str, Any] = {}
        self.blocks: dict[str, Any] = {}
        self.prefill_s = 0.0

    async def sample(self, standin: Any, sub: Subscriber, index: int, *, timed: bool) -> None:
        ha = self.ha
        assert ha.session is not None
        bay = BAYS[index % len(BAYS)]
        link = await ha.action("qr_charging", "create_payment_link", {"bay": bay, "plan": "p30"})
        webhook = standin.pay_link(link["id"]).payment_link_paid()
        start = time.monotonic()
        async with ha.session.get("/api/", headers=ha.headers) as response:
            await response.read()
        floor = time.monotonic() - start
        commit = await blocking(self.commit)
        topic = f"{PREFIX}/{self.node}/{bay}/set"
        session_id = link["session_id"]
        mark = sub.mark()
        start = time.monotonic()
        status, outcome = await self.poster.post(webhook)
        if (status, outcome) != (200, "new_session"):
            raise RuntimeError(f"{self.node}: webhook answered {status} {outcome}")
        message = await blocking(
            sub.wait,
            lambda m: m.topic == topic and (m.json() or {}).get("session") == session_id,
            mark,
        )
        if timed:
            self.command.append(message.at - start)
            self.floor.append(floor)
            self.commits.append(commit)
        await self.ha.wait_bay_status(bay, "charging")
        await ha.action("qr_charging", "stop_session", {"bay": bay, "refund": "none"})
        await self.ha.wait_bay_status(bay, "idle")


def _ours(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {
        "max_ms": snapshot["max_ms"],
        "gc_max_ms": snapshot["gc_max_ms"],
        "max_ours_ms": snapshot["max_ours_ms"],
        "ours_over_5ms": snapshot["ours_over_5ms"],
        "top_ours": [t for t in snapshot["top"] if t["ours"]][:3],
        "top": snapshot["top"][:3],
    }


async def run(workdir: Path, config: HistoryConfig, tuning: Tuning = NODELAY) -> dict[str, Any]:
    """Measure every size side by side; the figures.

    By default without Nagle's algorithm on the MQTT sockets: with it, the delayed-ACK
    timer's 40 ms steps (see ``rig.Tuning``) would drown what the ledger's size does.
    """
    async with contextlib.AsyncExitStack() as stack:
        broker, standin = await start_broker_and_standin(stack, workdir, tuning)
        nodes = {f"hist-{size}": BAYS for size in config.sizes}
        agents = ScriptedAgents(broker.port, nodes, nodelay=tuning.nodelay)
        stack.callback(agents.close)
        sub = Subscriber(broker.port, [f"{PREFIX}/+/+/set"], nodelay=tuning.nodelay)
        stack.callback(sub.close)
        instances: list[_Instance] = []
        for size in config.sizes:
            node = f"hist-{size}"
            account = Account(
                key_id=standin.key_id,
                key_secret=standin.key_secret,
                api_base_url=standin.base_url,
                plans=[PlanSpec("p30", 30, 2000)],
                bays=[BaySpec(bay, node, ["p30"]) for bay in BAYS],
            )
            ha = HomeAssistantProcess(workdir / f"ha-{size}", chains=True)
            ha.write_config(broker.port, account)
            instance = _Instance(size, ha, account, node)
            instance.prefill_s = await prefill(ha.db_path(account), size, BAYS)
            instances.append(instance)
        for instance in instances:
            stack.push_async_callback(instance.ha.stop)
            stack.push_async_callback(instance.poster.close)
        await asyncio.gather(*(i.ha.start() for i in instances))
        for instance in instances:
            await instance.ha.wait_bays(len(BAYS))
            if tuning.nodelay:
                await instance.ha.mqtt_nodelay()
            instance.startup = _ours(await instance.ha.blocks(reset=True))
        for index in range(config.warmup + config.samples):
            for instance in instances:
                await instance.sample(standin, sub, index, timed=index >= config.warmup)
        for instance in instances:
            instance.blocks = _ours(await instance.ha.blocks(reset=True))
    base = summary(instances[0].command)["p50"]
    rows = []
    for instance in instances:
        figures = summary(instance.command)
        ratio = figures["p50"] / base
        rows.append(
            {
                "sessions": instance.size,
                "pay_to_command_ms": figures,
                "floor_get_api_ms": summary(instance.floor),
                "floor_commit_ms": summary(instance.commits),
                "ratio_to_empty": round(ratio, 3),
                "blocks_while_paying": instance.blocks,
                "blocks_at_startup": instance.startup,
                "prefill_s": round(instance.prefill_s, 2),
                "met": ratio <= RATIO_TARGET and instance.blocks["max_ours_ms"] <= BLOCK_TARGET_MS,
            }
        )
    return {"tuning": tuning.label, "rows": rows, "met": all(r["met"] for r in rows)}
