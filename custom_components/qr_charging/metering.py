"""A metered bay's settings, and what a payment buys of energy. Plain Python, no imports of ours.

``catalog`` builds bays and plans with these; ``energy_rules`` counts and refunds.
"""

from __future__ import annotations

from dataclasses import dataclass

# Vehicle full: power below this many W for the settle minutes, after the grace minutes.
DEFAULT_FULL_BELOW_W = 10
DEFAULT_FULL_SETTLE_MIN = 3
DEFAULT_FULL_GRACE_MIN = 2
MAX_FULL_BELOW_W = 1000
MAX_FULL_MINUTES = 60
# A switch bay's plug's rated maximum power (W): 32 A at 230 V unless set; a counter rising
# faster is a lying meter. From a 100 W socket to a 22 kW three-phase charger.
DEFAULT_MAX_POWER_W = 7400
MIN_MAX_POWER_W = 100
MAX_MAX_POWER_W = 22_000
# The most energy one session counts in a bay's totals (Energy sold): 22 kW for a whole day.
# A figure beyond (a lying meter) never reaches the totals, nor overflows SQLite's integers.
MAX_SESSION_WH = 22_000 * 24
# A per-kWh plan's price per kWh, at most ₹100 (well above any tariff: a typo guard).
MAX_PRICE_PER_KWH_PAISE = 10_000
# The most one per-kWh purchase may cost: ₹10,000.
MAX_ENERGY_AMOUNT_PAISE = 1_000_000


def energy_wh_for(paise: int, price_per_kwh_paise: int) -> int:
    """Wh that ``paise`` buy at ``price_per_kwh_paise``: rounded up, in the customer's favour.

    Integers only: ``ceil(paise * 1000 / price)``.
    """
    return -(-paise * 1000 // price_per_kwh_paise)


@dataclass(frozen=True, slots=True)
class Metering:
    """A bay form's metering settings: a switch bay's sensors, vehicle full, pro rata."""

    power_sensor: str | None = None
    energy_sensor: str | None = None
    full_below_w: int = DEFAULT_FULL_BELOW_W
    full_settle_min: int = DEFAULT_FULL_SETTLE_MIN
    full_grace_min: int = DEFAULT_FULL_GRACE_MIN
    prorata: bool = True
    max_power_w: int = DEFAULT_MAX_POWER_W


# Each number's range, and the form's error key outside it.
_RANGES = (
    ("full_below_w", 0, MAX_FULL_BELOW_W, "invalid_full_below"),
    ("full_settle_min", 0, MAX_FULL_MINUTES, "invalid_full_minutes"),
    ("full_grace_min", 0, MAX_FULL_MINUTES, "invalid_full_minutes"),
    ("max_power_w", MIN_MAX_POWER_W, MAX_MAX_POWER_W, "invalid_max_power"),
)


def metering_problem(meter: Metering, *, on_agent: bool) -> tuple[str, str] | None:
    """What is wrong with the settings, as (form field, error key); None when they are fine.

    Sensors only for a switch bay (an agent has its own meter), each a ``sensor`` entity, and
    both or neither: vehicle full needs the power, the energy sold needs the counter.
    """
    if on_agent and (meter.power_sensor or meter.energy_sensor):
        return ("energy_sensor", "meter_on_agent")
    for name in ("power_sensor", "energy_sensor"):
        value = getattr(meter, name)
        if value is not None and not value.startswith("sensor."):
            return (name, "sensor_required")
    if bool(meter.power_sensor) != bool(meter.energy_sensor):
        return ("energy_sensor", "meter_needs_both")
    for name, low, high, error in _RANGES:
        if not low <= getattr(meter, name) <= high:
            return (name, error)
    return None
