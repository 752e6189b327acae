"""From a paid webhook to the relay: one Home Assistant, the real agent, real Mosquitto.

- pay → command: a signed ``payment_link.paid`` POSTed to Home Assistant until the ``on``
  arrives at a paho client subscribed to the bay's ``set`` topic (as the agent is); beside each
  sample, the floors: an authenticated ``GET /api/``, a bare paho QoS 1 publish → receive
  through the same broker, and one durable SQLite commit (WAL, ``synchronous=FULL``, as the
  ledger's) in Home Assistant's ``.storage``;
- pay → power: the same payment until the agent's mock pin goes high (the agent is
  ``pi-mqtt-relay --mock-gpio`` in its own process, its state file written first); its floor
  is one save of the agent's own state file (``StateFile.save``: write, fsync, rename, fsync
  of the folder) in its folder;
- timing accuracy: the relay's on-time, from the mock pin's history, against the seconds paid,
  for short sessions and 1-minute ones (5 and 30 minutes with ``--long``), and across a SIGKILL
  of the agent a third into a session and its immediate restart;
- agent footprint: the agent's memory and CPU while idle and while its 8 bays run sessions.

Each sample is one payment to an idle bay (a session that starts); after it, the session is
stopped through the ``stop_session`` action (not timed), so the bay is idle again. Before each
timed payment the system is left quiet for ``gap_s`` (0.25 s), as it is between customers:
with stock TCP settings, a small packet sent within the peer's delayed-ACK time (40 ms on
Linux) of the last one waits for that ACK (Nagle's algorithm), which back-to-back samples would
measure instead of the payment (``rig.Tuning``; the state reports of ``bench_scale`` do show it,
as every ``ON`` report follows its ``on`` within milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.agent_process import AgentProcess, write_agent_config
from benchmarks.ha import Account, BaySpec, HomeAssistantProcess, PlanSpec
from benchmarks.mqtt_clients import PREFIX, MqttFloor, Subscriber
from benchmarks.rig import (
    STOCK,
    Tuning,
    WebhookPoster,
    blocking,
    commit_floor,
    py_spy,
    start_broker_and_standin,
    stored_dir,
)
from benchmarks.stats import percentile, summary
from pi_mqtt_relay.state_file import SavedState, StateFile

NODE = "kiosk-1"
BAYS = [f"bay-{n}" for n in range(1, 9)]


@dataclass(frozen=True)
class PayConfig:
    """How much to measure."""

    samples: int = 200
    warmup: int = 10
    short_minutes: float = 0.25  # 15 s: exact in binary, so the paid seconds are exact
    long_plans: tuple[tuple[str, float], ...] = (("p1m", 1.0),)
    timing: bool = True
    restart: bool = True
    restart_minutes: float = 0.25
    footprint: bool = True
    idle_window_s: float = 15.0
    gap_s: float = 0.25


DEFAULT = PayConfig()
SMOKE = PayConfig(
    samples=4,
    warmup=1,
    short_minutes=0.03125,
    long_plans=(),
    restart_minutes=0.0625,
    idle_window_s=1.0,
    gap_s=0.05,
)
LONG = PayConfig(
    samples=500,
    long_plans=(("p1m", 1.0), ("p5m", 5.0), ("p30", 30.0)),
    restart_minutes=1.0,
    idle_window_s=60.0,
)
# The diagnostic variants: payments only, and a round of short sessions.
VARIANT = replace(DEFAULT, samples=100, long_plans=(), restart=False, footprint=False)
SMOKE_VARIANT = replace(SMOKE, restart=False, footprint=False)


class _Rig:
    def __init__(self, ha: HomeAssistantProcess, agent: AgentProcess, pins: dict[str, int]) -> None:
        self.ha = ha
        self.agent = agent
        self.pins = pins
        self.poster = WebhookPoster(ha.base)

    async def pay(self, standin: Any, bay: str, plan: str) -> tuple[str, Any]:
        """Create a link through the action and have the stand-in pay it (not timed)."""
        link = await self.ha.action(
            "qr_charging", "create_payment_link", {"bay": bay, "plan": plan}
        )
        paid = standin.pay_link(link["id"])
        return str(link["session_id"]), paid.payment_link_paid()

    async def post(self, webhook: Any) -> None:
        status, outcome = await self.poster.post(webhook)
        if (status, outcome) != (200, "new_session"):
            raise RuntimeError(f"webhook answered {status} {outcome}")

    async def stop(self, bay: str, since: int) -> None:
        await self.ha.action("qr_charging", "stop_session", {"bay": bay, "refund": "none"})
        await blocking(self.agent.wait_pin, self.pins[bay], 0, since)


async def _pay_samples(
    rig: _Rig,
    standin: Any,
    config: PayConfig,
    *,
    sub: Subscriber,
    floor: MqttFloor,
    floors_dir: tuple[Path, Path],
) -> dict[str, Any]:
    series: dict[str, list[float]] = {
        k: [] for k in ("command", "power", "answered", "http", "mqtt", "commit", "state_save")
    }
    commit = commit_floor(floors_dir[0])
    state_file = StateFile(floors_dir[1] / "bench-floor-state.json")
    ha = rig.ha
    assert ha.session is not None
    for index in range(config.warmup + config.samples):
        bay = BAYS[index % len(BAYS)]
        session_id, webhook = await rig.pay(standin, bay, "p30")
        await asyncio.sleep(config.gap_s)
        start = time.monotonic()
        async with ha.session.get("/api/", headers=ha.headers) as response:
            await response.read()
        http_spent = time.monotonic() - start
        mqtt_spent = await blocking(floor.measure)
        commit_spent = await blocking(commit)
        start = time.monotonic()
        await blocking(state_file.save, SavedState())
        save_spent = time.monotonic() - start
        # The floors touch neither Home Assistant's MQTT socket nor the agent's: still quiet.
        topic = f"{PREFIX}/{NODE}/{bay}/set"
        mark, pin_mark = sub.mark(), rig.agent.mark()
        start = time.monotonic()
        await rig.post(webhook)
        done = time.monotonic()
        message = await blocking(
            sub.wait,
            lambda m, t=topic, s=session_id: m.topic == t and (m.json() or {}).get("session") == s,
            mark,
        )
        powered = await blocking(rig.agent.wait_pin, rig.pins[bay], 1, pin_mark)
        if index >= config.warmup:
            for key, value in (
                ("command", message.at - start),
                ("power", powered - start),
                ("answered", done - start),
                ("http", http_spent),
                ("mqtt", mqtt_spent),
                ("commit", commit_spent),
                ("state_save", save_spent),
            ):
                series[key].append(value)
        await rig.ha.wait_bay_status(bay, "charging")
        await rig.stop(bay, pin_mark)
    floors = summary(series["http"])["p50"] + summary(series["mqtt"])["p50"]
    command = summary(series["command"])
    return {
        "pay_to_command_ms": command,
        "pay_to_power_ms": summary(series["power"]),
        "webhook_answered_ms": summary(series["answered"]),
        "floor_get_api_ms": summary(series["http"]),
        "floor_mqtt_ms": summary(series["mqtt"]),
        "floor_commit_ms": summary(series["commit"]),
        "floor_agent_state_save_ms": summary(series["state_save"]),
        "floor_sum_p50_ms": round(floors, 3),
        "ratio_p50_to_floors": round(command["p50"] / floors, 2),
    }


async def _timed_session(  # noqa: PLR0917 - one bay's session
    rig: _Rig, standin: Any, bay: str, plan: str, seconds: float, gap_s: float
) -> dict[str, float]:
    """Pay, then read the relay's on-time from the pin's history; error = on-time - paid."""
    pin = rig.pins[bay]
    mark = rig.agent.mark()
    _, webhook = await rig.pay(standin, bay, plan)
    await asyncio.sleep(gap_s)
    await rig.post(webhook)
    await blocking(rig.agent.wait_pin, pin, 1, mark, 10)
    await blocking(rig.agent.wait_pin, pin, 0, mark, seconds + 10)
    [(on, off)] = rig.agent.periods(pin, mark)
    await rig.ha.wait_bay_status(bay, "idle")
    return {"paid_s": seconds, "on_s": off - on, "error_ms": (off - on - seconds) * 1000}


async def _timing(rig: _Rig, standin: Any, config: PayConfig) -> dict[str, Any]:
    """Long sessions on the last bays while short ones follow each other on the first four."""
    short_s = config.short_minutes * 60
    long_bays = BAYS[len(BAYS) - len(config.long_plans) :]
    finished = asyncio.Event()
    shorts: list[dict[str, float]] = []

    async def short_loop(bay: str) -> None:
        while True:
            shorts.append(await _timed_session(rig, standin, bay, "pshort", short_s, config.gap_s))
            if finished.is_set():
                return

    async def longs() -> list[dict[str, float]]:
        try:
            return list(
                await asyncio.gather(
                    *(
                        _timed_session(rig, standin, bay, plan, minutes * 60, config.gap_s)
                        for bay, (plan, minutes) in zip(long_bays, config.long_plans, strict=True)
                    )
                )
            )
        finally:
            finished.set()

    stats = rig.agent.stats
    cpu0, wall0 = stats.cpu_s(), time.monotonic()
    long_results, *_ = await asyncio.gather(longs(), *(short_loop(bay) for bay in BAYS[:4]))
    cpu1, wall1 = stats.cpu_s(), time.monotonic()
    every = [abs(s["error_ms"]) for s in shorts] + [abs(r["error_ms"]) for r in long_results]
    return {
        "short": {
            "paid_s": short_s,
            "n": len(shorts),
            "abs_error_ms": summary([abs(s["error_ms"]) / 1000 for s in shorts]),
            "mean_error_ms": round(sum(s["error_ms"] for s in shorts) / len(shorts), 3),
        },
        "long": [
            {"paid_s": r["paid_s"], "error_ms": round(r["error_ms"], 3)} for r in long_results
        ],
        "samples": len(every),
        "abs_error_p99_ms": round(percentile(every, 99), 3),
        "abs_error_max_ms": round(max(every), 3),
        "footprint_sessions": {
            "window_s": round(wall1 - wall0, 1),
            "cpu_percent": round((cpu1 - cpu0) / (wall1 - wall0) * 100, 3),
            **stats.memory(),
        },
    }


async def _restart(rig: _Rig, standin: Any, config: PayConfig) -> dict[str, Any]:
    """SIGKILL the agent a third into a session, start it again at once, add up the on-time."""
    bay = BAYS[0]
    pin = rig.pins[bay]
    seconds = config.restart_minutes * 60
    mark = rig.agent.mark()
    _, webhook = await rig.pay(standin, bay, "prestart")
    await asyncio.sleep(config.gap_s)
    await rig.post(webhook)
    on1 = await blocking(rig.agent.wait_pin, pin, 1, mark, 10)
    await rig.ha.wait_bay_status(bay, "charging")
    await asyncio.sleep(max(on1 + seconds / 3 - time.monotonic(), 0))
    killed = rig.agent.kill()
    restart_mark = rig.agent.mark()
    rig.agent.start()
    on2 = await blocking(rig.agent.wait_pin, pin, 1, restart_mark, 30)
    off2 = await blocking(rig.agent.wait_pin, pin, 0, restart_mark, seconds + 30)
    served = (killed - on1) + (off2 - on2)
    outage = on2 - killed
    return {
        "paid_s": seconds,
        "served_s": round(served, 3),
        "outage_s": round(outage, 3),
        "lost_s": round(seconds - served, 3),
        "deadline_error_ms": round((off2 - (on1 + seconds)) * 1000, 3),
    }


async def run(workdir: Path, config: PayConfig, tuning: Tuning = STOCK) -> dict[str, Any]:
    """Everything above on one Home Assistant; the figures."""
    async with contextlib.AsyncExitStack() as stack:
        broker, standin = await start_broker_and_standin(stack, workdir, tuning)
        stored = stored_dir(stack, workdir, tuning)
        agent_dir = stored / "agent"
        agent_dir.mkdir(parents=True, exist_ok=True)
        pins = write_agent_config(
            workdir / "agent.yaml", broker.port, NODE, BAYS, agent_dir / "state.json"
        )
        sub = Subscriber(
            broker.port,
            [f"{PREFIX}/{NODE}/+/set", f"{PREFIX}/{NODE}/availability"],
            nodelay=tuning.nodelay,
        )
        stack.callback(sub.close)
        floor = MqttFloor(broker.port, nodelay=tuning.nodelay)
        stack.callback(floor.close)
        agent = AgentProcess(
            workdir / "agent.yaml", workdir / "agent.log", nodelay=tuning.nodelay
        ).start()
        stack.callback(agent.stop)
        await blocking(
            sub.wait, lambda m: m.topic.endswith("/availability") and m.payload == b"online"
        )
        # The agent is idle from here; its idle window runs while Home Assistant starts.
        idle_stats = agent.stats
        idle_cpu0, idle_wall0 = idle_stats.cpu_s(), time.monotonic()
        plans = [
            PlanSpec("p30", 30, 2000),
            PlanSpec("pshort", config.short_minutes, 500),
            PlanSpec("prestart", config.restart_minutes, 1000),
            *(
                PlanSpec(code, minutes, 1000 + int(minutes * 10))
                for code, minutes in config.long_plans
                if code != "p30"
            ),
        ]
        account = Account(
            key_id=standin.key_id,
            key_secret=standin.key_secret,
            api_base_url=standin.base_url,
            plans=plans,
            bays=[BaySpec(bay, NODE, [p.code for p in plans]) for bay in BAYS],
        )
        ha = HomeAssistantProcess(stored / "ha", chains=False)
        ha.write_config(broker.port, account)
        if tuning.ram:
            # Keep Home Assistant's folder (its log) with the others once it has stopped.
            stack.callback(
                lambda: shutil.copytree(ha.dir, workdir / "ha", dirs_exist_ok=True, symlinks=True)
            )
        stack.push_async_callback(ha.stop)
        ha_ready_s = await ha.start()
        await ha.wait_bays(len(BAYS))
        if tuning.nodelay:
            await ha.mqtt_nodelay()
        result: dict[str, Any] = {"tuning": tuning.label, "ha_ready_s": round(ha_ready_s, 2)}
        if config.footprint:
            await asyncio.sleep(max(idle_wall0 + config.idle_window_s - time.monotonic(), 0))
            idle_cpu1, idle_wall1 = idle_stats.cpu_s(), time.monotonic()
            idle = {
                "window_s": round(idle_wall1 - idle_wall0, 1),
                "cpu_percent": round((idle_cpu1 - idle_cpu0) / (idle_wall1 - idle_wall0) * 100, 3),
                **idle_stats.memory(),
            }
        rig = _Rig(ha, agent, pins)
        stack.push_async_callback(rig.poster.close)
        await ha.blocks(reset=True)
        async with py_spy(ha.pid, workdir / "pyspy-pay.raw"):
            result.update(
                await _pay_samples(
                    rig, standin, config, sub=sub, floor=floor, floors_dir=(ha.storage, agent_dir)
                )
            )
        result["blocks"] = await ha.blocks(reset=True)
        if config.timing:
            result["timing"] = await _timing(rig, standin, config)
            sessions = result["timing"].pop("footprint_sessions")
            if config.footprint:
                result["agent_footprint"] = {"idle": idle, "sessions": sessions}
        if config.restart:
            result["timing"]["restart"] = await _restart(rig, standin, config)
        result["agent"] = agent.info()
        log = (workdir / "agent.log").read_text(errors="replace")
        result["agent_log_errors"] = len(re.findall(r" (ERROR|CRITICAL) ", log))
        return result
