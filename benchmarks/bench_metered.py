"""The cost of metered state reports: 200 metered bays on 20 agents, each reporting every 10 s.

The agents are ``ScriptedAgents`` (one paho client speaking for 20 nodes of 10 bays), their
config naming a meter for every bay. Home Assistant (a real process, ``ha.py``) sells each bay
energy by the kWh: one payment link per bay (₹500 at ₹15 a unit, 33.3 kWh, so no session ends
in the window), paid through the Razorpay stand-in's signed ``payment_link.paid``; the agents
answer each ``on`` with ``ON``. Then, for a measured window, each bay's state is published
with ``power_w`` and ``energy_wh`` once per ``interval_s`` (the agent's "at least every 10 s
while on"), the bays spread evenly over the interval as independent agents are; each report's
power differs from the last, so each one changes the bay's *Power* sensor (and its *Session
energy* sensor as the energy grows). A phase per interval, each going on from the last: 10 s,
then 1 s for the slope, twice (does memory keep growing?).

Per phase: reports handled per second (power sensor changes seen in the window), Home
Assistant's CPU share (all its threads' CPU time over the window's wall clock, one CPU =
100 %), its loop's longest callback of ours (``loop_probe``: CPU time, GC passes excluded),
report → sensor state (the report's publish to the *Power* sensor's state change, the probe's
timestamp inside Home Assistant, same monotonic clock), and Home Assistant's RSS growth over
the window (after a full garbage collection at each end).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.bench_scale import _rss_after_gc, _wait
from benchmarks.ha import Account, BaySpec, HomeAssistantProcess, PlanSpec
from benchmarks.history import prefill
from benchmarks.mqtt_clients import ScriptedAgents
from benchmarks.rig import (
    STOCK,
    WebhookPoster,
    add_link,
    py_spy,
    start_broker_and_standin,
    stored_dir,
)
from benchmarks.stats import ProcStats, summary

PRICE_PER_KWH_PAISE = 1500
AMOUNT_PAISE = 50_000
ENERGY_WH = AMOUNT_PAISE * 1000 // PRICE_PER_KWH_PAISE
CAP_MINUTES = 240
POWER_W = 2000.0
METER = {"kind": "mock", "max_power_w": 3680}


@dataclass
class EnergyPlanSpec(PlanSpec):
    """A per-kWh plan subentry (``minutes`` is the time cap)."""

    price_per_kwh_paise: int = PRICE_PER_KWH_PAISE
    min_paise: int = 1000
    max_paise: int = AMOUNT_PAISE

    def subentry(self) -> dict[str, Any]:
        """As stored in the config entry."""
        entry = super().subentry()
        data = entry["data"]
        del data["price_paise"]
        data |= {
            "kind": "kwh",
            "price_per_kwh_paise": self.price_per_kwh_paise,
            "min_paise": self.min_paise,
            "max_paise": self.max_paise,
        }
        return entry | {"subentry_type": "energy_plan"}


@dataclass
class MeteredConfig:
    """How big and how long: a phase per report interval."""

    nodes: int = 20
    bays_per_node: int = 10
    # (interval, window): the 1 s phase twice, to see whether memory keeps growing.
    phases: tuple[tuple[float, float], ...] = ((10.0, 180.0), (1.0, 60.0), (1.0, 60.0))
    settle_s: float = 10.0


DEFAULT = MeteredConfig()
SMOKE = MeteredConfig(nodes=2, bays_per_node=3, phases=((1.0, 3.0), (1.0, 2.0)), settle_s=5.0)


async def _start_sessions(
    ha: HomeAssistantProcess, standin: Any, links: dict[str, Any], bays: int
) -> None:
    """Pay every bay's link at the stand-in and deliver its webhook; wait until all charge."""
    poster = WebhookPoster(ha.base)
    try:
        for bay, link in links.items():
            status, outcome = await poster.post(standin.pay_link(link.link_id).payment_link_paid())
            if (status, outcome) != (200, "new_session"):
                raise RuntimeError(f"{bay}: webhook answered {status} {outcome}")
    finally:
        await poster.close()

    async def charging() -> bool:
        states = (await ha.bays())["bays"].values()
        return sum(1 for b in states if b["status"] == "charging") >= bays

    await _wait(charging, 120, "not every bay started charging", step=0.2)


