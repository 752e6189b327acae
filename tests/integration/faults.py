"""A world to break on purpose, and the books kept against what its parts recorded.

The parts are the real ones: Home Assistant (the test plugin) with the integration and HA's MQTT
integration, a real Mosquitto, the real relay agent in-process on mock pins that remember every
change (``tests/relay_harness.py``), and the Razorpay stand-in. A schedule (a list of steps made
from a seed) pays, delivers webhooks in any order and any number of times, stops, refunds, and
breaks things in between: the config entry unloaded and set up again, the agent crashed or
stopped, the broker stopped, the ledger's storage failing, Razorpay's API failing or slow.

Then everything is mended and left to settle, and :func:`reconcile` compares what each part
recorded on its own: the stand-in's payments, refunds and the requests it received, the pins'
histories (with the session the agent switched each one on for), and the ledger's database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.storage import STORAGE_DIR
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.ledger import Changes
from custom_components.qr_charging.payment_rules import MIN_REFUND_PAISE
from devtools.razorpay_standin.fixtures import Webhook
from tests.mosquitto import Broker
from tests.relay_harness import CrashableAgent, OnPeriod, ProcessAgent

from .helpers import create_link

if TYPE_CHECKING:
    from .helpers import PostWebhook
    from .razorpay_standin import PaidPayment, RazorpayStandin

NODE = "kiosk-1"
PINS = (17, 27, 22)
# Plans every bay offers: code -> (minutes, paise). A rupee for a minute gives refunds under ₹1.
PLANS = {"p1": (1, 100), "p60": (1, 6000), "p2m": (2, 4500)}
ACK_S = 1.0
# Reports and commands cross a real broker: a relay may switch this much after HA decided.
SWITCH_SLACK_S = 0.1
# After the broker, the agent or HA's entry is back, this long until HA and the agent meet again
# (reconnection, HA's subscribe cooldown, the retained state, HA's answer).
RECONNECT_GRACE_S = 3.0
# Money is checked to one second's worth of each payment, plus a paisa per refund of rounding.
ROUNDING_PAISE = 1


@dataclass
class Delivery:
    """One webhook delivery Razorpay owes us until it is answered 2xx."""

    payment_id: str
    webhook: Webhook
    attempts: int = 0


@dataclass
class Purchase:
    """A customer's payment: what they paid for and where."""

    paid: PaidPayment
    bay: str
    plan: str

    @property
    def payment_id(self) -> str:
        return self.paid.payment_id

    @property
    def seconds(self) -> int:
        return PLANS[self.plan][0] * 60

    @property
    def amount(self) -> int:
        return int(self.paid.payment["amount"])


