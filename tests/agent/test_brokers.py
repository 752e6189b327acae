"""``broker.brokers``: failover to the next broker, round robin, with the session following.

Issue #27: the agent of a fleet connects to one node of a clustered broker and, when that
connection is lost or refused, moves on at once to the next node in its list (backoff only
between full rounds), with the same client id and ``clean_session=False``. Mosquitto shares
no session between two brokers, so the queued command is shown on one broker the agent left
and came back to (the cluster's own proof is the fleet simulation's).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from pi_mqtt_relay.__main__ import EXIT_CONFIG, main
from pi_mqtt_relay.config import BrokerAddress, ConfigError, parse_config
from pi_mqtt_relay.mqtt_link import RECONNECT_MAX_S, RECONNECT_MIN_S, Rotation
from tests.mosquitto import Broker

from .helpers import TOLERANCE_S, Observer, RunningAgent, Setup

BAY = {"id": "bay-1", "pin": 17}


def _config(**broker: Any) -> dict[str, Any]:
    return {"broker": broker, "node": {"id": "kiosk-1"}, "bays": [BAY]}


def _both(*brokers: Broker) -> dict[str, Any]:
    """The broker section listing these Mosquittos in order."""
    return {"brokers": [f"127.0.0.1:{b.port}" for b in brokers], "keepalive": 5}


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- configuration ------------------------------------------------------------------------


def test_a_list_of_brokers_is_read_in_order_with_the_default_ports() -> None:
    config = parse_config(_config(brokers=["node-a", "node-b:1884", "[::1]:1885", "10.0.0.4"]))
    assert config.broker.addresses == (
        BrokerAddress("node-a", 1883),
        BrokerAddress("node-b", 1884),
        BrokerAddress("::1", 1885),
        BrokerAddress("10.0.0.4", 1883),
    )
    assert [str(a) for a in config.broker.addresses][2] == "[::1]:1885"
    assert config.broker.heartbeat_s == 30


def test_a_broker_without_a_port_takes_8883_with_tls() -> None:
    config = parse_config(_config(brokers=["node-a", "node-b:8884"], tls={"insecure": True}))
    assert config.broker.addresses == (BrokerAddress("node-a", 8883), BrokerAddress("node-b", 8884))


def test_host_and_port_are_still_one_broker() -> None:
    config = parse_config(_config(host="broker.lan", port=1884, heartbeat_s=5))
    assert config.broker.addresses == (BrokerAddress("broker.lan", 1884),)
    assert config.broker.heartbeat_s == 5


@pytest.mark.parametrize(
    ("broker", "error"),
    [
        ({"host": "a", "brokers": ["b"]}, "broker.brokers: give either"),
        ({"port": 1883, "brokers": ["b"]}, "broker.brokers: give either"),
        ({}, "broker.host: required key is missing"),
        ({"brokers": []}, "broker.brokers: give between 1 and 10"),
        ({"brokers": [f"n{i}" for i in range(11)]}, "broker.brokers: give between 1 and 10"),
        ({"brokers": "a:1883"}, "broker.brokers: expected list"),
        ({"brokers": ["a", "a:1883"]}, "broker.brokers[1]: already listed as broker.brokers[0]"),
        ({"brokers": ["a", 1883]}, "broker.brokers[1]: expected 'host' or 'host:port'"),
        ({"brokers": [""]}, "broker.brokers[0]: '' is not 'host' or 'host:port'"),
        ({"brokers": ["a b"]}, "broker.brokers[0]: 'a b' is not"),
        ({"brokers": ["mqtt://a:1883"]}, "broker.brokers[0]: 'mqtt://a:1883' is not"),
        ({"brokers": ["a:port"]}, "broker.brokers[0]: 'a:port' is not"),
        ({"brokers": ["[::1"]}, "broker.brokers[0]: '[::1' is not"),
        ({"brokers": ["a:0"]}, "broker.brokers[0]: 'a:0': the port must be between 1 and 65535"),
        ({"brokers": ["a:65536"]}, "broker.brokers[0]: 'a:65536': the port must be between"),
        ({"host": "a", "heartbeat_s": 4}, "broker.heartbeat_s: must be a whole number"),
        ({"host": "a", "heartbeat_s": 301}, "broker.heartbeat_s: must be a whole number"),
        ({"host": "a", "heartbeat_s": 7.5}, "broker.heartbeat_s: expected a whole number"),
        ({"host": "a", "heartbeat_s": True}, "broker.heartbeat_s: expected a whole number"),
    ],
)
def test_bad_broker_settings_name_the_key(broker: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(_config(**broker))
    assert error in str(raised.value)


def test_check_config_refuses_both_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "broker: {host: a, brokers: ['b:1883']}\nnode: {id: kiosk-1}\nbays: [{id: b1, pin: 17}]\n"
    )
    assert main(["--config", str(path), "--check-config"]) == EXIT_CONFIG
    assert "broker.brokers: give either" in capsys.readouterr().err


# -- the order of tries (plain rules) ------------------------------------------------------


def _waits(rotation: Rotation, count: int) -> list[tuple[str, int]]:
    """The next broker and the wait before it, after each of ``count`` failures."""
    return [(rotation.current.host, wait) for wait in (rotation.failed() for _ in range(count))]


def test_the_next_broker_at_once_and_the_backoff_between_full_rounds() -> None:
    rotation = Rotation(tuple(BrokerAddress(h, 1883) for h in "abc"))
    assert rotation.current.host == "a"
    assert _waits(rotation, 9) == [
        ("b", 0),
        ("c", 0),
        ("a", RECONNECT_MIN_S),
        ("b", 0),
        ("c", 0),
        ("a", 2 * RECONNECT_MIN_S),
        ("b", 0),
        ("c", 0),
        ("a", 4 * RECONNECT_MIN_S),
    ]
    # A connection resets the backoff; losing it moves on at once (round robin).
    rotation.connected()
    assert _waits(rotation, 3) == [("b", 0), ("c", 0), ("a", RECONNECT_MIN_S)]


def test_one_broker_keeps_the_backoff_of_before() -> None:
    rotation = Rotation((BrokerAddress("a", 1883),))
    assert [wait for _, wait in _waits(rotation, 7)] == [1, 2, 4, 8, 16, RECONNECT_MAX_S, 30]


# -- with real brokers ---------------------------------------------------------------------


def test_a_lost_broker_is_left_for_the_next_at_once(
    setup: Setup,
    broker: Broker,
    second_broker: Broker,
    agents: Callable[[Path], RunningAgent],
    observer_on: Callable[[Broker, str], Observer],
) -> None:
    first, second = observer_on(broker, setup.node), observer_on(second_broker, setup.node)
    base = f"qr_charging/{setup.node}"
    agents(setup.write(broker=_both(broker, second_broker))).start()
    first.wait_for(f"{base}/heartbeat", lambda m: True)
    assert second.mark() == 0

    broker.stop()
    # The second broker is the next of the round (that no backoff comes first is the rule's
    # own test above: a time bound here would measure the machine's load, not the agent).
    second.wait_for(f"{base}/availability", lambda m: m.payload == b"online")
    second.wait_for(f"{base}/config", lambda m: True)
    second.wait_state("bay-1", reason="boot")
    second.wait_for(f"{base}/heartbeat", lambda m: True)


def test_a_refused_first_broker_is_skipped_at_once(
    setup: Setup,
    broker: Broker,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
) -> None:
    obs = observer_factory(setup.node)
    section = {"brokers": [f"127.0.0.1:{_unused_port()}", f"127.0.0.1:{broker.port}"]}
    agents(setup.write(broker=section)).start()
    online = obs.wait_for(f"qr_charging/{setup.node}/availability", lambda m: True)
    assert online.payload == b"online"


def test_a_broker_refusing_the_login_is_left_for_the_next_at_once(
    setup: Setup,
    broker: Broker,
    tmp_path: Path,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / "refusing").mkdir()
    refusing = Broker(tmp_path / "refusing")
    # Up, but answers every (anonymous) CONNECT with "not authorized".
    refusing.conf.write_text(f"listener {refusing.port} 127.0.0.1\nallow_anonymous false\n")
    refusing.start()
    try:
        obs = observer_factory(setup.node)
        section = {"brokers": [f"127.0.0.1:{refusing.port}", f"127.0.0.1:{broker.port}"]}
        agents(setup.write(broker=section)).start()
        online = obs.wait_for(f"qr_charging/{setup.node}/availability", lambda m: True)
        assert online.payload == b"online"
        assert f"refused the connection: Not authorized (127.0.0.1:{refusing.port})" in caplog.text
    finally:
        refusing.stop()


def _take_over_session(server: Broker, node: str) -> None:
    """Connect to ``server`` as the agent (same client id, persistent session), then leave.

    The broker drops the agent's own connection; the session, with its ``set``
    subscription, stays on ``server`` and queues what is sent meanwhile.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"pi-mqtt-relay-{node}", clean_session=False
    )
    client.connect("127.0.0.1", server.port)
    client.loop_start()
    deadline = time.monotonic() + 5
    while not client.is_connected():
        assert time.monotonic() < deadline, "could not take over the agent's session"
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()


