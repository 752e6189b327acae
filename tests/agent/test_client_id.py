"""Agents with one node id under two prefixes share a broker (review of issue #27, F1).

Two sites on one broker or cluster, each with its own prefix, whose agents both are
``kiosk-1``: with ``pi-mqtt-relay-<node>`` as client id whatever the prefix, each took the
other's connection and persistent session over and over, and a command for one could be
delivered to the other (which ignores a topic not its own). The id now names the prefix
when it is not the default, joined to the node by ':' (review 27b F1: with '-', node
``site-a-kiosk-1`` under the default and ``kiosk-1`` under ``site-a`` met again). The
persistent session under that id is shown on Mosquitto and on NATS 2.15.1's MQTT (the
fleet's broker; skipped where there is no nats-server, as in the agent's own venv).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pi_mqtt_relay.config import DEFAULT_PREFIX, parse_config
from pi_mqtt_relay.mqtt_link import client_id
from tests.mosquitto import Broker
from tests.soak import examples

from .helpers import (
    IDS,
    PREFIXES,
    Listening,
    Observer,
    RunningAgent,
    Setup,
    ids_cut_from_one_text,
)

# Pairs of agents (prefix, node) on one broker: one node id under two prefixes, and a node
# id under the default that is another site's prefix and node joined by '-'.
SAME_NODE = (("site-a", "kiosk-1"), ("site-b", "kiosk-1"))
JOIN_ALIKE = ((DEFAULT_PREFIX, "site-a-kiosk-1"), ("site-a", "kiosk-1"))
AGENT = st.tuples(PREFIXES, IDS)


def _config(prefix: str, node: str = "kiosk-1") -> dict[str, object]:
    return {
        "broker": {"host": "127.0.0.1"},
        "node": {"id": node},
        "topic_prefix": prefix,
        "bays": [{"id": "bay-1", "pin": 17}],
    }


def test_the_default_prefix_keeps_the_client_id_and_its_session() -> None:
    assert client_id(parse_config(_config("qr_charging"))) == "pi-mqtt-relay-kiosk-1"
    assert client_id(parse_config(_config("site-a"))) == "pi-mqtt-relay-site-a:kiosk-1"


def test_a_node_id_that_is_another_sites_prefix_and_node_gets_its_own_client_id() -> None:
    ids = {client_id(parse_config(_config(prefix, node))) for prefix, node in JOIN_ALIKE}
    assert len(ids) == 2, ids  # with '-': both pi-mqtt-relay-site-a-kiosk-1


@examples(300)
@given(st.one_of(st.tuples(AGENT, AGENT), ids_cut_from_one_text(2)))
def test_two_distinct_agents_never_share_a_client_id(
    agents: tuple[tuple[str, str], tuple[str, str]],
) -> None:
    first, second = agents
    if first != second:
        assert client_id(parse_config(_config(*first))) != client_id(parse_config(_config(*second)))


@pytest.mark.parametrize("pair", [SAME_NODE, JOIN_ALIKE], ids=["same_node", "join_alike"])
def test_two_agents_on_one_broker_both_keep_working(
    tmp_path: Path,
    broker: Broker,
    agents: Callable[[Path], RunningAgent],
    observer_on: Callable[..., Observer],
    pair: tuple[tuple[str, str], ...],
) -> None:
    # Watching before the agents start: every (re)connection of theirs says "online" once.
    obs = observer_on(broker, "unused", tuple(prefix for prefix, _ in pair))
    running = {}
    for prefix, node in pair:
        (tmp_path / prefix).mkdir()
        config = Setup(tmp_path / prefix, broker).write(
            topic_prefix=prefix, node={"id": node, "name": "Kiosk"}
        )
        running[prefix] = agents(config).start()
    for prefix, node in pair:
        obs.wait_for(f"{prefix}/{node}/heartbeat", lambda m: True)

    now = time.time()
    for prefix, node in pair:
        command = f'{{"action": "on", "session": "s-{prefix}", "until": {now + 30}, '
        command += f'"duration": 30, "sent": {now}}}'
        obs.client.publish(f"{prefix}/{node}/bay-2/set", command, qos=1).wait_for_publish(5)
    for prefix, node in pair:
        state = obs.wait_for(
            f"{prefix}/{node}/bay-2/state", lambda m, p=prefix: m.json().get("session") == f"s-{p}"
        )
        assert state.json()["state"] == "ON"
        assert running[prefix].is_on("bay-2")
        onlines = [
            m
            for m in obs.messages
            if m.topic == f"{prefix}/{node}/availability" and m.payload == b"online"
        ]
        assert len(onlines) == 1, f"{prefix}/{node}: {len(onlines)} (re)connections"


@pytest.mark.parametrize("server", ["broker", "nats_broker"])
def test_each_agent_gets_the_commands_queued_for_it_while_it_was_away(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    agents: Callable[[Path], RunningAgent],
    observer_on: Callable[..., Observer],
    server: str,
) -> None:
    broker: Listening = request.getfixturevalue(server)
    obs = observer_on(broker, "unused", tuple(prefix for prefix, _ in JOIN_ALIKE))
    configs = {}
    for prefix, node in JOIN_ALIKE:
        (tmp_path / prefix).mkdir()
        configs[prefix] = Setup(tmp_path / prefix, broker).write(
            topic_prefix=prefix, node={"id": node, "name": "Kiosk"}
        )
    first = [agents(path).start() for path in configs.values()]
    for prefix, node in JOIN_ALIKE:
        obs.wait_for(f"{prefix}/{node}/heartbeat", lambda m: True, timeout=15)
    for running in first:
        running.stop()  # a clean disconnect: the broker keeps the session

    # Queued while both are away, the second agent's first: with one session between them,
    # the first agent back has taken (and ignored) it before its own powers its bay.
    now = time.time()
    for prefix, node in reversed(JOIN_ALIKE):
        command = f'{{"action": "on", "session": "s-{prefix}", "until": {now + 60}, '
        command += f'"duration": 60, "sent": {now}}}'
        obs.client.publish(f"{prefix}/{node}/bay-2/set", command, qos=1).wait_for_publish(5)
    for prefix, node in JOIN_ALIKE:
        since = obs.mark()
        again = agents(configs[prefix]).start()
        state = obs.wait_for(
            f"{prefix}/{node}/bay-2/state",
            lambda m, p=prefix: m.json().get("session") == f"s-{p}",
            since=since,
            timeout=15,
        )
        assert state.json()["state"] == "ON"
        assert again.is_on("bay-2")
