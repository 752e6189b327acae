"""A site's Mosquitto bridged to the NATS cluster, as docs/fleet.md documents it (issue #27).

No Home Assistant: an agent-like paho client on the site's Mosquitto (its client id,
``clean_session=False``, will ``offline`` retained, retained availability/config/heartbeat/state,
a QoS 1 subscription to its ``set`` topics) and a subscriber on the cluster that subscribes as
Home Assistant does (``qr_charging/#`` at QoS 0, clean session, through HAProxy). The bridge
block is read from the doc (tests/fleet_bridge.py). Counts are taken once a marker command and
a marker state have crossed the bridge after the messages counted (``flush``): the bridge keeps
each broker's order, so any echo or second copy would have arrived before them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests import fleet
from tests.fleet_bridge import (
    PREFIX,
    Peer,
    Uplink,
    both_ways,
    bridge_node,
    documented_bridge,
    flush,
    missing,
    wait_for_commands,
)
from tests.mosquitto import Broker

pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))

# The cluster moves its streams' leaders after a kill: seconds, on a loaded machine more.
FAILOVER_S = 45.0
# A retained message reached the surviving nodes within 5 s in the manual runs.
RETAINED_S = 30.0
AGENT_TOPICS = ("availability", "config", "heartbeat", "bay-1/state")

MakePeer = Callable[..., Peer]
StartSite = Callable[[str], Broker]


def _bridged(cluster: fleet.Fleet, site: StartSite, name: str, node: str, bridge: str) -> Broker:
    """The site's Mosquitto, once its bridge is connected and carries commands in."""
    broker = site(bridge)
    fleet.wait_for(
        lambda: bridge_node(cluster, f"bridge-{name}") is not None, 30, "bridge connected"
    )
    wait_for_commands(cluster.port, broker.port, node)
    return broker


def _agent(port: int, node: str, peer: MakePeer, *, resubscribe: bool = True) -> Peer:
    """An agent's MQTT session on the site: its client id, persistent session, will."""
    return peer(
        port,
        f"pi-mqtt-relay-{node}",
        clean=False,
        will=f"{PREFIX}/{node}/availability",
        subscribe=[f"{PREFIX}/{node}/+/set"] if resubscribe else [],
        qos=1,
    )


def _ha(cluster: fleet.Fleet, peer: MakePeer, name: str) -> Peer:
    """A subscriber as Home Assistant's: through HAProxy, clean session, QoS 0."""
    return peer(cluster.port, name, subscribe=[f"{PREFIX}/#"], qos=0)


def _announce(agent: Peer, node: str, tag: str) -> dict[str, str]:
    """What an agent publishes after connecting, retained; returns topic → payload."""
    sent = {f"{PREFIX}/{node}/{t}": f"{t} {tag}" for t in AGENT_TOPICS}
    sent[f"{PREFIX}/{node}/availability"] = "online"
    for topic, payload in sent.items():
        # The agent's heartbeat is QoS 0 (docs/mqtt-protocol.md), the rest QoS 1.
        agent.publish(topic, payload, retain=True, qos=0 if topic.endswith("heartbeat") else 1)
    return sent


def test_an_agent_on_the_site_is_seen_on_the_cluster(
    shared_cluster: fleet.Fleet, site: StartSite, peer: MakePeer
) -> None:
    """Its retained messages reach HA once, are replayed to a new subscriber, and its will
    (the site's Mosquitto publishes it) reaches the cluster when it dies without DISCONNECT."""
    node = "kiosk-seen"
    bridge = documented_bridge(shared_cluster.brokers, "seen", node)
    broker = _bridged(shared_cluster, site, "seen", node, bridge)
    ha = _ha(shared_cluster, peer, "ha-seen")
    on_site = peer(broker.port, "site-watch-seen", subscribe=[f"{PREFIX}/#"])
    agent = _agent(broker.port, node, peer)

    sent = _announce(agent, node, "1")
    flush(ha, agent, node)
    for topic, payload in sent.items():
        assert (ha.count(topic, payload), on_site.count(topic, payload)) == (1, 1), topic

    newcomer = _ha(shared_cluster, peer, "ha-seen-new")
    newcomer.wait_for(
        lambda: all(
            m in newcomer.messages for m in ((t, p.encode(), True) for t, p in sent.items())
        ),
        "replayed every retained message",
    )

    agent.drop()
    ha.wait(f"{PREFIX}/{node}/availability", "offline")
    fleet.wait_for(
        lambda: (
            fleet.retained(shared_cluster.port, f"{PREFIX}/{node}/availability", qos=0)
            == b"offline"
        ),
        10,
        "the will retained on the cluster",
    )