def test_the_session_follows_the_agent_back_with_its_queued_command(
    setup: Setup,
    broker: Broker,
    second_broker: Broker,
    agents: Callable[[Path], RunningAgent],
    observer_on: Callable[[Broker, str], Observer],
) -> None:
    first, second = observer_on(broker, setup.node), observer_on(second_broker, setup.node)
    base = f"qr_charging/{setup.node}"
    running = agents(setup.write(broker=_both(broker, second_broker))).start()
    first.wait_for(f"{base}/heartbeat", lambda m: True)

    # The agent is pushed off the first broker and goes on to the second ...
    _take_over_session(broker, setup.node)
    second.wait_for(f"{base}/heartbeat", lambda m: True)
    # ... while a paid "on" is sent to the first, where its session waits for it.
    mark = first.mark()
    command = first.send_on("bay-2", "s-queued", 60.0)
    assert not running.is_on("bay-2")

    # The second broker dies: round robin, the agent is back on the first with its session.
    second_broker.stop()
    on = first.wait_state("bay-2", since=mark, state="ON")
    assert (on["session"], on["until"]) == ("s-queued", command["until"])
    assert running.is_on("bay-2")


def test_with_no_broker_reachable_a_bay_still_goes_off_at_its_deadline(
    setup: Setup,
    broker: Broker,
    second_broker: Broker,
    agents: Callable[[Path], RunningAgent],
    observer_on: Callable[[Broker, str], Observer],
) -> None:
    obs = observer_on(broker, setup.node)
    running = agents(setup.write(broker=_both(broker, second_broker))).start()
    obs.wait_state("bay-1", reason="boot")
    obs.send_on("bay-1", "s-alone", 1.5)
    obs.wait_state("bay-1", state="ON")
    broker.stop()
    second_broker.stop()
    running.wait_off("bay-1", timeout=3)
    [period] = running.on_periods("bay-1")
    assert abs(period - 1.5) < TOLERANCE_S

    # The rounds go on with backoff: the agent comes back on whichever broker returns.
    second_broker.start()
    late = observer_on(second_broker, setup.node)
    state = late.wait_state("bay-1", timeout=RECONNECT_MAX_S, reason="deadline")
    assert state["state"] == "OFF"
