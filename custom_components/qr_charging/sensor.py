"""Sensors of a bay: status, session end, time remaining, revenue and sessions served.

An owner with a GSTIN has the month's tax totals (taxable value, CGST, SGST, IGST) on the
account's tax device.

Each site has its powered bays and the power in use (their rated power, what the load cap
counts), and where it has bays that may be metered, the power they measure.

A bay that may be metered (an agent's, whose config names a meter, or a switch bay with a
power and an energy sensor) also has power, this session's energy and the energy it sold:
the last a ``total_increasing`` energy sensor the Energy dashboard can use.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import UnitOfEnergy, UnitOfPower, UnitOfTime
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_time_interval

from .bay_runner import BayRunner, BayStatus
from .catalog import (
    CURRENCY,
    paise_to_rupees,
)
from .devices import tax_device_info
from .entity import QrChargingEntity, add_bay_entities
from .hub import QrChargingConfigEntry
from .session_rules import remaining_s
from .site_clock import SiteClock
from .site_entity import SiteEntity, add_site_entities
from .tax import Split
from .tax_month import TaxMonth

PARALLEL_UPDATES = 0

# The time remaining is shown in whole minutes, so it is refreshed once a minute.
TICK = timedelta(minutes=1)


def _session_end(runner: BayRunner) -> datetime | None:
    session = runner.session
    if session is None or session.until is None:
        return None
    return datetime.fromtimestamp(session.until, UTC)


def _minutes_remaining(runner: BayRunner) -> int:
    session = runner.session
    if session is None:
        return 0
    # Rounded up: a session with 20 seconds left still has "1 minute" to go.
    return math.ceil(remaining_s(session, time.time()) / 60)


def _revenue(runner: BayRunner) -> Decimal:
    # Rupees with two decimals, from integer paise: no float rounding.
    return paise_to_rupees(runner.totals.revenue_paise)


@dataclass(frozen=True, kw_only=True)
class QrChargingSensorEntityDescription(SensorEntityDescription):
    """A bay sensor and how to read it from the bay's runner."""

    value_fn: Callable[[BayRunner], datetime | Decimal | float | str | None]


STATUS = QrChargingSensorEntityDescription(
    key="status",
    translation_key="status",
    device_class=SensorDeviceClass.ENUM,
    options=[status.value for status in BayStatus],
    value_fn=lambda runner: runner.status.value,
)
SESSION_END = QrChargingSensorEntityDescription(
    key="session_end",
    translation_key="session_end",
    device_class=SensorDeviceClass.TIMESTAMP,
    value_fn=_session_end,
)
TIME_REMAINING = QrChargingSensorEntityDescription(
    key="time_remaining",
    translation_key="time_remaining",
    device_class=SensorDeviceClass.DURATION,
    native_unit_of_measurement=UnitOfTime.MINUTES,
    suggested_display_precision=0,
    value_fn=_minutes_remaining,
    # A new state each minute of every session, which the recorder keeps; the session end
    # (a timestamp, which dashboards show as "in 14 minutes") says the same without it.
    entity_registry_enabled_default=False,
)
REVENUE = QrChargingSensorEntityDescription(
    key="revenue",
    translation_key="revenue",
    device_class=SensorDeviceClass.MONETARY,
    # HA allows only "total" for monetary sensors; refunds make revenue go down, too.
    state_class=SensorStateClass.TOTAL,
    native_unit_of_measurement=CURRENCY,
    suggested_display_precision=2,
    value_fn=_revenue,
)
SESSIONS = QrChargingSensorEntityDescription(
    key="sessions",
    translation_key="sessions",
    state_class=SensorStateClass.TOTAL_INCREASING,
    value_fn=lambda runner: runner.totals.sessions,
)
SENSORS = (STATUS, SESSION_END, TIME_REMAINING, REVENUE, SESSIONS)


def _session_energy(runner: BayRunner) -> Decimal:
    """The bay's meter's figure for its session; the one stored (an HA restart) until then."""
    session = runner.session
    energy = runner.driver.energy_for(session.session_id) if session is not None else None
    if energy is None and session is not None:
        energy = session.energy_used_wh
    return (Decimal(str(energy or 0)) / 1000).quantize(Decimal("0.001"))


