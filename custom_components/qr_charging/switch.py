"""A switch per bay: on while a session runs; the owner turns it on for a free session.

Only admins (and automations) may turn it: on gives free power, off may refund a customer.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bay_owner import async_start_owner, async_stop
from .ending_rules import RefundMode
from .entity import QrChargingEntity, add_bay_entities
from .errors import translated
from .hub import QrChargingConfigEntry
from .services import async_check_admin

PARALLEL_UPDATES = 1

CHARGING = SwitchEntityDescription(key="charging", translation_key="charging")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: QrChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the switch of every bay."""
    add_bay_entities(entry, async_add_entities, lambda runner: [QrChargingSwitch(runner, CHARGING)])


class QrChargingSwitch(QrChargingEntity, SwitchEntity):
    """On while the bay has a session (paid, starting or powered)."""

    @property
    def is_on(self) -> bool:
        """Whether a session runs."""
        return self.runner.session is not None

    @translated
    async def async_turn_on(self, **kwargs: Any) -> None:
        """Give an owner session of the bay's default length (nothing if one runs)."""
        await async_check_admin(self.hass, self._context)
        if self.runner.session is None:
            await async_start_owner(self.runner, self.runner.bay.default_minutes)

    @translated
    async def async_turn_off(self, **kwargs: Any) -> None:
        """Stop the running session, refunding a paying customer the unserved share."""
        await async_check_admin(self.hass, self._context)
        if self.runner.session is not None:
            await async_stop(self.runner, RefundMode.PRORATA)
