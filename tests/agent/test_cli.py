"""The command line: --check-config, configuration errors, HA discovery when standalone."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from pi_mqtt_relay.__main__ import main
from pi_mqtt_relay.config import load_config
from pi_mqtt_relay.mqtt_link import Topics
from tests.mosquitto import Broker

from .helpers import PYPROJECT_VERSION, Observer, RunningAgent, Setup

# Two sites sharing a broker, each with a kiosk-1 (Setup's bays).
SITES = ("site-a", "site-b")
BAYS = ("bay-1", "bay-2")

VALID: dict[str, Any] = {
    "broker": {"host": "127.0.0.1", "port": 1883},
    "node": {"id": "kiosk-1", "name": "Kiosk 1"},
    "bays": [{"id": "bay-1", "pin": 17}],
}


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pi_mqtt_relay", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_shipped_example_config_is_valid() -> None:
    example = resources.files("pi_mqtt_relay") / "example-agent.yaml"
    with resources.as_file(example) as path:
        result = _run("--config", str(path), "--check-config")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_check_config_accepts_a_valid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(_write(tmp_path, VALID)), "--check-config"]) == 0
    assert "valid" in capsys.readouterr().out


def _bay(**changes: Any) -> dict[str, Any]:
    return {**VALID, "bays": [{"id": "bay-1", "pin": 17, **changes}]}


BAD = {
    "missing_broker": ({k: v for k, v in VALID.items() if k != "broker"}, "broker"),
    "missing_host": ({**VALID, "broker": {"port": 1883}}, "broker.host"),
    "port_out_of_range": ({**VALID, "broker": {"host": "h", "port": 70000}}, "broker.port"),
    "port_as_text": ({**VALID, "broker": {"host": "h", "port": "mqtt"}}, "broker.port"),
    "node_id_with_space": ({**VALID, "node": {"id": "kiosk 1"}}, "node.id"),
    "no_bays": ({**VALID, "bays": []}, "bays"),
    "pin_out_of_range": (_bay(pin=40), "bays[0].pin"),
    "pin_as_bool": (_bay(pin=True), "bays[0].pin"),
    "bay_id_with_slash": (_bay(id="bay/1"), "bays[0].id"),
    "active_high_as_text": (_bay(active_high="no"), "bays[0].active_high"),
    "negative_default": (_bay(default_minutes=-5), "bays[0].default_minutes"),
    "default_over_cap": (
        {**_bay(default_minutes=300), "max_session_s": 3600},
        "bays[0].default_minutes",
    ),
    "duplicate_pin": (
        {**VALID, "bays": [{"id": "a", "pin": 17}, {"id": "b", "pin": 17}]},
        "bays[1].pin",
    ),
    "duplicate_bay": (
        {**VALID, "bays": [{"id": "a", "pin": 17}, {"id": "a", "pin": 27}]},
        "bays[1].id",
    ),
    "unknown_key": ({**VALID, "brokers": {}}, "brokers"),
    "missing_ca_file": (
        {**VALID, "broker": {"host": "h", "tls": {"ca_file": "/nonexistent/ca.crt"}}},
        "broker.tls.ca_file",
    ),
    # An empty tls: would otherwise mean a plain connection, password and all in clear text.
    "tls_null": ({**VALID, "broker": {"host": "h", "tls": None}}, "broker.tls"),
    "tls_empty_mapping": ({**VALID, "broker": {"host": "h", "tls": {}}}, "broker.tls"),
    "tls_left_blank": (
        "broker:\n  host: h\n  tls:\nnode:\n  id: k\nbays:\n  - id: b\n    pin: 17\n",
        "broker.tls",
    ),
    "password_without_username": (
        {**VALID, "broker": {"host": "h", "password": "secret"}},
        "broker.password",
    ),
    "zero_cap": ({**VALID, "max_session_s": 0}, "max_session_s"),
    "not_a_mapping": ("- just\n- a list\n", "top level"),
    "not_yaml": ("broker: [unclosed\n", "not valid YAML"),
}


@pytest.mark.parametrize(("data", "names"), BAD.values(), ids=BAD.keys())
def test_config_error_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: Any, names: str
) -> None:
    path = _write(tmp_path, data)
    assert main(["--config", str(path), "--check-config"]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err
    assert names in err


def test_version_is_the_released_one() -> None:
    result = _run("--version")
    assert result.stdout.split() == ["pi-mqtt-relay", PYPROJECT_VERSION]


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read the file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("data", "names"), [(_bay(pin=99), "bays[0].pin"), BAD["tls_null"]], ids=["pin", "tls"]
)
def test_config_error_stops_before_any_pin(tmp_path: Path, data: Any, names: str) -> None:
    # No --mock-gpio and no GPIO on this machine: had the agent touched a pin, gpiozero
    # would fail first; instead the config error is reported and the exit code is 2.
    path = _write(tmp_path, data)
    result = _run("--config", str(path))
    assert result.returncode == 2
    assert names in result.stderr
    assert "gpiozero" not in result.stderr
    assert "Traceback" not in result.stderr


def test_ha_discovery_announces_each_bay_as_a_switch(
    setup: Setup,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
) -> None:
    obs = observer_factory(setup.node)
    running = agents(setup.write(ha_discovery=True)).start()
    topic = f"homeassistant/switch/{setup.node}_bay-1/config"
    announced = obs.wait_for(topic, lambda m: bool(m.payload)).json()
    assert "object_id" not in announced
    base = f"qr_charging/{setup.node}"
    assert announced["command_topic"] == f"{base}/bay-1/set"
    assert announced["state_topic"] == f"{base}/bay-1/state"
    assert announced["value_template"] == "{{ value_json.state }}"
    assert announced["availability_topic"] == f"{base}/availability"
    assert announced["payload_available"] == "online"
    assert announced["payload_not_available"] == "offline"
    assert announced["unique_id"]
    assert announced["device"]["name"] == "Test kiosk"
    assert announced["device"]["identifiers"]
    assert announced["device"]["sw_version"] == PYPROJECT_VERSION
    assert obs.wait_for(f"homeassistant/switch/{setup.node}_bay-2/config", lambda m: True)
    # Driven as HA drives an MQTT switch: plain ON to the command topic.
    obs.client.publish(announced["command_topic"], "ON", qos=1).wait_for_publish(5)
    assert obs.wait_state("bay-1", state="ON")["reason"] == "command"
    assert running.is_on("bay-1")


def test_without_ha_discovery_old_announcements_are_cleared(
    setup: Setup,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
) -> None:
    topic = f"homeassistant/switch/{setup.node}_bay-1/config"
    first = observer_factory(setup.node)
    first.client.publish(topic, '{"name": "stale"}', qos=1, retain=True).wait_for_publish(5)
    agents(setup.write()).start()
    first.wait_state("bay-1", reason="boot")
    time.sleep(0.2)
    late = observer_factory(setup.node)
    late.wait_state("bay-1", reason="boot")  # retained messages have arrived
    assert [m for m in late.messages if m.topic == topic] == []


def _start_site(tmp_path: Path, broker: Broker, prefix: str, **overrides: Any) -> Path:
    """The config file of an agent ``kiosk-1`` under ``prefix``."""
    (tmp_path / prefix).mkdir()
    return Setup(tmp_path / prefix, broker).write(
        topic_prefix=prefix, node={"id": "kiosk-1", "name": prefix}, **overrides
    )


def _announced(obs: Observer, config: Path, bay: str) -> dict[str, Any]:
    """The retained announcement of the agent's bay, one commanding that very bay."""
    topics = Topics(load_config(config))
    msg = obs.wait_for(
        topics.discovery(bay),
        lambda m: bool(m.payload) and m.json()["command_topic"] == topics.set(bay),
    )
    return dict(msg.json())


