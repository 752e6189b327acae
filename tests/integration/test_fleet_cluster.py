"""A fleet on a clustered broker, small (issue #27): three NATS nodes, HAProxy, HA, agents.

HA's MQTT connects through HAProxy (``balance first``: it sits on node n1 while n1 lives);
three simulated agents (tests/fleet_agents.py) connect straight to the nodes, one per node,
each listing all three. ``kiosk-1``, whose bay-1 the account sells, starts on n3. The proof:

* kill -9 of n3 (under kiosk-1) while a customer pays: the ``on`` HA publishes meanwhile is
  queued in kiosk-1's persistent session on the cluster and delivered once it has failed
  over, or the sale is refused and refunded; the bay is never powered without a payment;
* kill -9 of n1 (under HA) while bay-1 runs a session: HA reconnects through HAProxy to a
  live node and the retained availability and state come back from the cluster (bay-1
  online again, its running session reported). While HA subscribed at QoS 1, NATS 2.15.1
  replayed the agent's older retained state in about one run in four (docs/fleet.md); at
  QoS 0 it did not in 16 runs, but such a run stays an xfail, not a failure.

Waits are on conditions with generous bounds (the cluster's own failover takes seconds).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Generator
from pathlib import Path
from typing import Any

import pytest

from tests import fleet

pytestmark = pytest.mark.skipif(fleet.missing() is not None, reason=str(fleet.missing()))

# Imported after the skip mark so a machine without the cluster's binaries skips cleanly.
from homeassistant.components import mqtt  # noqa: E402
from homeassistant.core import HomeAssistant  # noqa: E402
from homeassistant.setup import async_setup_component  # noqa: E402
from pytest_homeassistant_custom_component.common import MockConfigEntry  # noqa: E402

from custom_components.qr_charging.const import DOMAIN  # noqa: E402
from devtools.razorpay_standin import RazorpayStandin  # noqa: E402
from tests.fleet_agents import SimAgent, parse_brokers  # noqa: E402

from .const import mqtt_bay, with_plans  # noqa: E402
from .helpers import PostWebhook, create_link, entry_data, export_sessions  # noqa: E402
from .mqtt_helpers import NODE, wait_until  # noqa: E402

# The cluster re-elects its MQTT streams' leaders after a kill: seconds, on a loaded machine more.
FAILOVER_S = 45.0


@pytest.fixture
def broker(tmp_path: Path, socket_enabled: None) -> Generator[fleet.Fleet]:
    """The cluster behind HAProxy; ``port`` is HAProxy's, so ``mqtt_entry`` connects there."""
    cluster = fleet.Fleet(tmp_path / "fleet")
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def mqtt_login() -> dict[str, Any]:
    """No birth message: while the cluster moves its stream leaders a node may drop HA's new
    connection at once, and HA's MQTT client then raises from its birth-message task (a
    "Task exception was never retrieved" that is HA core's, logged, harmless to the bays)."""
    return {"birth_message": {}}


@pytest.fixture
def ack_timeout() -> float:
    """Long enough for a queued ``on`` to follow its agent to another node."""
    return FAILOVER_S


@pytest.fixture
async def agents(broker: fleet.Fleet) -> AsyncGenerator[dict[str, SimAgent]]:
    """kiosk-1 (bay-1) on n3, two bystanders on n1 and n2; each lists every node."""
    nodes = parse_brokers(broker.brokers)
    started = {
        name: SimAgent(name, ["bay-1", "bay-2"], nodes[first:] + nodes[:first], heartbeat_s=5)
        for name, first in ((NODE, 2), ("kiosk-2", 0), ("kiosk-3", 1))
    }
    for agent in started.values():
        agent.start()
    yield started
    for agent in started.values():
        await agent.stop()


