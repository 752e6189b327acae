"""The agent's heartbeat (issue #27): retained ``{"at", "every"}`` on ``<prefix>/<node>/heartbeat``.

Published after every (re)connection, once the availability, the config and every bay's state
are out, then every ``broker.heartbeat_s`` while connected: Home Assistant judges an agent by
it where no broker publishes the will of a client whose cluster node died.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.mosquitto import Broker

from .helpers import Message, Observer, RunningAgent, Setup

# The shortest period the configuration allows.
EVERY_S = 5


def _heartbeat(node: str) -> str:
    return f"qr_charging/{node}/heartbeat"


def _index(messages: list[Message], topic: str) -> int:
    return next(i for i, m in enumerate(messages) if m.topic == topic)


def test_the_heartbeat_follows_the_reports_of_each_connection(
    setup: Setup,
    broker: Broker,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
) -> None:
    obs = observer_factory(setup.node)
    base = f"qr_charging/{setup.node}"
    before = time.time()
    agents(setup.write()).start()
    beat = obs.wait_for(_heartbeat(setup.node), lambda m: True)
    after = time.time()
    assert beat.json() == {"at": beat.json()["at"], "every": 30}
    assert before <= beat.json()["at"] <= after
    messages = obs.messages[: obs.mark()]
    last_report = max(
        _index(messages, topic)
        for topic in (f"{base}/availability", f"{base}/config", obs.state_topic("bay-1"))
    )
    assert _index(messages, obs.state_topic("bay-2")) < _index(messages, _heartbeat(setup.node))
    assert last_report < _index(messages, _heartbeat(setup.node))

    # Retained: what a subscriber arriving later (Home Assistant starting) is given.
    late = observer_factory(setup.node)
    kept = late.wait_for(_heartbeat(setup.node), lambda m: True)
    assert kept.retain
    assert kept.json() == beat.json()

    # After a reconnection (the broker back, empty), a fresh one after the fresh reports.
    broker.stop()
    broker.start()
    again = observer_factory(setup.node)
    fresh = again.wait_for(_heartbeat(setup.node), lambda m: True, timeout=10)
    assert fresh.json()["at"] > beat.json()["at"]
    messages = again.messages[: again.mark()]
    assert _index(messages, again.state_topic("bay-2")) < _index(messages, _heartbeat(setup.node))


def test_the_heartbeat_repeats_every_heartbeat_s(
    setup: Setup,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
) -> None:
    obs = observer_factory(setup.node)
    config = setup.write(broker={"host": "127.0.0.1", "port": setup.broker.port, "heartbeat_s": 5})
    agents(config).start()
    topic = _heartbeat(setup.node)
    first = obs.wait_for(topic, lambda m: True)
    mark = obs.mark()
    second = obs.wait_for(topic, lambda m: True, since=mark, timeout=EVERY_S + 5)
    assert first.json()["every"] == second.json()["every"] == EVERY_S
    # The period by the agent's clock and by arrival: never early, and one period, not two
    # (how late a busy machine schedules it is not the agent's to promise).
    assert EVERY_S <= second.json()["at"] - first.json()["at"] < 2 * EVERY_S
    assert second.at - first.at < 2 * EVERY_S
    # Nothing but the heartbeat in between: the period is its own, not the states'.
    assert {m.topic for m in obs.messages[mark : obs.mark()]} == {topic}
