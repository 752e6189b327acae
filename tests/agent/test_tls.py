"""The agent over TLS with a password, under the broker ACL of docs/security.md.

The test makes its own certificate authority and broker certificate (openssl) and password file
(mosquitto_passwd); Mosquitto listens with TLS only, refuses anonymous clients and applies the
documented access control list. Under it the agent and Home Assistant's login work, and a
third client is refused: its ``set`` never reaches the agent. Wrong credentials and a broker
certificate the agent does not trust give one clear log line per attempt, retried with
backoff, in an agent process that keeps running (no crash loop).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import signal
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.mosquitto import Broker
from tests.tls import PASSWORD, Login, Pki, acl_broker, documented_acl, make_pki

from .helpers import AGENT_USER, NODE, PREFIX, AgentProcess, RunningAgent, Setup

BASE = f"{PREFIX}/{NODE}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def broker(tmp_path: Path, pki: Pki) -> Iterator[Broker]:
    """Mosquitto with TLS only, logins from a password file and the documented ACL."""
    logins = dict.fromkeys(("homeassistant", "addons", AGENT_USER), PASSWORD)
    server = acl_broker(tmp_path, logins, documented_acl(), pki)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def login_ca(pki: Pki) -> Path:
    """The logins of this module trust the test's CA."""
    return pki.ca


def _agent_config(setup: Setup, broker: Broker, ca: Path, password: str = PASSWORD) -> Path:
    return setup.write(
        broker={
            "host": "127.0.0.1",
            "port": broker.port,
            "username": AGENT_USER,
            "password": password,
            "keepalive": 5,
            "tls": {"ca_file": str(ca)},
        }
    )


def _on(session: str) -> str:
    sent = time.time()
    return json.dumps(
        {"action": "on", "session": session, "until": sent + 60, "duration": 60, "sent": sent}
    )


def test_the_agent_and_home_assistant_work_over_tls_and_others_are_refused(
    broker: Broker,
    pki: Pki,
    tmp_path: Path,
    agents: Callable[[Path], RunningAgent],
    login: Callable[..., Login],
) -> None:
    home_assistant = login("homeassistant")
    assert home_assistant.connected.wait(5)
    agent = agents(_agent_config(Setup(tmp_path, broker, node=NODE), broker, pki.ca)).start()
    home_assistant.wait_for(f"{BASE}/availability", b"online")
    home_assistant.wait_for(f"{BASE}/bay-1/state", b"boot")

    # Home Assistant's "on" powers the bay over TLS.
    home_assistant.publish(f"{BASE}/bay-1/set", _on("s-paid"))
    home_assistant.wait_for(f"{BASE}/bay-1/state", b"s-paid")
    assert agent.is_on("bay-1")

    # A third client with a login of its own: its "on" never reaches the agent.
    addons = login("addons")
    assert addons.connected.wait(5)
    addons.publish(f"{BASE}/bay-2/set", _on("s-third"))
    addons.publish("elsewhere/marker", "sent")
    home_assistant.wait_for("elsewhere/marker", b"sent")
    # Without a login, or with a wrong password, the broker refuses the connection itself.
    for user, password in ((None, PASSWORD), ("homeassistant", "guess")):
        stranger = login(user, password, wait=False)
        deadline = time.monotonic() + 5
        while stranger.refused is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stranger.refused is not None
        assert not stranger.connected.is_set()
    # Nor does a client that does not speak TLS get anywhere.
    plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="plain")
    plain.username_pw_set("homeassistant", PASSWORD)
    with contextlib.suppress(OSError):
        plain.connect("127.0.0.1", broker.port, keepalive=5)
        for _ in range(10):  # the broker drops a client that does not start TLS
            plain.loop(timeout=0.1)
    assert not plain.is_connected()

    assert agent.is_on("bay-1")
    assert not agent.is_on("bay-2")
    received = b"".join(payload for _, payload in home_assistant.messages)
    assert b"s-third" not in received


LOG_LINE = re.compile(r"^(\S+ \S+) (\w+) pi_mqtt_relay[.\w]*: (.*)$")


def _lines(log: Path, contains: str) -> list[tuple[datetime, str, str]]:
    found = []
    for line in log.read_text().splitlines():
        if (match := LOG_LINE.match(line)) and contains in match.group(3):
            at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            found.append((at, match.group(2), match.group(3)))
    return found


@pytest.mark.parametrize(
    ("trouble", "says"),
    [
        ("password", "broker refused the connection: Not authorized"),
        ("certificate", "certificate verify failed"),
    ],
)
def test_a_refused_connection_is_one_clear_line_per_try_with_backoff(
    broker: Broker,
    pki: Pki,
    tmp_path: Path,
    processes: Callable[[Path, Path], AgentProcess],
    trouble: str,
    says: str,
) -> None:
    setup = Setup(tmp_path, broker, node=NODE)
    if trouble == "password":
        config = _agent_config(setup, broker, pki.ca, password="not-the-password")
    else:
        config = _agent_config(setup, broker, pki.other_ca)
    log = tmp_path / "agent.log"
    process = processes(config, log).start()
    time.sleep(4.5)

    assert process.proc is not None
    assert process.proc.poll() is None, f"the agent stopped: {log.read_text()}"
    tries = _lines(log, says)
    # One line per try (0 s, 1 s, 3 s: the waits double), each an error, with no traceback.
    assert 2 <= len(tries) <= 4, log.read_text()
    assert all(level == "ERROR" for _, level, _ in tries)
    assert "Traceback" not in log.read_text()
    gaps = [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(tries)]
    assert gaps[0] >= 0.9
    assert all(later >= earlier * 1.5 for earlier, later in itertools.pairwise(gaps))
    assert process.kill(signal.SIGTERM) == 0