@pytest.fixture
async def fleet_entry(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    mqtt_entry: MockConfigEntry,
    agents: dict[str, SimAgent],
    bay_plans: list[dict[str, Any]],
    ack_timeout: float,
) -> MockConfigEntry:
    """The account with bay-1 on kiosk-1, set up and seeing it online."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=standin.key_id,
        data=entry_data(standin),
        options={"ack_timeout": ack_timeout, "auto_refund": True},
        subentries_data=[*bay_plans, with_plans(mqtt_bay(NODE), bay_plans)],
    )
    entry.add_to_hass(hass)
    assert await async_setup_component(hass, "http", {})
    assert await hass.config_entries.async_setup(entry.entry_id)
    runner = entry.runtime_data.bays.runners["bay-1"]
    await wait_until(hass, lambda: runner.driver.online, within=FAILOVER_S)
    return entry


def _powered_sessions(agent: SimAgent) -> set[str]:
    return {relay.session for relay in agent.bays["bay-1"].relays}


async def test_a_sale_while_the_node_under_its_agent_dies(
    hass: HomeAssistant,
    broker: fleet.Fleet,
    agents: dict[str, SimAgent],
    fleet_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    """kill -9 under kiosk-1 while a customer pays: delivered after the failover, or refunded."""
    kiosk = agents[NODE]
    assert kiosk.broker_index == 0
    assert kiosk.brokers[0][1] == broker.nodes[2].mqtt_port

    # No will: kiosk-1's retained "online" stays, so HA sells and publishes the "on".
    broker.kill(2)
    await wait_until(hass, lambda: len(kiosk.lost_at) == 1, within=FAILOVER_S)
    paid = standin.pay_link((await create_link(hass))["id"])
    delivery = hass.async_create_task(post_webhook(paid.payment_link_paid()))
    await wait_until(hass, lambda: len(kiosk.connects) == 2, within=FAILOVER_S)
    assert (await delivery).status == 200
    refunds = f"/v1/payments/{paid.payment_id}/refund"

    def settled() -> bool:
        sessions = {row["session_id"]: row for row in sessions_now}
        return bool(standin.calls_to("POST", refunds)) or any(
            relay.session in sessions for relay in kiosk.bays["bay-1"].relays
        )

    sessions_now: list[dict[str, str]] = []
    deadline = time.monotonic() + FAILOVER_S
    while not settled():
        assert time.monotonic() < deadline, "the sale was neither delivered nor refunded"
        await asyncio.sleep(0.1)
        sessions_now = await export_sessions(hass)
    sold = {row["session_id"] for row in sessions_now}
    refunded = bool(standin.calls_to("POST", refunds))
    # Delivered (the bay runs the paid session), or refused and refunded: never both, never
    # a bay powered for a session HA did not sell.
    assert _powered_sessions(kiosk) <= sold
    assert refunded != bool(_powered_sessions(kiosk)), (refunded, kiosk.bays["bay-1"].relays)
    # The bystanders' relays never moved.
    assert not any(a.bays[b].relays for a in agents.values() if a is not kiosk for b in a.bays)


async def test_ha_gets_the_retained_state_back_when_its_node_dies(
    hass: HomeAssistant,
    broker: fleet.Fleet,
    agents: dict[str, SimAgent],
    fleet_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    """kill -9 under HA: it reconnects through HAProxy; the running session is replayed."""
    kiosk = agents[NODE]
    runner = fleet_entry.runtime_data.bays.runners["bay-1"]
    paid = standin.pay_link((await create_link(hass))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await wait_until(hass, lambda: kiosk.bays["bay-1"].active is not None, within=FAILOVER_S)
    running = kiosk.bays["bay-1"].active
    assert running is not None
    latest = json.dumps([s for _, bay, s in kiosk.states if bay == "bay-1"][-1]).encode()
    topic = f"{kiosk.topic}/bay-1/state"

    async def consistent() -> bool:
        served = await hass.async_add_executor_job(broker.retained_everywhere, topic)
        return all(payload == latest for payload in served)

    deadline = time.monotonic() + FAILOVER_S
    while not await consistent():
        assert time.monotonic() < deadline, "the cluster never served the latest state"

    broker.kill(0)
    await wait_until(hass, lambda: not mqtt.is_connected(hass), within=FAILOVER_S)
    assert not runner.driver.online
    await wait_until(
        hass, lambda: mqtt.is_connected(hass) and runner.driver.online, within=FAILOVER_S
    )

    def replayed() -> bool:
        # The driver's last report: what the retained message carried (``fresh`` False).
        last = runner.driver._last_state
        return last is not None and not last.fresh

    await wait_until(hass, replayed, within=FAILOVER_S)
    last = runner.driver._last_state
    assert last is not None
    if last.session_id is None and last.reason == "boot":
        # Measured in about one run in four: the surviving nodes replay the agent's first
        # retained state, from before the session (docs/fleet.md). A NATS defect, not ours.
        pytest.xfail("NATS replayed a retained state from before the session after a node died")
    assert last.session_id == running.session
    assert last.powered
