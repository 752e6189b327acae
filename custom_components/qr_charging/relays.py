"""How a bay's power is switched: a relay on an agent, or any HA switch. Plain Python."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .catalog_errors import ID_PATTERN, CatalogError

DRIVER_MQTT = "mqtt"
DRIVER_SWITCH = "switch"
DEFAULT_PREFIX = "qr_charging"


@dataclass(frozen=True, slots=True)
class MqttRelay:
    """A relay on a ``pi-mqtt-relay`` agent: ``<prefix>/<node>/<agent_bay>`` on MQTT."""

    node: str
    # None only in data stored before the form filled it in: the agent's bay is the bay's id.
    agent_bay: str | None = None
    prefix: str = DEFAULT_PREFIX
    kind: ClassVar[str] = DRIVER_MQTT


@dataclass(frozen=True, slots=True)
class SwitchRelay:
    """Any Home Assistant switch entity (a smart plug): HA keeps the deadline."""

    entity_id: str
    kind: ClassVar[str] = DRIVER_SWITCH


def agent_identifier(prefix: str, node: str) -> str:
    """The unique id of an agent's discovery flow and its device's identifier.

    One per prefix and node: agents with one node id under two prefixes are two agents.
    Under the default prefix ``agent-<node>``, as before prefixes counted (devices and
    ignored flows keep theirs); under any other ``agent-<prefix>/<node>``. ``/`` is in no
    prefix and no node id (``ID_PATTERN``), so the two shapes never meet and the first
    ``/`` splits the other: node ``site-b-kiosk-1`` under the default is
    ``agent-site-b-kiosk-1``, node ``kiosk-1`` under ``site-b`` is ``agent-site-b/kiosk-1``
    (a ``-`` there would make them one).
    """
    return f"agent-{node}" if prefix == DEFAULT_PREFIX else f"agent-{prefix}/{node}"


def agent_name(prefix: str, name: str) -> str:
    """How an agent is shown (its device, its discovery): its name, then any other prefix."""
    return name if prefix == DEFAULT_PREFIX else f"{name} ({prefix})"


# How a bay's power is switched; a new kind of relay is one more dataclass here.
Relay = MqttRelay | SwitchRelay


def checked_relay(relay: Relay, bay_id: str) -> Relay:
    """A relay's fields checked (field and key name the form's input); the agent's bay filled in."""
    match relay:
        case MqttRelay(node=node, agent_bay=agent_bay, prefix=prefix):
            if not ID_PATTERN.fullmatch(prefix):
                raise CatalogError("prefix", "invalid_id")
            if not ID_PATTERN.fullmatch(node):
                raise CatalogError("node", "invalid_id")
            if agent_bay is not None and not ID_PATTERN.fullmatch(agent_bay):
                raise CatalogError("agent_bay", "invalid_id")
            return MqttRelay(node=node, agent_bay=agent_bay or bay_id, prefix=prefix)
        case SwitchRelay(entity_id=entity_id):
            if not entity_id.startswith("switch."):
                raise CatalogError("switch_entity", "switch_required")
            return relay


def relay_to_data(relay: Relay) -> dict[str, Any]:
    """A relay's stored fields: every kind writes all five, as bays always have (no migration)."""
    match relay:
        case MqttRelay(node=node, agent_bay=agent_bay, prefix=prefix):
            return {
                "driver": DRIVER_MQTT,
                "node": node,
                "agent_bay": agent_bay,
                "prefix": prefix,
                "switch_entity": None,
            }
        case SwitchRelay(entity_id=entity_id):
            return {
                "driver": DRIVER_SWITCH,
                "node": None,
                "agent_bay": None,
                "prefix": DEFAULT_PREFIX,
                "switch_entity": entity_id,
            }


def relay_from_data(data: Mapping[str, Any]) -> Relay:
    """A bay's relay from its stored fields; a bay stored without a driver is on an agent."""
    if data.get("driver") == DRIVER_SWITCH:
        return SwitchRelay(entity_id=data["switch_entity"])
    return MqttRelay(
        node=data["node"],
        agent_bay=data.get("agent_bay"),
        prefix=data.get("prefix") or DEFAULT_PREFIX,
    )


def discovered_bay_ids(prefix: str, node: str, agent_bay: str) -> list[str]:
    """The ids a discovered bay may take, in turn: the agent's, with its node, with its prefix.

    Three sites' ``kiosk-1`` each with a ``bay-1`` need all three.
    """
    ids = [agent_bay, f"{node}-{agent_bay}"]
    if prefix != DEFAULT_PREFIX:
        ids.append(f"{prefix}-{node}-{agent_bay}")
    return ids
