"""The bay form's metering section (issue #24): a switch bay's sensors, vehicle full, pro rata.

An agent bay's meter is the agent's own (its config names it), so its form asks only for the
vehicle-full rule and the pro-rata option; a switch bay's also for its plug's sensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.data_entry_flow import section
from homeassistant.helpers import selector

from .flow_fields import whole_minutes, whole_number
from .metering import (
    MAX_FULL_BELOW_W,
    MAX_FULL_MINUTES,
    MAX_MAX_POWER_W,
    MIN_MAX_POWER_W,
    Metering,
)
from .relays import DRIVER_SWITCH

SECTION_METER = "meter_options"
CONF_POWER_SENSOR = "power_sensor"
CONF_ENERGY_SENSOR = "energy_sensor"
CONF_MAX_POWER_W = "max_power_w"
CONF_FULL_BELOW_W = "full_below_w"
CONF_FULL_SETTLE_MIN = "full_settle_min"
CONF_FULL_GRACE_MIN = "full_grace_min"
CONF_PRORATA = "prorata"
_FULL_MINUTES = whole_number(0, MAX_FULL_MINUTES, "min")


def _sensor(device_class: str) -> selector.EntitySelector:
    return selector.EntitySelector(
        selector.EntitySelectorConfig(domain="sensor", device_class=device_class)
    )


def meter_section(kind: str) -> section:
    """The metering fields (a switch bay's with its sensors); collapsed."""
    fields: dict[vol.Marker, Any] = {}
    defaults = Metering()
    if kind == DRIVER_SWITCH:
        fields[vol.Optional(CONF_POWER_SENSOR)] = _sensor("power")
        fields[vol.Optional(CONF_ENERGY_SENSOR)] = _sensor("energy")
        fields[vol.Required(CONF_MAX_POWER_W, default=defaults.max_power_w)] = whole_number(
            MIN_MAX_POWER_W, MAX_MAX_POWER_W, "W"
        )
    fields[vol.Required(CONF_FULL_BELOW_W, default=defaults.full_below_w)] = whole_number(
        0, MAX_FULL_BELOW_W, "W"
    )
    fields[vol.Required(CONF_FULL_SETTLE_MIN, default=defaults.full_settle_min)] = _FULL_MINUTES
    fields[vol.Required(CONF_FULL_GRACE_MIN, default=defaults.full_grace_min)] = _FULL_MINUTES
    fields[vol.Optional(CONF_PRORATA, default=True)] = selector.BooleanSelector()
    return section(vol.Schema(fields), {"collapsed": True})


def meter_defaults(data: Mapping[str, Any]) -> dict[str, Any]:
    """The section's values for a stored bay (defaults for what it does not store)."""
    defaults = Metering()
    values = {
        CONF_FULL_BELOW_W: data.get(CONF_FULL_BELOW_W, defaults.full_below_w),
        CONF_FULL_SETTLE_MIN: data.get(CONF_FULL_SETTLE_MIN, defaults.full_settle_min),
        CONF_FULL_GRACE_MIN: data.get(CONF_FULL_GRACE_MIN, defaults.full_grace_min),
        CONF_PRORATA: data.get(CONF_PRORATA, True),
        CONF_MAX_POWER_W: data.get(CONF_MAX_POWER_W, defaults.max_power_w),
    }
    for key in (CONF_POWER_SENSOR, CONF_ENERGY_SENSOR):
        if data.get(key):
            values[key] = data[key]
    return values


def metering(entered: Mapping[str, Any]) -> Metering:
    """The metering settings the form's (flattened) input describes; checked by ``make_bay``."""
    defaults = Metering()
    return Metering(
        power_sensor=entered.get(CONF_POWER_SENSOR) or None,
        energy_sensor=entered.get(CONF_ENERGY_SENSOR) or None,
        full_below_w=whole_minutes(
            CONF_FULL_BELOW_W, entered.get(CONF_FULL_BELOW_W, defaults.full_below_w)
        ),
        full_settle_min=whole_minutes(
            CONF_FULL_SETTLE_MIN, entered.get(CONF_FULL_SETTLE_MIN, defaults.full_settle_min)
        ),
        full_grace_min=whole_minutes(
            CONF_FULL_GRACE_MIN, entered.get(CONF_FULL_GRACE_MIN, defaults.full_grace_min)
        ),
        prorata=bool(entered.get(CONF_PRORATA, True)),
        max_power_w=whole_minutes(
            CONF_MAX_POWER_W, entered.get(CONF_MAX_POWER_W, defaults.max_power_w)
        ),
    )