POWER = QrChargingSensorEntityDescription(
    key="power",
    translation_key="power",
    device_class=SensorDeviceClass.POWER,
    state_class=SensorStateClass.MEASUREMENT,
    native_unit_of_measurement=UnitOfPower.WATT,
    suggested_display_precision=0,
    value_fn=lambda runner: runner.driver.power_w,
)
SESSION_ENERGY = QrChargingSensorEntityDescription(
    key="session_energy",
    translation_key="session_energy",
    device_class=SensorDeviceClass.ENERGY,
    native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
    suggested_display_precision=3,
    value_fn=_session_energy,
)
ENERGY_SOLD = QrChargingSensorEntityDescription(
    key="energy_sold",
    translation_key="energy_sold",
    device_class=SensorDeviceClass.ENERGY,
    state_class=SensorStateClass.TOTAL_INCREASING,
    native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
    suggested_display_precision=3,
    value_fn=lambda runner: Decimal(runner.totals.energy_wh) / 1000,
)
METER_SENSORS = (POWER, SESSION_ENERGY, ENERGY_SOLD)


def _sensors(runner: BayRunner) -> list[QrChargingSensor]:
    descriptions = SENSORS + (METER_SENSORS if runner.bay.may_meter else ())
    return [_SENSOR_CLASSES.get(d.key, QrChargingSensor)(runner, d) for d in descriptions]


@dataclass(frozen=True, kw_only=True)
class SiteSensorEntityDescription(SensorEntityDescription):
    """A site sensor and how to read it from the site."""

    value_fn: Callable[[SiteClock], float | None]


POWERED_BAYS = SiteSensorEntityDescription(
    key="powered_bays",
    translation_key="powered_bays",
    state_class=SensorStateClass.MEASUREMENT,
    value_fn=lambda clock: clock.powered_bays(),
)
POWER_IN_USE = SiteSensorEntityDescription(
    key="power_in_use",
    translation_key="power_in_use",
    device_class=SensorDeviceClass.POWER,
    state_class=SensorStateClass.MEASUREMENT,
    native_unit_of_measurement=UnitOfPower.WATT,
    suggested_display_precision=0,
    value_fn=lambda clock: clock.power_in_use_w(),
)
MEASURED_POWER = SiteSensorEntityDescription(
    key="measured_power",
    translation_key="measured_power",
    device_class=SensorDeviceClass.POWER,
    state_class=SensorStateClass.MEASUREMENT,
    native_unit_of_measurement=UnitOfPower.WATT,
    suggested_display_precision=0,
    value_fn=lambda clock: clock.measured_w(),
)


def _site_sensors(clock: SiteClock, entry: QrChargingConfigEntry) -> list[SiteEntity]:
    descriptions = [POWERED_BAYS, POWER_IN_USE]
    if clock.metered_runners():
        descriptions.append(MEASURED_POWER)
    return [QrChargingSiteSensor(clock, entry, d) for d in descriptions]


@dataclass(frozen=True, kw_only=True)
class TaxSensorEntityDescription(SensorEntityDescription):
    """One of the month's tax totals and its amount (paise) in the totals."""

    value_fn: Callable[[Split], int]
    device_class: SensorDeviceClass = SensorDeviceClass.MONETARY
    # Monetary: HA allows only "total"; credit notes take the month's figures down.
    state_class: SensorStateClass = SensorStateClass.TOTAL
    native_unit_of_measurement: str = CURRENCY
    suggested_display_precision: int = 2


TAX_TAXABLE_VALUE = TaxSensorEntityDescription(
    key="taxable_value", translation_key="taxable_value", value_fn=lambda s: s.taxable
)
TAX_CGST = TaxSensorEntityDescription(key="cgst", translation_key="cgst", value_fn=lambda s: s.cgst)
TAX_SGST = TaxSensorEntityDescription(key="sgst", translation_key="sgst", value_fn=lambda s: s.sgst)
TAX_IGST = TaxSensorEntityDescription(key="igst", translation_key="igst", value_fn=lambda s: s.igst)
TAX_SENSORS = (TAX_TAXABLE_VALUE, TAX_CGST, TAX_SGST, TAX_IGST)


