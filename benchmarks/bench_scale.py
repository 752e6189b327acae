"""One Home Assistant with 200 bays on 20 agents, then a burst of webhooks at it.

Scale: the agents are one paho client speaking for 20 nodes of 10 bays each (availability,
config and states retained, ``on`` answered as the real agent answers). The qr_charging entry
is written disabled; Home Assistant starts without it, and the probe then enables it:

- entry setup: the seconds ``async_set_disabled_by`` (which sets the entry up) took, and until
  every bay was online;
- memory: Home Assistant's resident memory with the entry set up and every bay online, less
  before it was enabled (a full garbage collection before each reading);
- a state report reaching its entity: each bay is paid for once; the time from the agent's
  ``ON`` report (published) to the bay's status sensor turning ``charging`` (the probe's
  timestamp inside Home Assistant, same monotonic clock).

Burst, as after Razorpay re-enables a disabled webhook: 5,000 signed deliveries from 16
concurrent clients. Each payment (10-minute plan, made at the stand-in before the burst, its
link in the ledger) arrives twice, as ``payment.captured`` and ``payment_link.paid``, the two
payment events the setup guide subscribes; a quarter of the deliveries are repeats of one
already in the list (same event id and body), all shuffled. Every payment tops up its bay's
running session. Checked afterwards, from the responses, the agents' commands and the
ledger's database: every delivery answered 200, each payment counted once (zero double
starts: no payment in two sessions, no second session started on a bay, each session's time
and money the sum of its payments), none lost (every payment in the ledger).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.ha import (
    WEBHOOK_ID,
    WEBHOOK_SECRET,
    Account,
    BaySpec,
    HomeAssistantProcess,
    PlanSpec,
)
from benchmarks.history import prefill
from benchmarks.mqtt_clients import ScriptedAgents
from benchmarks.rig import (
    STOCK,
    Tuning,
    WebhookPoster,
    add_link,
    py_spy,
    start_broker_and_standin,
    stored_dir,
)
from benchmarks.stats import ProcStats, summary
from devtools.razorpay_standin.fixtures import Webhook

P30_S, P30_PAISE = 1800, 2000
P10_S, P10_PAISE = 600, 1000


@dataclass
class ScaleConfig:
    """How big."""

    nodes: int = 20
    bays_per_node: int = 10
    deliveries: int = 5000
    clients: int = 16
    burst: bool = True


DEFAULT = ScaleConfig()
SMOKE = ScaleConfig(nodes=2, bays_per_node=3, deliveries=40, clients=4)
LONG = ScaleConfig()
# The diagnostic variant: the state reports only.
VARIANT = ScaleConfig(burst=False)
SMOKE_VARIANT = ScaleConfig(nodes=2, bays_per_node=3, burst=False)


async def _wait(predicate: Any, within: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(step)


async def _rss_after_gc(ha: HomeAssistantProcess) -> float:
    await ha.collect_garbage()
    await asyncio.sleep(0.5)
    return ProcStats(ha.pid).rss_mb()


async def _state_reports(
    ha: HomeAssistantProcess,
    agents: ScriptedAgents,
    standin: Any,
    links: dict[str, Any],
    bay_nodes: dict[str, str],
) -> dict[str, Any]:
    """Pay once per bay; time each ON report until its status sensor shows ``charging``."""
    bays = (await ha.bays())["bays"]
    entity_bay = {info["status_entity"]: bay for bay, info in bays.items()}
    _, since = await ha.changes(watch="_status")
    poster = WebhookPoster(ha.base)
    latencies: list[float] = []
    try:
        for bay, link in links.items():
            webhook = standin.pay_link(link.link_id).payment_link_paid()
            status, outcome = await poster.post(webhook)
            if (status, outcome) != (200, "new_session"):
                raise RuntimeError(f"{bay}: webhook answered {status} {outcome}")
            found: list[Any] = []
            deadline = time.monotonic() + 20
            while not found:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{bay} never showed charging")
                await asyncio.sleep(0.01)
                changes, total = await ha.changes(since)
                found = [c for c in changes if entity_bay.get(c[1]) == bay and c[2] == "charging"]
            since = total
            node = bay_nodes[bay]
            [reported] = [
                at
                for at, n, b, state in list(agents.reported)
                if (n, b) == (node, bay) and state["state"] == "ON" and state["reason"] == "command"
            ]
            latencies.append(found[0][0] - reported)
    finally:
        await poster.close()
    return {"report_to_entity_ms": summary(latencies)}


def _deliveries(
    standin: Any, links: list[Any], count: int, rng: random.Random
) -> tuple[list[Webhook], set[str]]:
    """Two events per payment and a quarter repeats, shuffled; and the payment ids."""
    unique: list[Webhook] = []
    payments: set[str] = set()
    for link in links:
        paid = standin.pay_link(link.link_id)
        payments.add(paid.payment_id)
        unique += [paid.payment_captured(), paid.payment_link_paid()]
    repeats = [rng.choice(unique) for _ in range(count - len(unique))]
    batch = unique + repeats
    rng.shuffle(batch)
    return batch, payments


Request = tuple[str, str, bytes | None, dict[str, str]]


async def _fire(
    base: str, requests: list[Request], clients: int
) -> tuple[float, list[tuple[int, str, float]]]:
    """Send the requests from ``clients`` concurrent connections; the seconds and the answers."""
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    answers: list[tuple[int, str, float]] = []

    async def client() -> None:
        async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=1)) as session:
            while True:
                try:
                    method, path, body, headers = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                start = time.monotonic()
                try:
                    async with session.request(
                        method,
                        path,
                        data=body,
                        headers=headers,
                        timeout=aiohttp.ClientTimeout(total=60),
                    ) as response:
                        text = await response.text()
                        outcome = text[:80]
                        if response.status == 200 and text.startswith("{"):
                            outcome = str(json.loads(text).get("outcome"))
                        answers.append((response.status, outcome, time.monotonic() - start))
                except (aiohttp.ClientError, TimeoutError) as err:
                    answers.append((0, repr(err), time.monotonic() - start))

    start = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.monotonic() - start, answers


async def _burst(ha: HomeAssistantProcess, batch: list[Webhook], clients: int) -> dict[str, Any]:
    """The deliveries, after the floor: as many authenticated ``GET /api/`` the same way."""
    floor_s, _ = await _fire(ha.base, [("GET", "/api/", None, ha.headers)] * len(batch), clients)
    path = f"/api/webhook/{WEBHOOK_ID}"
    wall, answers = await _fire(
        ha.base,
        [("POST", path, w.body, w.headers(WEBHOOK_SECRET)) for w in batch],
        clients,
    )
    return {
        "deliveries": len(batch),
        "clients": clients,
        "seconds": round(wall, 3),
        "events_per_s": round(len(batch) / wall, 1),
        "floor_get_api_per_s": round(len(batch) / floor_s, 1),
        "latency_ms": summary(a[2] for a in answers),
        "statuses": dict(collections.Counter(a[0] for a in answers)),
        "outcomes": dict(collections.Counter(a[1] for a in answers)),
    }


def _check_ledger(
    db: Path, bays: list[str], scale_payments: dict[str, str], burst_payments: set[str]
) -> dict[str, Any]:
    """Each payment once, in its bay's one running session; nothing refunded; nothing lost."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        payments = dict(conn.execute("SELECT payment_id, state FROM payments").fetchall())
        sessions = conn.execute(
            "SELECT session_id, bay_id, state, seconds, paid_paise, payment_ids FROM sessions"
        ).fetchall()
        refunds = conn.execute("SELECT COUNT(*) FROM refunds").fetchone()[0]
    finally:
        conn.close()
    running = [s for s in sessions if s[2] in ("paid", "starting", "active")]
    counted: collections.Counter[str] = collections.Counter()
    bad_totals = 0
    for _, _, _, seconds, paise, stored_ids in running:
        ids = json.loads(stored_ids)
        counted.update(ids)
        burst = sum(1 for p in ids if p in burst_payments)
        scale = len(ids) - burst
        if (seconds, paise) != (
            scale * P30_S + burst * P10_S,
            scale * P30_PAISE + burst * P10_PAISE,
        ):
            bad_totals += 1
    every = set(scale_payments.values()) | burst_payments
    per_bay = collections.Counter(s[1] for s in running)
    return {
        "payments_expected": len(every),
        "payments_recorded": sum(1 for p in every if payments.get(p) == "session"),
        "payments_lost": sum(1 for p in every if p not in counted),
        "payments_counted_twice": sum(1 for n in counted.values() if n > 1),
        "bays_with_one_running_session": sum(1 for b in bays if per_bay[b] == 1),
        "sessions_with_wrong_totals": bad_totals,
        "refunds": refunds,
    }


