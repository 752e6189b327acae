"""The broker ACL of docs/security.md, on a real Mosquitto with the real agent.

Only Home Assistant's login may command bays; the agent's login may report for its own node
only; other add-ons neither command nor see the bays.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.mosquitto import Broker
from tests.tls import PASSWORD, Login, acl_broker, documented_acl

from .helpers import AGENT_USER, NODE, PREFIX, RunningAgent, Setup


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto with logins and the documented ACL (this module's own broker)."""
    logins = dict.fromkeys(("homeassistant", "addons", AGENT_USER), PASSWORD)
    server = acl_broker(tmp_path, logins, documented_acl())
    server.start()
    yield server
    server.stop()


def test_only_home_assistant_commands_and_only_the_agent_reports(
    broker: Broker,
    tmp_path: Path,
    agents: Callable[[Path], RunningAgent],
    login: Callable[..., Login],
) -> None:
    home_assistant, addons = login("homeassistant"), login("addons")
    setup = Setup(tmp_path, broker, node=NODE)
    credentials = {"username": AGENT_USER, "password": PASSWORD}
    agent = agents(
        setup.write(broker={"host": "127.0.0.1", "port": broker.port, **credentials})
    ).start()
    base = f"{PREFIX}/{NODE}"
    # The agent's availability, config, states and heartbeat get through.
    home_assistant.wait_for(f"{base}/availability", b"online")
    home_assistant.wait_for(f"{base}/config", NODE.encode())
    home_assistant.wait_for(f"{base}/bay-1/state", b"boot")
    home_assistant.wait_for(f"{base}/heartbeat", b'"every"')

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