class QrChargingTaxSensor(SensorEntity):
    """One of the current month's tax totals (IST), on the account's tax device."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    entity_description: TaxSensorEntityDescription

    def __init__(
        self,
        month: TaxMonth,
        entry: QrChargingConfigEntry,
        description: TaxSensorEntityDescription,
    ) -> None:
        self.month = month
        self.entity_description = description
        self._attr_unique_id = f"{entry.entry_id}/tax_{description.key}"
        self._attr_device_info = tax_device_info(entry)

    @property
    def native_value(self) -> Decimal:
        """Rupees with two decimals, from the month's paise."""
        return paise_to_rupees(self.entity_description.value_fn(self.month.totals))

    @property
    def last_reset(self) -> datetime:
        """The month's start: the totals start from nothing then."""
        return self.month.last_reset

    async def async_added_to_hass(self) -> None:
        """Follow the month's totals."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(self.hass, self.month.signal, self.async_write_ha_state)
        )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: QrChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of every bay and every site, and the month's tax with a GSTIN."""
    add_bay_entities(entry, async_add_entities, _sensors)
    add_site_entities(entry, async_add_entities, lambda clock: _site_sensors(clock, entry))
    if (month := entry.runtime_data.tax_month) is not None:
        async_add_entities(QrChargingTaxSensor(month, entry, d) for d in TAX_SENSORS)


class QrChargingSiteSensor(SiteEntity, SensorEntity):
    """A site sensor; the power in use names the site's load cap (W) beside it."""

    entity_description: SiteSensorEntityDescription

    @property
    def native_value(self) -> float | None:
        """Read the value from the site."""
        return self.entity_description.value_fn(self.clock)

    @property
    def available(self) -> bool:
        """The measured power only while one of the site's bays counts energy."""
        if self.entity_description is MEASURED_POWER:
            return any(r.driver.metered for r in self.clock.metered_runners())
        return True

    @property
    def extra_state_attributes(self) -> dict[str, int | None] | None:
        """The load cap beside the power in use (None: no cap), for a "near the cap" warning."""
        if self.entity_description is POWER_IN_USE:
            return {"load_cap_w": self.clock.site.load_cap_w}
        return None


class QrChargingSensor(QrChargingEntity, SensorEntity):
    """A bay sensor."""

    entity_description: QrChargingSensorEntityDescription

    @property
    def native_value(self) -> datetime | Decimal | float | str | None:
        """Read the value from the bay's runner."""
        return self.entity_description.value_fn(self.runner)


class QrChargingMeterSensor(QrChargingSensor):
    """A metered bay's figure: unavailable while the bay has no meter (an old agent)."""

    @property
    def available(self) -> bool:
        """Only while the bay counts energy."""
        return super().available and self.runner.driver.metered


class QrChargingStatusSensor(QrChargingSensor):
    """The bay's status: it says ``offline`` while the bay is, so it stays available."""

    available_offline = True


class QrChargingTimeRemainingSensor(QrChargingSensor):
    """Minutes left of the running session, refreshed each minute while one runs."""

    _unsub_tick: CALLBACK_TYPE | None = None

    async def async_added_to_hass(self) -> None:
        """Start ticking if a session is already running."""
        await super().async_added_to_hass()
        self._update_tick()
        self.async_on_remove(self._stop_tick)

    @callback
    def _handle_bay_update(self) -> None:
        self._update_tick()
        super()._handle_bay_update()

    @callback
    def _update_tick(self) -> None:
        if self.runner.session is None:
            self._stop_tick()
        elif self._unsub_tick is None:
            self._unsub_tick = async_track_time_interval(
                self.hass, self._tick, TICK, cancel_on_shutdown=True
            )

    @callback
    def _tick(self, _now: datetime) -> None:
        self._update_tick()
        self.async_write_ha_state()

    @callback
    def _stop_tick(self) -> None:
        if self._unsub_tick is not None:
            self._unsub_tick()
            self._unsub_tick = None


_SENSOR_CLASSES: dict[str, type[QrChargingSensor]] = {
    STATUS.key: QrChargingStatusSensor,
    TIME_REMAINING.key: QrChargingTimeRemainingSensor,
    **{d.key: QrChargingMeterSensor for d in METER_SENSORS},
}
