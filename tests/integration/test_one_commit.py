"""A paid webhook that starts or tops up a session is stored in one commit, then ``on`` is sent.

The payment, the session's ``starting`` state and deadline (or the running session's top-up)
are written in the webhook's own transaction, before Razorpay is answered; when that one
commit fails nothing is sent and the webhook answers 503. Refusals and a bay whose
availability is not known yet still go through the bay's own decision.

The store's writes are watched (or made to fail) at ``LedgerStore._write``, as in
``test_storage_faults.py``; everything else is real: HA, the webhook over HTTP, the plug
switch or HA's MQTT with a real Mosquitto and a scripted agent, the Razorpay stand-in.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from unittest.mock import patch

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.qr_charging.ledger import Changes
from custom_components.qr_charging.records import (
    PaymentRecord,
    Record,
    SessionRecord,
    SessionState,
)
from custom_components.qr_charging.store import LedgerStore
from devtools.razorpay_standin import PaidPayment, RazorpayStandin

from .const import PLAN_PRICE
from .helpers import (
    PostWebhook,
    create_link,
    export_sessions,
    pay,
    plug_state,
    refund_amounts,
    settle,
    tick,
)
from .mqtt_helpers import NODE, PLAN_S, ScriptedAgent, running_session, wait_until
from .storage_helpers import Written, failing_writes, recorded_writes


@pytest.fixture
def ack_timeout() -> float:
    """Long enough for the agent's availability to arrive while a payment waits for it."""
    return 5


def _sessions(records: list[Record]) -> list[SessionRecord]:
    return [r for r in records if isinstance(r, SessionRecord)]


def _write_of(written: Written, payment_id: str) -> list[Record]:
    """The one write that stored a payment (it is stored once)."""
    (write,) = [
        w
        for w in written
        if any(isinstance(r, PaymentRecord) and r.payment_id == payment_id for r in w)
    ]
    return write


def _holds_starting(changes: Changes) -> bool:
    return any(
        isinstance(r, SessionRecord) and r.state is SessionState.STARTING
        for _, r in changes.upserts
    )