def test_a_command_reaches_the_agent_once_and_after_a_short_absence(
    shared_cluster: fleet.Fleet, site: StartSite, peer: MakePeer
) -> None:
    """A ``set`` published QoS 1 on the cluster reaches the agent exactly once (nothing comes
    back to the cluster), and reaches it after it was away: the site queued it in its session."""
    node = "kiosk-set"
    broker = _bridged(
        shared_cluster, site, "set", node, documented_bridge(shared_cluster.brokers, "set", node)
    )
    ha = _ha(shared_cluster, peer, "ha-set")
    on_site = peer(broker.port, "site-watch-set", subscribe=[f"{PREFIX}/#"])
    agent = _agent(broker.port, node, peer)
    command = f"{PREFIX}/{node}/bay-1/set"

    ha.publish(command, "on 1")
    agent.wait(command, "on 1")
    flush(ha, agent, node)
    assert (agent.count(command, "on 1"), on_site.count(command, "on 1")) == (1, 1)
    assert ha.count(command, "on 1") == 1  # its own publish; no copy came back

    agent.drop()
    ha.publish(command, "on 2")
    on_site.wait(command, "on 2")  # across the bridge while the agent is away
    back = _agent(broker.port, node, peer, resubscribe=False)  # its session's subscription
    back.wait(command, "on 2")
    flush(ha, back, node)
    assert back.count(command, "on 2") == 1


def test_both_ways_on_qr_charging_sends_the_sites_messages_back_to_it(
    shared_cluster: fleet.Fleet, site: StartSite, peer: MakePeer
) -> None:
    """Why the doc's bridge has one direction per topic: with ``qr_charging/# both``, NATS (no
    bridge marker, no no-local in MQTT 3.1.1) echoes each agent message into the site once.
    Mosquitto sends nothing received from a bridge back over it, so the echo goes no further."""
    node = "kiosk-both"
    bridge = both_ways(documented_bridge(shared_cluster.brokers, "both", node))
    broker = _bridged(shared_cluster, site, "both", node, bridge)
    states, commands = _exchange(shared_cluster, peer, broker, node, "both")
    assert states == (1, 2)
    assert commands == (1, 1)


def _exchange(
    cluster: fleet.Fleet, peer: MakePeer, broker: Broker, node: str, tag: str
) -> tuple[tuple[int, int], tuple[int, int]]:
    """The agent's retained ``ON`` up and HA's ``on`` down over the bridge, then counted:
    (copies of the state at HA, on the site), (copies of the command at the agent, at HA)."""
    ha = _ha(cluster, peer, f"ha-{tag}")
    on_site = peer(broker.port, f"site-watch-{tag}", subscribe=[f"{PREFIX}/#"])
    agent = _agent(broker.port, node, peer)
    state, command = f"{PREFIX}/{node}/bay-1/state", f"{PREFIX}/{node}/bay-1/set"
    agent.publish(state, "ON", retain=True)
    ha.publish(command, "on")
    agent.wait(command, "on")
    flush(ha, agent, node)
    return (
        (ha.count(state, "ON"), on_site.count(state, "ON")),
        (agent.count(command, "on"), ha.count(command, "on")),
    )


def test_the_documented_bridge_sends_each_message_once(
    shared_cluster: fleet.Fleet, site: StartSite, peer: MakePeer
) -> None:
    """The same exchange over the doc's bridge: one copy on each side, none echoed."""
    node = "kiosk-once"
    broker = _bridged(
        shared_cluster, site, "once", node, documented_bridge(shared_cluster.brokers, "once", node)
    )
    states, commands = _exchange(shared_cluster, peer, broker, node, "once")
    assert states == (1, 1)
    assert commands == (1, 1)


