"""Agents with one node id under two prefixes share a broker (review of issue #27, F1).

Two sites on one broker or cluster, each with its own prefix, whose agents both are
``kiosk-1``: with ``pi-mqtt-relay-<node>`` as client id whatever the prefix, each took the
other's connection and persistent session over and over, and a command for one could be
delivered to the other (which ignores a topic not its own). The id now names the prefix
when it is not the default.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pi_mqtt_relay.config import parse_config
from pi_mqtt_relay.mqtt_link import client_id
from tests.mosquitto import Broker

from .helpers import Observer, RunningAgent, Setup

SITES = ("site-a", "site-b")
NODE = {"id": "kiosk-1", "name": "Kiosk"}


def _config(prefix: str) -> dict[str, object]:
    return {
        "broker": {"host": "127.0.0.1"},
        "node": {"id": "kiosk-1"},
        "topic_prefix": prefix,
        "bays": [{"id": "bay-1", "pin": 17}],
    }


def test_the_default_prefix_keeps_the_client_id_and_its_session() -> None:
    assert client_id(parse_config(_config("qr_charging"))) == "pi-mqtt-relay-kiosk-1"
    assert client_id(parse_config(_config("site-a"))) == "pi-mqtt-relay-site-a-kiosk-1"


def test_two_sites_agents_with_one_node_id_under_two_prefixes_both_keep_working(
    tmp_path: Path,
    broker: Broker,
    agents: Callable[[Path], RunningAgent],
    observer_on: Callable[..., Observer],
) -> None:
    # Watching before the agents start: every (re)connection of theirs says "online" once.
    obs = observer_on(broker, NODE["id"], SITES)
    running = {}
    for prefix in SITES:
        (tmp_path / prefix).mkdir()
        config = Setup(tmp_path / prefix, broker).write(topic_prefix=prefix, node=NODE)
        running[prefix] = agents(config).start()
    for prefix in SITES:
        obs.wait_for(f"{prefix}/kiosk-1/heartbeat", lambda m: True)

    now = time.time()
    for prefix in SITES:
        command = f'{{"action": "on", "session": "s-{prefix}", "until": {now + 30}, '
        command += f'"duration": 30, "sent": {now}}}'
        obs.client.publish(f"{prefix}/kiosk-1/bay-2/set", command, qos=1).wait_for_publish(5)
    for prefix in SITES:
        state = obs.wait_for(
            f"{prefix}/kiosk-1/bay-2/state", lambda m, p=prefix: m.json().get("session") == f"s-{p}"
        )
        assert state.json()["state"] == "ON"
        assert running[prefix].is_on("bay-2")
        onlines = [
            m
            for m in obs.messages
            if m.topic == f"{prefix}/kiosk-1/availability" and m.payload == b"online"
        ]
        assert len(onlines) == 1, f"{prefix}: {len(onlines)} (re)connections"