def test_two_sites_kiosk_1_each_keep_their_own_switches(
    tmp_path: Path,
    broker: Broker,
    agents: Callable[[Path], RunningAgent],
    observer_on: Callable[..., Observer],
) -> None:
    """Review 27b F2: two sites' ``kiosk-1`` announced on one topic, the last one kept."""
    obs = observer_on(broker, "kiosk-1", SITES)
    configs = [_start_site(tmp_path, broker, prefix, ha_discovery=True) for prefix in SITES]
    for prefix, config in zip(SITES, configs, strict=True):
        agents(config).start()
        # After its announcements: the broker has stored them (one connection, in order).
        obs.wait_for(f"{prefix}/kiosk-1/heartbeat", lambda m: True)
    late = observer_on(broker, "kiosk-1", SITES)  # what HA reads when it (re)starts
    unique_ids = {_announced(late, config, bay)["unique_id"] for config in configs for bay in BAYS}
    assert len(unique_ids) == len(SITES) * len(BAYS), unique_ids


def test_an_agent_without_ha_discovery_leaves_another_sites_switch(
    tmp_path: Path,
    broker: Broker,
    agents: Callable[[Path], RunningAgent],
    observer_on: Callable[..., Observer],
) -> None:
    """Review 27b F2: site-b's kiosk-1 (discovery off) cleared site-a's announcement."""
    obs = observer_on(broker, "kiosk-1", SITES)
    site_a = _start_site(tmp_path, broker, "site-a", ha_discovery=True)
    agents(site_a).start()
    obs.wait_for("site-a/kiosk-1/heartbeat", lambda m: True)
    agents(_start_site(tmp_path, broker, "site-b")).start()
    obs.wait_for("site-b/kiosk-1/heartbeat", lambda m: True)
    late = observer_on(broker, "kiosk-1", SITES)
    for bay in BAYS:
        assert _announced(late, site_a, bay)["state_topic"] == f"site-a/kiosk-1/{bay}/state"