@pytest.mark.usefixtures("loaded_entry")
async def test_a_payment_and_its_start_are_one_commit(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    """The payment's own write holds its session already starting, with its deadline."""
    before = time.time()
    with recorded_writes() as written:
        paid = await pay(hass, standin, post_webhook)
    assert plug_state(hass) == STATE_ON

    (session,) = _sessions(_write_of(written, paid.payment_id))
    assert session.state is SessionState.STARTING
    assert session.payment_ids == [paid.payment_id]
    assert session.until is not None
    assert before + PLAN_S <= session.until <= time.time() + PLAN_S
    # No write ever stored it as merely paid: no second commit before the "on".
    assert all(s.state is not SessionState.PAID for w in written for s in _sessions(w))
    (row,) = await export_sessions(hass)
    assert row["state"] == "active"


async def test_a_start_that_cannot_be_stored_sends_nothing_and_is_redelivered(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
) -> None:
    """The one commit fails: no ``on``, 503; the redelivery starts exactly one session."""
    paid = standin.pay_link((await create_link(hass))["id"])
    delivery = paid.payment_link_paid()

    with failing_writes(_holds_starting):
        response = await post_webhook(delivery)
        await settle(hass)
        await asyncio.sleep(0.3)  # an "on" would cross the broker by now
    assert response.status == 503
    assert (await response.json())["outcome"] == "not_stored"
    assert agent.ons() == []
    assert await export_sessions(hass) == []

    response = await post_webhook(delivery)
    assert (await response.json())["outcome"] == "new_session"
    on = await agent.wait_command(1)
    assert isinstance(on, dict)
    assert on["action"] == "on"
    await wait_until(hass, lambda: agent.powered is not None)
    # A third delivery of the same event changes nothing.
    assert (await (await post_webhook(delivery)).json())["outcome"] == "duplicate_delivery"
    await settle(hass)
    await wait_until(
        hass, lambda: mqtt_bay_entry.runtime_data.bays.runners["bay-1"].status == "charging"
    )
    (row,) = await export_sessions(hass)
    assert (row["session_id"], row["state"]) == (on["session"], "active")
    assert len(agent.ons()) == 1


async def test_a_top_up_over_mqtt_is_one_commit(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
) -> None:
    """The top-up payment's own write holds the running session extended by it."""
    first, on = await running_session(hass, standin, post_webhook, agent)

    with recorded_writes() as written:
        second = await pay(hass, standin, post_webhook)
        extend = await agent.wait_command(2)

    assert isinstance(extend, dict)
    assert (extend["action"], extend["session"]) == ("on", on["session"])
    assert extend["until"] == pytest.approx(on["until"] + PLAN_S)
    (session,) = _sessions(_write_of(written, second.payment_id))
    assert session.session_id == on["session"]
    assert session.state is SessionState.ACTIVE
    assert session.payment_ids == [first.payment_id, second.payment_id]
    assert session.until == pytest.approx(extend["until"])
    assert all(s.state is not SessionState.PAID for w in written for s in _sessions(w))
    (row,) = await export_sessions(hass)
    assert (row["seconds"], row["paid_paise"]) == (str(2 * PLAN_S), str(2 * PLAN_PRICE))


async def test_a_payment_while_availability_is_unknown_starts_once_known(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
) -> None:
    """Just after a (re)start the agent's availability is not in yet: the bay waits for it."""
    availability = f"qr_charging/{NODE}/availability"
    assert await hass.config_entries.async_unload(mqtt_bay_entry.entry_id)
    agent.publish(availability, "")  # no retained availability: unknown at the next setup
    assert await hass.config_entries.async_setup(mqtt_bay_entry.entry_id)
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    assert not runner.driver.online

    paid = standin.pay_link((await create_link(hass))["id"])
    with recorded_writes() as written:
        # Not ``pay``: HA's block_till_done would wait out the bay's wait for its availability.
        assert (await post_webhook(paid.payment_link_paid())).status == 200
        await asyncio.sleep(0.3)
        # Stored as paid, nothing sent, nothing refused: the bay's decision waits.
        (session,) = _sessions(_write_of(written, paid.payment_id))
        assert session.state is SessionState.PAID
        assert agent.commands == []
        agent.publish(availability, "online")
        on = await agent.wait_command(1)

    assert isinstance(on, dict)
    assert (on["action"], on["session"]) == ("on", session.session_id)
    await wait_until(hass, lambda: runner.status == "charging")
    (row,) = await export_sessions(hass)
    assert row["state"] == "active"
    assert standin.calls_to("POST", f"/v1/payments/{paid.payment_id}/refund") == []


# -- a payment's commit overtaken by a reload, a removal or its old deadline ----------------------


class _Gate:
    """Holds the write that stores one payment until released (a slow disk, a backup)."""

    def __init__(self, payment_id: str) -> None:
        self.payment_id = payment_id
        self.entered = threading.Event()
        self.release = threading.Event()

    async def wait_entered(self) -> None:
        # Not ``asyncio.sleep(delay)``: the loop's clock may be frozen by the test.
        for _ in range(1000):
            if self.entered.wait(0.01):
                return
            for _ in range(5):
                await asyncio.sleep(0)
        raise AssertionError("the write never began")


@contextmanager
def held_write(payment_id: str) -> Iterator[_Gate]:
    """The write storing ``payment_id`` waits (in the executor) until the gate is released."""
    real = LedgerStore._write
    gate = _Gate(payment_id)

    def write(store: LedgerStore, changes: Changes) -> None:
        stores_it = any(
            isinstance(r, PaymentRecord) and r.payment_id == payment_id for _, r in changes.upserts
        )
        if stores_it and not gate.entered.is_set():
            gate.entered.set()
            gate.release.wait(30)
        real(store, changes)

    with patch.object(LedgerStore, "_write", autospec=True, side_effect=write):
        yield gate


async def _pay_while(
    hass: HomeAssistant,
    post_webhook: PostWebhook,
    paid: PaidPayment,
    entry: MockConfigEntry,
    disturb: Callable[[], Awaitable[object]],
) -> None:
    """Deliver a payment; while its one commit is held, ``disturb`` unloads the bays."""
    with held_write(paid.payment_id) as gate:
        post = asyncio.ensure_future(post_webhook(paid.payment_link_paid()))
        await gate.wait_entered()
        disturbed = asyncio.ensure_future(disturb())
        await asyncio.sleep(0.3)  # the unload is under way, waiting for the change
        gate.release.set()
        assert (await post).status == 200
        await disturbed
    await wait_until(hass, lambda: entry.state is ConfigEntryState.LOADED)
    await asyncio.sleep(0.3)
    await hass.async_block_till_done()


@pytest.mark.parametrize("disturbance", ["reload", "bay removed"])
async def test_a_top_up_stored_while_the_bays_unload_reaches_the_bay(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    disturbance: str,
) -> None:
    """The unload waits for the change: the top-up's ``on`` goes out before the bay stops.

    The money bought time the agent is told of; a removed bay's agent runs it to its end.
    """
    _, on = await running_session(hass, standin, post_webhook, agent)
    second = standin.pay_link((await create_link(hass))["id"])
    (bay,) = [s for s in mqtt_bay_entry.subentries.values() if s.subentry_type == "bay"]

    async def disturb() -> None:
        if disturbance == "reload":
            assert await hass.config_entries.async_reload(mqtt_bay_entry.entry_id)
        else:
            assert hass.config_entries.async_remove_subentry(mqtt_bay_entry, bay.subentry_id)

    await _pay_while(hass, post_webhook, second, mqtt_bay_entry, disturb)

    assert len(agent.ons()) == 2
    assert agent.ons()[1]["until"] == pytest.approx(on["until"] + PLAN_S)
    (row,) = await export_sessions(hass)
    assert (row["seconds"], row["paid_paise"]) == (str(2 * PLAN_S), str(2 * PLAN_PRICE))


async def test_a_start_stored_while_the_entry_reloads_starts(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
) -> None:
    """Not failed for want of an acknowledgement after the reload, nor refunded: started."""
    paid = standin.pay_link((await create_link(hass))["id"])

    await _pay_while(
        hass,
        post_webhook,
        paid,
        mqtt_bay_entry,
        lambda: hass.config_entries.async_reload(mqtt_bay_entry.entry_id),
    )

    await wait_until(hass, lambda: agent.powered is not None)
    await asyncio.sleep(1.5)  # past the acknowledgement time
    await hass.async_block_till_done()
    (row,) = await export_sessions(hass)
    assert row["state"] == "active"
    assert refund_amounts(standin, paid.payment_id) == []


@pytest.mark.usefixtures("loaded_entry")
async def test_a_deadline_passing_while_a_top_up_is_stored_ends_nothing(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The old deadline fires during the top-up's commit: the topped-up session goes on."""
    first = await pay(hass, standin, post_webhook)
    await tick(hass, freezer, PLAN_S - 25)  # 25 s left: enough for a top-up
    second = standin.pay_link((await create_link(hass))["id"])
    with held_write(second.payment_id) as gate:
        post = asyncio.ensure_future(post_webhook(second.payment_link_paid()))
        await gate.wait_entered()
        # The commit is slow; the old deadline passes meanwhile and switches the plug off.
        freezer.tick(timedelta(seconds=30))
        async_fire_time_changed(hass)
        for _ in range(20):
            await asyncio.sleep(0)
        gate.release.set()
        assert (await post).status == 200
    await settle(hass)

    (row,) = await export_sessions(hass)
    assert (row["state"], row["seconds"]) == ("active", str(2 * PLAN_S))
    assert plug_state(hass) == STATE_ON
    assert refund_amounts(standin, first.payment_id) == []
    assert refund_amounts(standin, second.payment_id) == []
