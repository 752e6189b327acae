"""A switch bay's meter: HA counts a session's energy from its plug's sensors (issue #24).

The rules are plain Python in ``energy_rules`` (counting over resets and glitches within the
plug's rated maximum power, vehicle full, silence, energy reached); this only follows the
power and energy sensors' states, and a tick every ``TICK_S`` for what time alone decides
(vehicle full, a silent meter), and tells the driver when the session must end. The energy
sensor's unit is read from the entity (Wh, kWh, MWh).

Silence is read from the sensors' ``last_reported`` (both HA lines have it): a report of either
sensor, the power or the energy, an unchanged value again too, is a sign of life (an energy
sensor that reports only on change moves every 6 minutes at 100 W); a meter of which neither
says anything for 60 s while on (or both unavailable) is ``meter_silent``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State, callback
from homeassistant.helpers.event import async_track_state_change_event, async_track_time_interval
from homeassistant.util import dt as dt_util

from ..energy_rules import (
    METER_BACKWARDS,
    METER_INVALID,
    METER_SILENT,
    VEHICLE_FULL,
    EnergyCount,
    FullRule,
    MeterBackwards,
    below_since,
    count,
    session_end,
    silent,
    vehicle_full,
)
from ..metering import DEFAULT_MAX_POWER_W

TICK_S = 10
# A reading in one of these units, as Wh (energy) or W (power).
ENERGY_UNITS = {"Wh": 1.0, "kWh": 1000.0, "MWh": 1_000_000.0}
POWER_UNITS = {"W": 1.0, "kW": 1000.0}
NO_READING = (STATE_UNAVAILABLE, STATE_UNKNOWN)


class BadReading(ValueError):
    """A sensor's state that is no number in a known unit."""


def reading(state: State | None, units: dict[str, float]) -> float | None:
    """A sensor's value in Wh or W; None when it has none (unavailable, unknown)."""
    if state is None or state.state in NO_READING:
        return None
    factor = units.get(str(state.attributes.get(ATTR_UNIT_OF_MEASUREMENT)))
    try:
        value = float(state.state)
    except ValueError as err:
        raise BadReading(state.state) from err
    if factor is None:
        raise BadReading(state.attributes.get(ATTR_UNIT_OF_MEASUREMENT))
    return value * factor


class SwitchMeter:
    """Counts one session at a time; ``on_end(session, reason)`` when it must end."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        power_entity: str,
        energy_entity: str,
        full: FullRule,
        max_power_w: float = DEFAULT_MAX_POWER_W,
        on_end: Callable[[str, str], None],
        on_reading: Callable[[], None],
    ) -> None:
        self.hass = hass
        self.power_entity, self.energy_entity = power_entity, energy_entity
        self.full, self.max_power_w = full, max_power_w
        self._on_end, self._on_reading = on_end, on_reading
        self.session_id: str | None = None
        self.paid_wh: int | None = None
        self._counted: tuple[str, EnergyCount | None] | None = None
        self._started = 0.0
        self._below: float | None = None
        # When either sensor last reported a reading (its ``last_reported``).
        self._heard: float | None = None
        self._unsubscribe: list[Callable[[], None]] = []

    @property
    def power_w(self) -> float | None:
        """The plug's power now (W), if it says."""
        try:
            return reading(self.hass.states.get(self.power_entity), POWER_UNITS)
        except BadReading:
            return None

    def energy_wh(self, session_id: str) -> float | None:
        """The energy counted for a session (the running one, or the one that just ended)."""
        if self._counted is None or self._counted[0] != session_id:
            return None
        return self._counted[1].counted_wh if self._counted[1] is not None else 0.0

    def last_wh(self, session_id: str) -> float | None:
        """The counter reading the session's count goes with (None before the first)."""
        if self._counted is None or self._counted[0] != session_id or self._counted[1] is None:
            return None
        return self._counted[1].last_wh

    @callback
    def start(
        self, session_id: str, paid_wh: int | None, counted: EnergyCount | None = None
    ) -> None:
        """Count a session from now (a top-up of it: only its energy paid for grows).

        ``counted``: after a restart, its count and counter reading as last stored; the next
        reading counts on from them.
        """
        self.paid_wh = paid_wh
        if self.session_id == session_id:
            return
        self.stop()
        self.session_id, self._started = session_id, dt_util.utcnow().timestamp()
        self._below = self._heard = None
        self._counted = (session_id, counted)
        self._energy(self.hass.states.get(self.energy_entity))
        self._unsubscribe = [
            async_track_state_change_event(self.hass, [self.energy_entity], self._energy_changed),
            async_track_state_change_event(self.hass, [self.power_entity], self._power_changed),
            async_track_time_interval(self.hass, self._tick, timedelta(seconds=TICK_S)),
        ]
        self._power(self.hass.states.get(self.power_entity))

    @callback
    def stop(self) -> None:
        """Stop following the sensors (what was counted stays readable)."""
        while self._unsubscribe:
            self._unsubscribe.pop()()
        self.session_id = None

    @callback
    def _end(self, reason: str) -> None:
        if (session_id := self.session_id) is not None:
            self.stop()
            self._on_end(session_id, reason)

    @callback
    def _energy_changed(self, event: Event[EventStateChangedData]) -> None:
        self._energy(event.data["new_state"])

    @callback
    def _energy(self, state: State | None) -> None:
        if self._counted is None or self.session_id is None:
            return
        try:
            value = reading(state, ENERGY_UNITS)
            if value is None or state is None:
                return  # no reading: silence decides
            at = state.last_reported.timestamp()
            counted = count(self._counted[1], value, at, self.max_power_w)
            self._heard_at(at)
        except MeterBackwards:
            self._end(METER_BACKWARDS)
            return
        except ValueError:  # BadReading, or not a finite non-negative number
            self._end(METER_INVALID)
            return
        self._counted = (self.session_id, counted)
        if (reason := session_end(counted.counted_wh, self.paid_wh)) is not None:
            self._end(reason)
        else:
            self._on_reading()

    @callback
    def _power_changed(self, event: Event[EventStateChangedData]) -> None:
        self._power(event.data["new_state"])

    @callback
    def _power(self, state: State | None) -> None:
        try:
            power = reading(state, POWER_UNITS)
        except BadReading:
            self._end(METER_INVALID)
            return
        if power is not None and power < 0:
            self._end(METER_INVALID)
        elif power is not None and state is not None:
            self._heard_at(state.last_reported.timestamp())
            self._below = below_since(self.full, power, self._below, dt_util.utcnow().timestamp())
            self._check(dt_util.utcnow())
            self._on_reading()

    @callback
    def _heard_at(self, at: float) -> None:
        """A sensor reported (``at``): the meter is alive."""
        self._heard = at if self._heard is None else max(self._heard, at)

    @callback
    def _tick(self, now: datetime) -> None:
        self._check(now)

    @callback
    def _check(self, now: datetime) -> None:
        """What time decides: the vehicle full, or a meter silent too long."""
        at = now.timestamp()
        if vehicle_full(self.full, self._started, self._below, at):
            self._end(VEHICLE_FULL)
            return
        if self._heard is not None:
            # The same value reported again changes no state, but is news of the meter.
            for entity_id in (self.energy_entity, self.power_entity):
                state = self.hass.states.get(entity_id)
                if state is not None and state.state not in NO_READING:
                    self._heard_at(state.last_reported.timestamp())
        if silent(self._heard, self._started, at):
            self._end(METER_SILENT)
