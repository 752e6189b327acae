"""A bay's agent connectivity (its MQTT agent or HA switch reachable); a site open or closed."""

from __future__ import annotations

import time

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bay_runner import BayRunner
from .devices import async_update_agent_device
from .drivers.base import AgentInfo
from .entity import QrChargingEntity, add_bay_entities
from .hub import QrChargingConfigEntry
from .site_entity import SiteEntity, add_site_entities

PARALLEL_UPDATES = 0

AGENT = BinarySensorEntityDescription(
    key="agent",
    translation_key="agent",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)

# No device class: HA's ``opening`` is a door's or a window's (area cards count it as one left
# open); the states read "Open" / "Closed" through the translation instead.
SITE_OPEN = BinarySensorEntityDescription(key="open", translation_key="site_open")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: QrChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the connectivity sensor of every bay and the open sensor of every site."""
    add_bay_entities(
        entry, async_add_entities, lambda runner: [QrChargingAgentConnectivity(runner, AGENT)]
    )
    add_site_entities(
        entry, async_add_entities, lambda clock: [QrChargingSiteOpen(clock, entry, SITE_OPEN)]
    )


class QrChargingSiteOpen(SiteEntity, BinarySensorEntity):
    """On while the site is open (its opening hours, in its time zone): it sells then."""

    @property
    def is_on(self) -> bool:
        """Whether the site is open now."""
        return self.clock.is_open(time.time())


class QrChargingAgentConnectivity(QrChargingEntity, BinarySensorEntity):
    """On while the bay's agent is online; itself always available.

    It also keeps the agent's device up to date when the agent announces a new name or
    software version (its retained config message).
    """

    available_offline = True

    def __init__(self, runner: BayRunner, description: BinarySensorEntityDescription) -> None:
        super().__init__(runner, description)
        self._agent: AgentInfo | None = runner.driver.agent

    @property
    def is_on(self) -> bool:
        """Whether the agent is online."""
        return self.runner.driver.online

    @callback
    def _handle_bay_update(self) -> None:
        agent = self.runner.driver.agent
        if agent is not None and agent != self._agent:
            async_update_agent_device(self.hass, self.runner.entry, agent)
        self._agent = agent
        super()._handle_bay_update()
