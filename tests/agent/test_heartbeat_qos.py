"""The retained heartbeat is the newest after a silent connection loss (review of issue #27,
F6).

Heartbeats published with QoS 1 into a link that died unnoticed (a node gone without a RST)
stayed in paho's queue and were re-sent after the fresh one of the next connection, so the
broker retained an older ``at`` than the newest: Home Assistant, reading it on start, could
judge a live agent missed. The heartbeat is now QoS 0: neither queued nor re-sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .helpers import Observer, RunningAgent, Setup
from .net_fakes import FreezableProxy


def test_the_retained_heartbeat_is_the_newest_after_a_silent_connection_loss(
    setup: Setup,
    freezable_proxy: FreezableProxy,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
) -> None:
    obs = observer_factory(setup.node)
    topic = f"qr_charging/{setup.node}/heartbeat"
    section = {
        "brokers": [f"127.0.0.1:{freezable_proxy.port}"],
        "keepalive": 5,
        "heartbeat_s": 5,
    }
    agents(setup.write(broker=section)).start()
    obs.wait_for(topic, lambda m: True)
    frozen_at = time.time()
    freezable_proxy.freeze()  # beats go on into the dead link until paho's keepalive gives up
    # The next connection's first heartbeat: none sent after the freeze passed the old link.
    # (keepalive 5 s: the loss is seen within about two.)
    obs.wait_for(topic, lambda m: m.json()["at"] > frozen_at, timeout=30)
    # A barrier on that connection: whatever paho re-sends comes before this answer.
    before = obs.mark()
    obs.send_on("bay-1", "s-barrier", 30)
    obs.wait_state("bay-1", since=before, session="s-barrier")
    newest = max(m.json()["at"] for m in obs.messages if m.topic == topic)

    retained = observer_factory(setup.node).wait_for(topic, lambda m: m.retain)
    assert retained.json()["at"] == newest