async def _phase(
    ha: HomeAssistantProcess,
    agents: ScriptedAgents,
    bay_nodes: dict[str, str],
    *,
    interval_s: float,
    window_s: float,
    settle_s: float,
    workdir: Path,
) -> dict[str, Any]:
    """Report every bay every ``interval_s`` for ``window_s``; the figures."""
    info = (await ha.bays())["bays"]
    power_bay = {data["power_entity"]: bay for bay, data in info.items()}
    _, since = await ha.changes(watch="_power")
    # Each bay's session goes on from the last phase's reading: its energy never goes back.
    last = {bay: agents.readings[(node, bay)] for bay, node in bay_nodes.items()}
    published: dict[tuple[str, float], float] = {}
    order = list(bay_nodes)
    spacing = interval_s / len(order)
    rss_before = await _rss_after_gc(ha)
    await ha.blocks(reset=True)
    proc = ProcStats(ha.pid)
    cpu_before, began = proc.cpu_s(), time.monotonic()
    async with py_spy(ha.pid, workdir / f"pyspy-{interval_s:g}s.raw"):
        sent = 0
        while (due := began + sent * spacing) < began + window_s:
            await asyncio.sleep(max(due - time.monotonic(), 0))
            bay = order[sent % len(order)]
            # A new power each time (so the sensor changes), and the energy it delivered.
            power = round(max(last[bay][0], POWER_W) + 0.1, 1)
            last[bay] = (power, round(last[bay][1] + power * interval_s / 3600, 3))
            published[(bay, power)] = time.monotonic()
            agents.reading(bay_nodes[bay], bay, *last[bay])
            sent += 1
        wall = time.monotonic() - began
        cpu = proc.cpu_s() - cpu_before
    blocks = await ha.blocks(reset=True)

    seen: dict[tuple[str, float], float] = {}

    async def arrived() -> bool:
        changes, _ = await ha.changes(since)
        for at, entity, state in changes:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                seen.setdefault((power_bay[entity], round(float(state), 1)), at)
        return len(seen.keys() & published.keys()) >= len(published)

    with contextlib.suppress(TimeoutError):
        await _wait(arrived, settle_s, "not every report reached its sensor", step=0.5)
    latencies = [seen[key] - at for key, at in published.items() if key in seen]
    in_window = sum(1 for key, at in seen.items() if key in published and at <= began + wall)
    # The probe's records of the changes live in Home Assistant: forget them before its RSS.
    await ha.request("GET", "/api/bench_probe/changes?clear=1&watch=")
    rss_after = await _rss_after_gc(ha)
    return {
        "interval_s": interval_s,
        "window_s": round(wall, 1),
        "reports": len(published),
        "offered_per_s": round(len(published) / wall, 1),
        "handled_per_s": round(in_window / wall, 1),
        "unhandled": len(published) - len(latencies),
        "cpu_percent": round(100 * cpu / wall, 1),
        "report_to_sensor_ms": summary(latencies),
        "blocks": {
            k: blocks[k]
            for k in ("max_ms", "max_own_ms", "max_ours_ms", "ours_over_5ms", "gc_max_ms")
        }
        | {"top": blocks["top"][:3]},
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(rss_after, 1),
        "rss_growth_mb": round(rss_after - rss_before, 1),
    }


async def run(workdir: Path, config: MeteredConfig) -> dict[str, Any]:
    """Sessions sold by the kWh on every bay, then each phase of reports; the figures."""
    nodes = {
        f"node-{n:02d}": [f"bay-{n:02d}{b:02d}" for b in range(1, config.bays_per_node + 1)]
        for n in range(1, config.nodes + 1)
    }
    bay_nodes = {bay: node for node, bays in nodes.items() for bay in bays}
    async with contextlib.AsyncExitStack() as stack:
        broker, standin = await start_broker_and_standin(stack, workdir, STOCK)
        agents = ScriptedAgents(broker.port, nodes, meter=METER)
        stack.callback(agents.close)
        links = {
            bay: add_link(
                standin,
                index=i,
                bay_id=bay,
                plan_code="kwh",
                amount=AMOUNT_PAISE,
                seconds=CAP_MINUTES * 60,
                energy_wh=ENERGY_WH,
                price_per_kwh_paise=PRICE_PER_KWH_PAISE,
            )
            for i, bay in enumerate(bay_nodes)
        }
        account = Account(
            key_id=standin.key_id,
            key_secret=standin.key_secret,
            api_base_url=standin.base_url,
            plans=[EnergyPlanSpec("kwh", CAP_MINUTES, 0)],
            bays=[BaySpec(bay, node, ["kwh"]) for bay, node in bay_nodes.items()],
        )
        ha = HomeAssistantProcess(stored_dir(stack, workdir, STOCK) / "ha", chains=True)
        ha.write_config(broker.port, account)
        await prefill(ha.db_path(account), 0, list(bay_nodes), extra=list(links.values()))
        stack.push_async_callback(ha.stop)
        await ha.start()
        await ha.wait_bays(len(bay_nodes), within=120)
        await _start_sessions(ha, standin, links, len(bay_nodes))
        phases = [
            await _phase(
                ha,
                agents,
                bay_nodes,
                interval_s=interval,
                window_s=window,
                settle_s=config.settle_s,
                workdir=workdir,
            )
            for interval, window in config.phases
        ]
        return {
            "bays": len(bay_nodes),
            "agents": len(nodes),
            "metered_ons": sum(
                1
                for c in agents.commands
                if isinstance(c.data, dict) and c.data.get("energy_wh") == ENERGY_WH
            ),
            "session_energy_matches": await _session_energy_matches(ha, agents),
            "phases": phases,
        }


async def _session_energy_matches(ha: HomeAssistantProcess, agents: ScriptedAgents) -> int:
    """Bays whose *Session energy* sensor shows the last energy reported (kWh, 3 places)."""
    states = {s["entity_id"]: s["state"] for s in await ha.request("GET", "/api/states")}
    return sum(
        1
        for (_, bay), (_, energy_wh) in agents.readings.items()
        if states.get(f"sensor.{bay.replace('-', '_')}_session_energy") == f"{energy_wh / 1000:.3f}"
    )
