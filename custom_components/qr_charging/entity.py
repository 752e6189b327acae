"""The base of every qr_charging entity: one bay's device, its dispatcher signal, availability."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bay_runner import BayRunner
from .devices import bay_device_info, bay_subentry_id
from .hub import QrChargingConfigEntry


class QrChargingEntity(Entity):
    """An entity of one bay, refreshed whenever its runner signals a change."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    # The one way to keep an entity available while the bay's agent is offline: a subclass
    # that still says something useful then sets this.
    available_offline = False

    def __init__(self, runner: BayRunner, description: EntityDescription) -> None:
        self.runner = runner
        self.entity_description = description
        entry = runner.entry
        self._attr_unique_id = f"{entry.entry_id}_{runner.bay.bay_id}_{description.key}"
        self._attr_device_info = bay_device_info(entry, runner.bay)

    @property
    def available(self) -> bool:
        """Unavailable while the bay's agent (or switch) is offline, unless said otherwise."""
        return self.available_offline or self.runner.driver.online

    async def async_added_to_hass(self) -> None:
        """Follow the bay's changes."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(self.hass, self.runner.signal, self._handle_bay_update)
        )

    @callback
    def _handle_bay_update(self) -> None:
        """The bay changed: write the new state."""
        self.async_write_ha_state()


def add_bay_entities(
    entry: QrChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make: Callable[[BayRunner], Iterable[Entity]],
) -> None:
    """Add each bay's entities to the bay's own config subentry."""
    for runner in entry.runtime_data.bays.runners.values():
        async_add_entities(make(runner), config_subentry_id=bay_subentry_id(entry, runner.bay))
