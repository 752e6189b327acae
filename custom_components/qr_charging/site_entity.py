"""The base of a site's entities: its device; refreshed at its edges and its bays' changes."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .devices import site_device_info, site_subentry_id
from .hub import QrChargingConfigEntry
from .site_clock import SiteClock


class SiteEntity(Entity):
    """An entity of one site: its device belongs to the site's subentry (or the entry)."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self, clock: SiteClock, entry: QrChargingConfigEntry, description: EntityDescription
    ) -> None:
        self.clock = clock
        self.entity_description = description
        self._attr_unique_id = f"{entry.entry_id}/site/{clock.site.site_id}_{description.key}"
        self._attr_device_info = site_device_info(entry, clock.site)

    async def async_added_to_hass(self) -> None:
        """Follow the site's openings and closings and each of its bays' changes."""
        await super().async_added_to_hass()
        for signal in self.clock.signals:
            self.async_on_remove(
                async_dispatcher_connect(self.hass, signal, self._handle_site_update)
            )

    @callback
    def _handle_site_update(self) -> None:
        self.async_write_ha_state()


def add_site_entities(
    entry: QrChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make: Callable[[SiteClock], Iterable[SiteEntity]],
) -> None:
    """Add each site's entities, with its device, to the site's subentry (or to the entry)."""
    for clock in entry.runtime_data.sites.values():
        async_add_entities(make(clock), config_subentry_id=site_subentry_id(entry, clock.site))
