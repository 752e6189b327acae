"""A bay that is any HA switch (smart plug, Tasmota or Shelly relay): HA keeps the deadline."""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event

from .base import BayDriver, BayReport

SWITCH_DOMAIN = "switch"


class SwitchEntityDriver(BayDriver):
    """Turns a switch entity on and off; the switch cannot keep time, so HA does."""

    def __init__(
        self,
        hass: HomeAssistant,
        bay_id: str,
        on_report: Callable[[BayReport], None],
        on_change: Callable[[], None],
        *,
        entity_id: str,
    ) -> None:
        super().__init__(hass, bay_id, on_report, on_change)
        self.entity_id = entity_id
        self._session: str | None = None
        self._until: float | None = None
        self._unsubscribe: Callable[[], None] | None = None

    async def async_setup(self) -> None:
        """Follow the switch's state."""
        self._unsubscribe = async_track_state_change_event(
            self.hass, [self.entity_id], self._state_changed
        )
        self._apply(self.hass.states.get(self.entity_id))

    async def async_unload(self) -> None:
        """Stop following it."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    @property
    def parent_device_id(self) -> str | None:
        """The switch's own device, to link the bay to it."""
        entry = er.async_get(self.hass).async_get(self.entity_id)
        return entry.device_id if entry else None

    def resume(self, session_id: str, until: float) -> None:
        """Remember the session the switch is serving (HA restarted mid-session)."""
        self._session, self._until = session_id, until

    @callback
    def _state_changed(self, event: Event[EventStateChangedData]) -> None:
        self._apply(event.data["new_state"])

    @callback
    def _apply(self, state: State | None) -> None:
        online = state is not None and state.state not in (STATE_UNAVAILABLE, STATE_UNKNOWN)
        if online != self.online:
            self.online = online
            self._on_change()
        if not online or state is None:
            return
        powered = state.state == STATE_ON
        if not powered:
            self._session = self._until = None
        self._on_report(BayReport(powered, self._session, self._until, "switch"))

    async def _call(self, service: str) -> None:
        await self.hass.services.async_call(
            SWITCH_DOMAIN, service, {ATTR_ENTITY_ID: self.entity_id}, blocking=True
        )

    async def async_turn_on(
        self, session_id: str, until: float, duration: int, sent: float, energy_wh: float | None
    ) -> None:
        """Switch on for a session; a switch already on for it (a top-up) needs nothing."""
        self._session, self._until = session_id, until
        state = self.hass.states.get(self.entity_id)
        if state is not None and state.state == STATE_ON:
            self._on_report(BayReport(True, session_id, until, "switch"))
            return
        await self._call(SERVICE_TURN_ON)

    async def async_turn_off(self, session_id: str | None) -> None:
        """Switch off, unless another session has taken the bay since."""
        if session_id is not None and self._session not in (None, session_id):
            return
        self._session = self._until = None
        await self._call(SERVICE_TURN_OFF)