@dataclass
class World:
    """Everything one schedule runs against, and what it has done to it."""

    hass: HomeAssistant
    standin: RazorpayStandin
    broker: Broker
    agent: CrashableAgent | ProcessAgent
    entry: MockConfigEntry
    post: PostWebhook
    bays: list[str]
    rng: random.Random
    storage_failing: bool = False
    ha_up: bool = True
    broker_up: bool = True
    deliveries: list[Delivery] = field(default_factory=list)
    inflight: set[asyncio.Task[None]] = field(default_factory=set)
    purchases: list[Purchase] = field(default_factory=list)
    # Event ids of the deliveries answered 200: each must be in the ledger's events.
    answered: list[str] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    # (start, end) wall-clock times when HA could not reach the relays.
    outages: dict[str, list[list[float | None]]] = field(
        default_factory=lambda: {"broker": [], "ha": []}
    )

    # -- the parts -------------------------------------------------------------------------------

    @property
    def hub(self) -> Any:
        return self.entry.runtime_data

    def runner(self, bay: str) -> Any:
        return self.hub.bays.runners[bay]

    async def executor(self, job: Callable[[], Any]) -> Any:
        return await self.hass.async_add_executor_job(job)

    # -- customers and Razorpay ------------------------------------------------------------------

    async def pay(self, bay: str, plan: str) -> None:
        """A customer scans the bay's code and pays; Razorpay then owes us its webhooks."""
        if not self.ha_up:
            self.counts["pay_while_ha_down"] += 1
            return
        try:
            link = await create_link(self.hass, bay, plan)
        except HomeAssistantError:
            self.counts["link_not_made"] += 1
            return
        paid = self.standin.pay_link(link["id"])
        self.purchases.append(Purchase(paid, bay, plan))
        self.counts["payments"] += 1
        makers = [paid.payment_link_paid, paid.payment_captured, paid.order_paid]
        # One to four deliveries, any of the three events, repeated, in any order.
        events = [self.rng.choice(makers)() for _ in range(self.rng.randint(1, 4))]
        if len(events) > 1:
            self.counts["extra_deliveries"] += len(events) - 1
        first, rest = events[0], events[1:]
        if self.rng.random() < 0.7:
            self._post(Delivery(paid.payment_id, first))
        else:
            rest.append(first)
        for webhook in rest:
            self.deliveries.insert(
                self.rng.randint(0, len(self.deliveries)), Delivery(paid.payment_id, webhook)
            )

    def _post(self, delivery: Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(delivery))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    async def _deliver(self, delivery: Delivery) -> None:
        delivery.attempts += 1
        response = await self.post(delivery.webhook)
        self.answers[str(response.status)] += 1
        if response.status == 200:
            self.answered.append(delivery.webhook.event_id)
        else:
            # Razorpay delivers it again later.
            self.deliveries.append(delivery)

    async def deliver(self, count: int) -> None:
        """Razorpay delivers (or re-delivers) what it owes, next first."""
        if not self.ha_up:
            return  # HA is down: Razorpay's delivery fails and is tried again later
        for _ in range(min(count, len(self.deliveries))):
            self._post(self.deliveries.pop(0))

    def refunds_settle(self) -> None:
        """Razorpay settles the refunds still pending and owes us ``refund.processed`` for each."""
        for refund_id, refund in list(self.standin.refunds.items()):
            if refund["status"] == "pending":
                webhook = self.standin.settle_refund(refund_id)
                self.deliveries.insert(
                    self.rng.randint(0, len(self.deliveries)),
                    Delivery(refund["payment_id"], webhook),
                )
                self.counts["refund_webhooks"] += 1

    def api_fault(self, target: str, kind: str) -> None:
        """Razorpay's API answers the next link creation or refund with an error, or late."""
        path = "/v1/payment_links" if target == "link" else "/v1/payments/"
        if kind == "timeout":
            # Longer than the client waits (set short for these tests): carried out, unanswered.
            self.standin.delay_next(path, 1.0, method="POST")
        else:
            self.standin.fail_next(path, int(kind), method="POST")
        self.counts[f"api_{target}_{kind}"] += 1

    # -- the owner -------------------------------------------------------------------------------

    async def _action(self, service: str, data: dict[str, Any]) -> dict[str, Any] | None:
        if not self.ha_up:
            return None
        try:
            response = await self.hass.services.async_call(
                DOMAIN, service, data, blocking=True, return_response=True
            )
        except HomeAssistantError as err:
            self.counts[f"{service}_refused:{err.translation_key}"] += 1
            return None
        self.counts[service] += 1
        return response

    async def owner_stop(self, bay: str) -> None:
        await self._action("stop_session", {"bay": bay, "refund": "prorata"})

    async def owner_start(self, bay: str) -> None:
        await self._action("start_session", {"bay": bay, "minutes": 1})

    async def owner_refund(self, index: int, rupees: int) -> None:
        if not self.purchases:
            return
        purchase = self.purchases[index % len(self.purchases)]
        await self._action("refund", {"payment_id": purchase.payment_id, "amount": rupees})

    async def reconcile(self) -> None:
        if self.ha_up:
            await self.hub.reconciler.async_run()

    # -- breaking and mending --------------------------------------------------------------------

    async def ha_down(self) -> None:
        if not self.ha_up:
            return
        self.ha_up = False
        self.outages["ha"].append([time.time(), None])
        self.counts["fault_ha_restart"] += 1
        assert await self.hass.config_entries.async_unload(self.entry.entry_id)

    async def ha_up_again(self) -> None:
        if self.ha_up:
            return
        await self.hass.config_entries.async_setup(self.entry.entry_id)
        self.ha_up = True
        self.outages["ha"][-1][1] = time.time()

    async def agent_crash(self) -> None:
        if self.agent.up:
            self.counts[
                "fault_agent_killed"
                if isinstance(self.agent, CrashableAgent)
                else "fault_agent_sigkill"
            ] += 1
            await self.executor(self.agent.crash)

    async def agent_stop(self) -> None:
        if self.agent.up:
            self.counts["fault_agent_stopped"] += 1
            await self.executor(self.agent.stop)

    async def agent_up(self) -> None:
        if not self.agent.up:
            await self.executor(self.agent.start)

    async def broker_down(self) -> None:
        if self.broker_up:
            self.counts["fault_broker_stopped"] += 1
            self.broker_up = False
            self.outages["broker"].append([time.time(), None])
            await self.executor(self.broker.stop)

    async def broker_up_again(self) -> None:
        if not self.broker_up:
            await self.executor(self.broker.start)
            self.broker_up = True
            self.outages["broker"][-1][1] = time.time()

    def storage(self, failing: bool) -> None:
        if failing and not self.storage_failing:
            self.counts["fault_storage"] += 1
        self.storage_failing = failing

    def write_or_fail(self, real: Callable[[Any, Changes], None]) -> Callable[[Any, Changes], None]:
        """``LedgerStore._write``, failing as a full disk would while the storage is broken."""

        def write(store: Any, changes: Changes) -> None:
            if self.storage_failing:
                raise sqlite3.OperationalError("database or disk is full")
            real(store, changes)

        return write

    # -- settling --------------------------------------------------------------------------------

    async def until(self, check: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not check():
            if time.monotonic() > deadline:
                running = [
                    (s.bay_id, s.session_id, s.state.value, s.created_at)
                    for s in self.hub.books.ledger.sessions.values()
                ]
                raise AssertionError(f"not settled: {what}; sessions {running}")
            await asyncio.sleep(0.05)

    async def settle(self) -> None:
        """Mend everything, let Razorpay deliver what it owes, stop what runs, send refunds."""
        self.storage(failing=False)
        self.standin._faults.clear()  # Razorpay answers again
        await self.broker_up_again()
        await self.agent_up()
        await self.ha_up_again()
        if self.entry.state is not ConfigEntryState.LOADED:
            # Set up while its storage failed: set up again, as HA's retry would.
            await self.hass.config_entries.async_reload(self.entry.entry_id)
        assert self.entry.state is ConfigEntryState.LOADED
        # Razorpay keeps delivering each event until it is answered 2xx.
        for _ in range(20):
            self.refunds_settle()
            await self.deliver(len(self.deliveries))
            if self.inflight:
                await asyncio.wait(set(self.inflight))
            if not self.deliveries and not self.inflight:
                break
        assert not self.deliveries, "Razorpay could not deliver its webhooks"
        await self.until(
            lambda: all(self.runner(bay).driver.online for bay in self.bays), 15, "bays online"
        )
        # Sessions still starting get their acknowledgement or fail.
        await self.until(self._nothing_starting, 15, "sessions starting")
        # The owner stops whatever still runs.
        for bay in self.bays:
            if self.runner(bay).session is not None:
                await self._action("stop_session", {"bay": bay, "refund": "prorata"})
        await self.until(lambda: all(r.session is None for r in self._runners()), 10, "stops")
        # Reconciliation sends what Razorpay did not take yet (a send still waiting for its
        # answer is left to itself, then sent again at the next pass).
        deadline = time.monotonic() + 15
        while self._unsent() and time.monotonic() < deadline:
            await self.hub.reconciler.async_run()
            await asyncio.sleep(0.1)
        # Refunds sent last are settled too.
        self.refunds_settle()
        await self.deliver(len(self.deliveries))
        if self.inflight:
            await asyncio.wait(set(self.inflight))
        assert not self.deliveries, "Razorpay could not deliver its refund webhooks"
        await self.until(
            lambda: not any(self.agent.powered(bay) for bay in self.bays), 10, "relays off"
        )
        await self.hass.async_block_till_done()

    def _runners(self) -> list[Any]:
        return [self.runner(bay) for bay in self.bays]

    def _nothing_starting(self) -> bool:
        return all(
            s.state.value == "active"
            for r in self._runners()
            for s in self.hub.books.ledger.running_sessions(r.bay.bay_id)
        )

    def _unsent(self) -> list[Any]:
        return [r for r in self.hub.books.ledger.refunds.values() if r.state.value == "requested"]

    # -- what the ledger recorded ----------------------------------------------------------------

    async def ledger_rows(self) -> dict[str, list[dict[str, Any]]]:
        path = Path(self.hass.config.path(STORAGE_DIR, f"{DOMAIN}.{self.entry.entry_id}.db"))

        def read() -> dict[str, list[dict[str, Any]]]:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                conn.row_factory = sqlite3.Row
                return {
                    table: [dict(row) for row in conn.execute(f"SELECT * FROM {table}")]
                    for table in ("payments", "sessions", "refunds", "bay_totals", "events")
                }

        rows: dict[str, list[dict[str, Any]]] = await self.executor(read)
        return rows


async def run_steps(world: World, steps: list[tuple[Any, ...]]) -> None:
    """Carry out a schedule's steps, each followed by a short pause of its own."""
    actions: dict[str, Callable[..., Coroutine[Any, Any, None] | None]] = {
        "pay": world.pay,
        "deliver": world.deliver,
        "wait": asyncio.sleep,
        "owner_stop": world.owner_stop,
        "owner_start": world.owner_start,
        "owner_refund": world.owner_refund,
        "reconcile": world.reconcile,
        "ha_down": world.ha_down,
        "ha_up": world.ha_up_again,
        "agent_crash": world.agent_crash,
        "agent_stop": world.agent_stop,
        "agent_up": world.agent_up,
        "broker_down": world.broker_down,
        "broker_up": world.broker_up_again,
        "storage_fail": lambda: world.storage(failing=True),
        "storage_ok": lambda: world.storage(failing=False),
        "api_fault": world.api_fault,
        "refunds_settle": world.refunds_settle,
        "refund_status": lambda status: setattr(world.standin, "refund_status", status),
    }
    for name, *args in steps:
        result = actions[name](*args)
        if result is not None:
            await result
        await asyncio.sleep(world.rng.choice((0, 0.01, 0.05, 0.1)))


# -- reconciliation --------------------------------------------------------------------------------


@dataclass
class Books:
    """What reconciliation found: discrepancies (with their details) and a few measures."""

    discrepancies: list[str] = field(default_factory=list)
    measures: Counter[str] = field(default_factory=Counter)

    def wrong(self, what: str) -> None:
        self.discrepancies.append(what)


def _windows(world: World) -> list[tuple[float, float]]:
    """When HA could not reach the relays: broker or entry down, agent down, and reconnecting."""
    now = time.time()
    spans = [*world.outages["broker"], *world.outages["ha"], *world.agent.outages]
    return [(span[0], (span[1] or now) + RECONNECT_GRACE_S) for span in spans]


def _paused(world: World, session: dict[str, Any]) -> float:
    """Seconds a session's relay was off because the agent was stopped cleanly meanwhile.

    On SIGTERM the agent switches its relays off and keeps the session; the time it is stopped
    counts as served (docs/pi-agent.md, Restarts), so that time is paid and not powered.
    """
    if session["started_at"] is None:
        return 0.0
    end = session["ended_at"] if session["ended_at"] is not None else time.time()
    return sum(
        max(0.0, min(end, up or end) - max(session["started_at"], down))
        for down, up, how in world.agent.outages
        if how == "stop"
    )


def _unreachable_until(windows: list[tuple[float, float]], at: float) -> float | None:
    """If HA could not reach the relays at ``at``, when it could again."""
    ends = [end for start, end in windows if start - SWITCH_SLACK_S <= at <= end]
    return max(ends) if ends else None


def _ack_lost(session: dict[str, Any], windows: list[tuple[float, float]]) -> bool:
    """Whether a session failed for want of an acknowledgement while HA could not hear one."""
    if session["end_reason"] != "no_acknowledgement" or session["ended_at"] is None:
        return False
    return any(
        start <= session["ended_at"] and session["created_at"] <= end for start, end in windows
    )


def _overlap(period: OnPeriod, start: float, end: float) -> float:
    return max(0.0, min(period.end, end) - max(period.start, start))


def reconcile(world: World, rows: dict[str, list[dict[str, Any]]]) -> Books:  # noqa: PLR0912, PLR0915
    """Compare the stand-in, the pins and the ledger; every difference is a discrepancy.

    - Nothing is left running, unsent (``requested``), unsettled (``pending``) or refused.
    - Every delivery answered 200 is in the ledger's events (else it was lost).
    - Each refund Razorpay made is one ledger refund, same payment and amount; each ledger
      refund sent is one of Razorpay's; under ₹1 only as ``too_small`` (never sent); an
      idempotency key is always sent with the same payment and amount.
    - Every payment is in the ledger as a session's, in one session only; a payment merged
      into another session (a top-up) never powered a relay for its own.
    - The pins: every period a relay was on belongs to a ledger session and lies within it
      (``SWITCH_SLACK_S``), or after its end only while HA could not reach the relay (the
      broker, the agent or HA down, and ``RECONNECT_GRACE_S`` after).
    - Money, per payment, priced at its own paise per second, its time served oldest payment
      first (unserved time is cut newest first): automatic refunds are the unserved time's
      worth, within a second's worth and a paisa of rounding per refund (the owner may refund
      more by hand). Time the agent was stopped cleanly counts as served (documented); a start
      whose acknowledgement was lost while HA could not hear it is refunded in full.
    - Each bay's revenue in the ledger is what Razorpay kept of its payments.
    """
    books = Books()
    standin = world.standin
    payments = {row["payment_id"]: row for row in rows["payments"]}
    sessions = {row["session_id"]: row for row in rows["sessions"]}
    refunds = rows["refunds"]
    periods = world.agent.on_periods()
    windows = _windows(world)

    # Nothing is left half done once everything has settled.
    for session in sessions.values():
        if session["state"] not in ("ended", "failed", "refunded"):
            books.wrong(f"session {session['session_id']} still {session['state']}")
    for refund in refunds:
        if refund["state"] in ("requested", "pending", "failed"):
            books.wrong(f"refund {refund['key']} of {refund['payment_id']} is {refund['state']}")

    # Every delivery answered 200 was recorded (else Razorpay would not deliver it again).
    events = {row["event_id"] for row in rows["events"]}
    for event_id in world.answered:
        if event_id not in events:
            books.wrong(f"delivery {event_id} answered 200 but not in the ledger's events")

    # Refunds: each one Razorpay made is one the ledger recorded, for the same money; none twice.
    by_refund_id = {r["refund_id"]: r for r in refunds if r["refund_id"]}
    for refund_id, remote in standin.refunds.items():
        mine = by_refund_id.get(refund_id)
        if mine is None:
            books.wrong(f"Razorpay refund {refund_id} ({remote['amount']}) is not in the ledger")
        elif (mine["payment_id"], mine["amount"]) != (remote["payment_id"], remote["amount"]):
            books.wrong(f"refund {refund_id}: ledger {mine['amount']}, Razorpay {remote['amount']}")
    for refund in refunds:
        sent = refund["state"] in ("pending", "processed")
        if sent and refund["refund_id"] not in standin.refunds:
            books.wrong(f"refund {refund['key']} is {refund['state']} but Razorpay has none")
        if refund["amount"] < MIN_REFUND_PAISE and refund["state"] != "too_small":
            books.wrong(f"refund {refund['key']} of {refund['amount']} paise is {refund['state']}")
        if refund["state"] == "too_small" and refund["amount"] >= MIN_REFUND_PAISE:
            books.wrong(f"refund {refund['key']} of {refund['amount']} paise kept as too small")
    sends: dict[str, set[tuple[str, int]]] = {}
    for call in standin.calls:
        if call.method == "POST" and call.path.endswith("/refund"):
            key = call.headers.get("X-Refund-Idempotency", "")
            payment_id = call.path.split("/")[3]
            sends.setdefault(key, set()).add((payment_id, (call.json or {}).get("amount")))
            books.measures["refund_requests"] += 1
    for key, variants in sends.items():
        if not key or len(variants) > 1:
            books.wrong(f"refund key {key!r} sent as {sorted(variants)}")
    books.measures["refund_keys"] = len(sends)

    # Who paid for what: every payment is in the ledger, in one session only.
    owner_of: dict[str, str] = {}
    for session in sessions.values():
        for payment_id in json.loads(session["payment_ids"]):
            if payment_id in owner_of:
                books.wrong(f"payment {payment_id} in {owner_of[payment_id]} and {session}")
            owner_of[payment_id] = session["session_id"]
    labelled = {p.session for p in periods}
    for purchase in world.purchases:
        row = payments.get(purchase.payment_id)
        if row is None or row["state"] != "session" or row["amount"] != purchase.amount:
            books.wrong(f"payment {purchase.payment_id} recorded as {row}")
            continue
        own = purchase.paid.link["reference_id"]
        if owner_of.get(purchase.payment_id) != own and own in labelled:
            books.wrong(f"payment {purchase.payment_id} powered {own} and joined another session")

    # Power: only for a session of the ledger, only while it ran (or while HA could not say off).
    served: Counter[str] = Counter()
    for period in periods:
        session = sessions.get(period.session or "")
        if session is None:
            books.wrong(f"{period.bay} on {period.seconds:.2f} s for unknown {period.session}")
            continue
        start = session["created_at"] - SWITCH_SLACK_S
        end = session["ended_at"] if session["ended_at"] is not None else period.end
        end += SWITCH_SLACK_S
        # What the session got while it ran is what its money is checked against.
        served[period.session or ""] += _overlap(period, start, end)
        after = _overlap(period, end, float("inf"))
        until = _unreachable_until(windows, end - SWITCH_SLACK_S)
        if until is not None:
            # Ended while HA could not reach the relay: it goes off once HA can say so.
            books.measures["power_after_end_while_unreachable_s"] += _overlap(period, end, until)
            after = _overlap(period, until, float("inf"))
        outside = _overlap(period, float("-inf"), start) + after
        if outside > SWITCH_SLACK_S:
            books.wrong(
                f"{period.bay} on {outside:.2f} s outside session {period.session} "
                f"({session['state']}, {session['end_reason']})"
            )
    books.measures["served_s"] = round(sum(served.values()))

    # Money: each payment's price per second times what it served, plus its refunds.
    refunds_of: dict[str, list[dict[str, Any]]] = {}
    for refund in refunds:
        refunds_of.setdefault(refund["payment_id"], []).append(refund)
    purchases = {p.payment_id: p for p in world.purchases}
    for session_id, session in sessions.items():
        paused = _paused(world, session)
        books.measures["paid_unpowered_while_agent_stopped_s"] += paused
        left = served[session_id] + paused
        if _ack_lost(session, windows) and left > 0:
            # The agent powered it, but its acknowledgement did not reach HA in time (the
            # broker or HA was away): HA failed it, refunded it in full and sent off.
            books.measures["free_power_ack_lost_s"] += left
            if left > ACK_S + RECONNECT_GRACE_S:
                books.wrong(f"session {session_id} powered {left:.2f} s after no acknowledgement")
            left = 0.0
        if session["owner"]:
            if left > session["seconds"] + SWITCH_SLACK_S:
                books.wrong(f"owner session {session_id} served {left:.2f} s")
            continue
        for payment_id in json.loads(session["payment_ids"]):
            purchase = purchases.get(payment_id)
            if purchase is None:
                books.wrong(f"session {session_id} holds unknown payment {payment_id}")
                continue
            mine = min(left, purchase.seconds)
            left -= mine
            price = purchase.amount / purchase.seconds
            kept = [r for r in refunds_of.get(payment_id, []) if r["state"] != "failed"]
            auto = sum(r["amount"] for r in kept if r["reason"] != "owner")
            owner = sum(r["amount"] for r in kept if r["reason"] == "owner")
            unserved = (purchase.seconds - mine) * price
            slack = price + ROUNDING_PAISE * max(len(kept), 1)
            facts = (
                f"payment {payment_id} ({purchase.plan}, {purchase.amount}) served {mine:.2f} s "
                f"of session {session_id} ({session['state']}, {session['end_reason']}): "
                f"unserved worth {unserved:.1f}, refunded {auto} (+{owner} by the owner)"
            )
            if auto + owner < unserved - slack:
                books.wrong("short: " + facts)
            if auto > unserved + slack:
                books.wrong("over: " + facts)
            books.measures["paid_paise"] += purchase.amount
            books.measures["refunded_paise"] += auto + owner
        if left > SWITCH_SLACK_S:
            books.wrong(f"session {session_id} served {left:.2f} s more than was paid")
    books.measures["too_small"] = sum(1 for r in refunds if r["state"] == "too_small")

    # The bays' revenue in the ledger is what Razorpay kept.
    revenue: Counter[str] = Counter()
    for purchase in world.purchases:
        remote = standin.payments[purchase.payment_id]
        revenue[purchase.bay] += purchase.amount - int(remote["amount_refunded"])
    totals = {row["bay_id"]: row["revenue_paise"] for row in rows["bay_totals"]}
    for bay in world.bays:
        if totals.get(bay, 0) != revenue[bay]:
            books.wrong(f"{bay}: ledger revenue {totals.get(bay, 0)}, Razorpay kept {revenue[bay]}")
    return books
