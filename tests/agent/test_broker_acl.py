"""The broker ACL of docs/security.md, on a real Mosquitto with the real agent.

Only Home Assistant's login may command bays; the agent's login may report for its own node
only; other add-ons neither command nor see the bays.
"""

from __future__ import annotations

import getpass
import json
import re
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.mosquitto import Broker

from .conftest import PREFIX, RunningAgent, Setup

DOC = Path(__file__).parents[2] / "docs" / "security.md"
PASSWORD = "a-long-random-password"
NODE = "kiosk-1"
AGENT_USER = "pi-relay"


def _documented_acl() -> str:
    """The access control list as docs/security.md gives it."""
    found = re.search(r"and `accesscontrollist`:\s*```text\n(.*?)```", DOC.read_text(), re.S)
    assert found is not None, "docs/security.md has no accesscontrollist block"
    return textwrap.dedent(found.group(1))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto with logins and the documented ACL (this module's own broker)."""
    server = Broker(tmp_path)
    passwords = tmp_path / "passwords"
    passwords.write_text("")
    for user in ("homeassistant", "addons", AGENT_USER):
        subprocess.run(["mosquitto_passwd", "-b", passwords, user, PASSWORD], check=True)
    acl = tmp_path / "accesscontrollist"
    acl.write_text(_documented_acl())
    server.conf.write_text(
        f"listener {server.port} 127.0.0.1\nallow_anonymous false\npersistence false\n"
        f"password_file {passwords}\nacl_file {acl}\n"
        # Started as root, Mosquitto would read these files as user "mosquitto": stay us.
        f"user {getpass.getuser()}\n"
    )
    server.start()
    yield server
    server.stop()


class Login:
    """An MQTT client logged in as ``user``, recording what it receives on ``#``."""

    def __init__(self, port: int, user: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{user}")
        self.client.username_pw_set(user, PASSWORD)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("#", qos=1)
        self.client.loop_start()
        assert subscribed.wait(5), f"{user} could not subscribe"

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def wait_for(self, topic: str, contains: bytes = b"", timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(t == topic and contains in p for t, p in self.messages):
                left = deadline - time.monotonic()
                assert left > 0, f"nothing on {topic} with {contains!r}; saw {self.messages}"
                self._cond.wait(left)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def login(broker: Broker) -> Iterator[Callable[[str], Login]]:
    made: list[Login] = []

    def make(user: str) -> Login:
        made.append(Login(broker.port, user))
        return made[-1]

    yield make
    for client in made:
        client.close()


def test_only_home_assistant_commands_and_only_the_agent_reports(
    broker: Broker,
    tmp_path: Path,
    agents: Callable[[Path], RunningAgent],
    login: Callable[[str], Login],
) -> None:
    home_assistant, addons = login("homeassistant"), login("addons")
    setup = Setup(tmp_path, broker, node=NODE)
    credentials = {"username": AGENT_USER, "password": PASSWORD}
    agent = agents(
        setup.write(broker={"host": "127.0.0.1", "port": broker.port, **credentials})
    ).start()
    base = f"{PREFIX}/{NODE}"
    # The agent's availability, config and states get through.
    home_assistant.wait_for(f"{base}/availability", b"online")
    home_assistant.wait_for(f"{base}/config", NODE.encode())
    home_assistant.wait_for(f"{base}/bay-1/state", b"boot")

    # Home Assistant's on powers the bay.
    sent = time.time()
    on = json.dumps(
        {"action": "on", "session": "s-paid", "until": sent + 60, "duration": 60, "sent": sent}
    )
    home_assistant.publish(f"{base}/bay-1/set", on)
    home_assistant.wait_for(f"{base}/bay-1/state", b"s-paid")
    assert agent.is_on("bay-1")

    # Another add-on can neither command a bay nor fake its state ...
    addons.publish(f"{base}/bay-2/set", on.replace("s-paid", "s-intruder"))
    addons.publish(f"{base}/bay-1/state", '{"state": "OFF", "reason": "fake-addons"}')
    addons.publish("elsewhere/marker", "addons done")
    home_assistant.wait_for("elsewhere/marker", b"addons done")
    # ... nor read the bays.
    assert not [topic for topic, _ in addons.messages if topic.startswith(f"{PREFIX}/")]

    # The agent's login reports for its own node only, and cannot command.
    impostor = login(AGENT_USER)
    impostor.publish(f"{base}/bay-2/set", on.replace("s-paid", "s-self"))
    impostor.publish(f"{PREFIX}/kiosk-2/bay-1/state", '{"state": "ON", "reason": "fake-node"}')
    impostor.publish(f"{base}/bay-9/state", '{"state": "OFF", "reason": "agent done"}')
    home_assistant.wait_for(f"{base}/bay-9/state", b"agent done")

    received = b"".join(payload for _, payload in home_assistant.messages)
    for refused in (b"s-intruder", b"fake-addons", b"s-self", b"fake-node"):
        assert refused not in received
    assert not agent.is_on("bay-2")
    assert agent.is_on("bay-1")