def _double_starts(agents: ScriptedAgents) -> int:
    """``on`` commands that would have started a second session on a busy bay."""
    first: dict[tuple[str, str], str] = {}
    doubles = 0
    for command in list(agents.commands):
        data = command.data
        if isinstance(data, dict) and data.get("action") == "on":
            key = (command.node, command.bay)
            session = first.setdefault(key, data["session"])
            doubles += session != data["session"]
    return doubles


async def run(  # noqa: PLR0915 - one scenario, step by step
    workdir: Path, config: ScaleConfig, tuning: Tuning = STOCK
) -> dict[str, Any]:
    """Scale, then the burst; the figures."""
    rng = random.Random(20_240_601)
    nodes = {
        f"node-{n:02d}": [f"bay-{n:02d}{b:02d}" for b in range(1, config.bays_per_node + 1)]
        for n in range(1, config.nodes + 1)
    }
    bay_nodes = {bay: node for node, bays in nodes.items() for bay in bays}
    bays = list(bay_nodes)
    async with contextlib.AsyncExitStack() as stack:
        broker, standin = await start_broker_and_standin(stack, workdir, tuning)
        agents = ScriptedAgents(broker.port, nodes, nodelay=tuning.nodelay)
        stack.callback(agents.close)
        unique = config.deliveries * 3 // 4 if config.burst else 0
        scale_links = {
            bay: add_link(
                standin, index=i, bay_id=bay, plan_code="p30", amount=P30_PAISE, seconds=P30_S
            )
            for i, bay in enumerate(bays)
        }
        burst_links = [
            add_link(
                standin,
                index=len(bays) + i,
                bay_id=bays[i % len(bays)],
                plan_code="p10",
                amount=P10_PAISE,
                seconds=P10_S,
            )
            for i in range(unique // 2)
        ]
        account = Account(
            key_id=standin.key_id,
            key_secret=standin.key_secret,
            api_base_url=standin.base_url,
            plans=[PlanSpec("p30", 30, P30_PAISE), PlanSpec("p10", 10, P10_PAISE)],
            bays=[BaySpec(bay, node, ["p30", "p10"]) for bay, node in bay_nodes.items()],
            disabled=True,
        )
        ha = HomeAssistantProcess(stored_dir(stack, workdir, tuning) / "ha", chains=True)
        ha.write_config(broker.port, account)
        await prefill(ha.db_path(account), 0, bays, extra=[*scale_links.values(), *burst_links])
        stack.push_async_callback(ha.stop)
        await ha.start()
        await asyncio.sleep(2)
        rss_before = await _rss_after_gc(ha)
        await ha.blocks(reset=True)
        link_fetches = len(scale_links) + len(burst_links)

        enabled_at = time.monotonic()
        enabled = await ha.enable(account.entry_id)
        await ha.wait_bays(len(bays), within=120)
        all_online_s = time.monotonic() - enabled_at
        if tuning.nodelay:
            await ha.mqtt_nodelay()

        async def reconciled() -> bool:
            fetched = [
                c
                for c in standin.calls
                if c.method == "GET" and c.path.startswith("/v1/payment_links/")
            ]
            return len(fetched) >= link_fetches

        await _wait(reconciled, 120, "the first reconciliation did not finish")
        setup_blocks = await ha.blocks(reset=True)
        rss_after = await _rss_after_gc(ha)
        await ha.blocks(reset=True)  # not the collection just asked for
        result: dict[str, Any] = {
            "tuning": tuning.label,
            "bays": len(bays),
            "agents": len(nodes),
            "entry_setup_s": round(enabled["seconds"], 3),
            "entry_state": enabled["state"],
            "all_bays_online_s": round(all_online_s, 3),
            "rss_before_mb": round(rss_before, 1),
            "rss_after_mb": round(rss_after, 1),
            "rss_added_mb": round(rss_after - rss_before, 1),
            "open_links": link_fetches,
            "setup_blocks": {
                k: setup_blocks[k] for k in ("max_ms", "max_own_ms", "max_ours_ms", "over_5ms")
            }
            | {"top": setup_blocks["top"][:3]},
        }
        result.update(await _state_reports(ha, agents, standin, scale_links, bay_nodes))
        result["report_blocks"] = await ha.blocks(reset=True)
        if not config.burst:
            return result

        batch, burst_payments = _deliveries(standin, burst_links, config.deliveries, rng)
        ons_before = sum(
            1 for c in agents.commands if isinstance(c.data, dict) and c.data.get("action") == "on"
        )
        async with py_spy(ha.pid, workdir / "pyspy-burst.raw"):
            burst = await _burst(ha, batch, config.clients)

        async def settled() -> bool:
            ons = sum(
                1
                for c in agents.commands
                if isinstance(c.data, dict) and c.data.get("action") == "on"
            )
            return ons - ons_before >= len(burst_payments)

        settle_start = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await _wait(settled, 60, "not every payment reached its bay")
        burst["settled_after_s"] = round(time.monotonic() - settle_start, 3)
        burst["blocks"] = await ha.blocks(reset=True)
        await asyncio.sleep(1)
        await ha.stop()
        scale_payments = {
            bay: standin.links[link.link_id]["payments"][0]["payment_id"]
            for bay, link in scale_links.items()
        }
        burst["ledger"] = _check_ledger(ha.db_path(account), bays, scale_payments, burst_payments)
        burst["double_starts"] = _double_starts(agents)
        ledger = burst["ledger"]
        burst["lost"] = ledger["payments_lost"] + (
            ledger["payments_expected"] - ledger["payments_recorded"]
        )
        burst["counted_twice"] = ledger["payments_counted_twice"]
        burst["non_200"] = sum(n for status, n in burst["statuses"].items() if status != 200)
        result["burst"] = burst
        return result