def test_an_uplink_outage_queues_commands_and_sends_the_latest_state_after(
    shared_cluster: fleet.Fleet,
    site: StartSite,
    peer: MakePeer,
    uplink: Callable[[int], Uplink],
) -> None:
    """The uplink is cut: a command published on the cluster meanwhile waits in the bridge's
    session there and is delivered once when it is back; of the states published meanwhile,
    the latest goes up once (``local_cleansession true``), the ones before it not at all."""
    node = "kiosk-uplink"
    link = uplink(shared_cluster.nodes[1].mqtt_port)
    bridge = documented_bridge([f"127.0.0.1:{link.port}"], "uplink", node)
    broker = _bridged(shared_cluster, site, "uplink", node, bridge)
    ha = _ha(shared_cluster, peer, "ha-uplink")
    agent = _agent(broker.port, node, peer)
    state, command = f"{PREFIX}/{node}/bay-1/state", f"{PREFIX}/{node}/bay-1/set"
    agent.publish(state, "OFF before", retain=True)
    ha.wait(state, "OFF before")

    link.cut()
    fleet.wait_for(lambda: bridge_node(shared_cluster, "bridge-uplink") is None, 30, "cut")
    ha.publish(command, "on while cut")
    agent.publish(state, "ON while cut", retain=True)
    agent.publish(state, "OFF while cut", retain=True)
    assert agent.count(command, "on while cut") == 0

    link.restore()
    agent.wait(command, "on while cut", within=30)
    ha.wait(state, "OFF while cut", within=30)
    flush(ha, agent, node)
    assert agent.count(command, "on while cut") == 1
    assert (ha.count(state, "ON while cut"), ha.count(state, "OFF while cut")) == (0, 1)


def test_the_bridge_moves_to_a_live_node_when_its_node_dies(
    own_cluster: fleet.Fleet, site: StartSite, peer: MakePeer
) -> None:
    """kill -9 of the node under the bridge (found in the nodes' /connz): the bridge moves to
    another (``address`` with ``round_robin``); a command published meanwhile and a new one
    reach the agent, its states reach HA, and the cluster serves its latest retained state to a
    new subscriber (QoS 0, as HA). HA sits on n1 (HAProxy ``balance first``); the bridge lists
    n2 first, so the kill is the bridge's alone."""
    node = "kiosk-failover"
    addresses = own_cluster.brokers[1:] + own_cluster.brokers[:1]
    broker = _bridged(
        own_cluster, site, "failover", node, documented_bridge(addresses, "failover", node)
    )
    ha = _ha(own_cluster, peer, "ha-failover")
    agent = _agent(broker.port, node, peer)
    state, command = f"{PREFIX}/{node}/bay-1/state", f"{PREFIX}/{node}/bay-1/set"
    agent.publish(state, "ON before", retain=True)
    ha.wait(state, "ON before")

    first = bridge_node(own_cluster, "bridge-failover")
    assert first is not None
    own_cluster.kill(own_cluster.nodes.index(first))
    ha.publish(command, "on after kill")
    agent.publish(state, "ON after kill", retain=True)

    fleet.wait_for(
        lambda: bridge_node(own_cluster, "bridge-failover") not in (None, first),
        FAILOVER_S,
        "bridge on a live node",
    )
    agent.wait(command, "on after kill", within=FAILOVER_S)
    ha.wait(state, "ON after kill", within=FAILOVER_S)
    ha.publish(command, "on again")
    agent.wait(command, "on again", within=FAILOVER_S)
    agent.publish(state, "ON again", retain=True)
    ha.wait(state, "ON again", within=FAILOVER_S)
    try:
        fleet.wait_for(
            lambda: fleet.retained(own_cluster.port, state, qos=0) == b"ON again",
            RETAINED_S,
            "the agent's latest retained state served by the cluster",
        )
    except TimeoutError:
        served = fleet.retained(own_cluster.port, state, qos=0)
        if served in (b"ON before", b"ON after kill"):
            # Measured in about one manual run in five (docs/fleet.md): a NATS defect, not ours.
            pytest.xfail(f"NATS served an older retained state after a node died: {served!r}")
        raise
