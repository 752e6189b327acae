"""A bay that is any HA switch (smart plug, Tasmota or Shelly relay): HA keeps the deadline.

With the plug's power and energy sensors it is metered: HA counts each session's energy
(``switch_meter``) and ends it at the energy paid for, when the vehicle is full, or when the
meter goes silent or lies, as an agent with a meter does.
"""

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

from ..energy_rules import EnergyCount, FullRule
from ..metering import DEFAULT_MAX_POWER_W
from .base import BayDriver, BayReport
from .switch_meter import SwitchMeter

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
        sensors: tuple[str, str] | None = None,
        full: FullRule | None = None,
        max_power_w: float = DEFAULT_MAX_POWER_W,
    ) -> None:
        super().__init__(hass, bay_id, on_report, on_change)
        self.entity_id = entity_id
        self._session: str | None = None
        self._until: float | None = None
        self._unsubscribe: Callable[[], None] | None = None
        # Its meter: the plug's (power, energy) sensors, when the bay has them.
        self._meter: SwitchMeter | None = None
        if sensors is not None and full is not None:
            power, energy = sensors
            self._meter = SwitchMeter(
                hass,
                power_entity=power,
                energy_entity=energy,
                full=full,
                max_power_w=max_power_w,
                on_end=self._meter_end,
                on_reading=on_change,
            )
            self.metered, self.meter = True, energy

    async def async_setup(self) -> None:
        """Follow the switch's state."""
        self._unsubscribe = async_track_state_change_event(
            self.hass, [self.entity_id], self._state_changed
        )
        self._apply(self.hass.states.get(self.entity_id))

    async def async_unload(self) -> None:
        """Stop following it (and its meter)."""
        if self._meter is not None:
            self._meter.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    @property
    def parent_device_id(self) -> str | None:
        """The switch's own device, to link the bay to it."""
        entry = er.async_get(self.hass).async_get(self.entity_id)
        return entry.device_id if entry else None

    def resume(
        self,
        session_id: str,
        until: float,
        energy_wh: float | None = None,
        counted: EnergyCount | None = None,
    ) -> None:
        """Remember the session the switch is serving (HA restarted mid-session).

        Its meter counts on from the count and counter reading last stored (``counted``), so
        what was drawn since, while HA was down too, counts; without them, from now.
        """
        self._session, self._until = session_id, until
        if self._meter is not None:
            paid = None if energy_wh is None else int(energy_wh)
            self._meter.start(session_id, paid, counted)

    def energy_for(self, session_id: str) -> float | None:
        """The energy HA counted for the session (Wh)."""
        return self._meter.energy_wh(session_id) if self._meter is not None else None

    def meter_wh_for(self, session_id: str) -> float | None:
        """The plug's counter reading HA's count of the session goes on from (Wh)."""
        return self._meter.last_wh(session_id) if self._meter is not None else None

    @property
    def power_w(self) -> float | None:
        """The plug's power now (W), when the bay is metered."""
        return self._meter.power_w if self._meter is not None else None

    @callback
    def _meter_end(self, session_id: str, reason: str) -> None:
        """The meter ends the session: reported as a metered agent's ``OFF`` would be."""
        energy = self.energy_for(session_id)
        self._on_report(BayReport(False, session_id, self._until, reason, energy_wh=energy))

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
        if self._meter is not None:
            self._meter.start(session_id, None if energy_wh is None else int(energy_wh))
        state = self.hass.states.get(self.entity_id)
        if state is not None and state.state == STATE_ON:
            self._on_report(BayReport(True, session_id, until, "switch"))
            return
        await self._call(SERVICE_TURN_ON)

    async def async_turn_off(self, session_id: str | None) -> None:
        """Switch off, unless another session has taken the bay since."""
        if session_id is not None and self._session not in (None, session_id):
            return
        if self._meter is not None:
            self._meter.stop()
        self._session = self._until = None
        await self._call(SERVICE_TURN_OFF)
