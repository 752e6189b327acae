"""Energy meters: what a bay's meter reads, from a real PZEM-004T or a mock charging curve.

A meter gives a :class:`Reading` (power now, the meter's own energy counter) or raises
:class:`MeterFault`. Whether a reading is plausible (finite, non-negative, not above the
bay's rating) is judged by :mod:`pi_mqtt_relay.energy_rules`, not here: a meter reports what
it got, so that a lying meter is named as such rather than hidden.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .config import PZEM_GENERAL_ADDRESS, BayConfig

# The PZEM-004T v3 speaks Modbus RTU at 9600 baud, 8 data bits, no parity, 1 stop bit.
PZEM_BAUDRATE = 9600
# Input registers 0x0000..0x0009: voltage, current (2), power (2), energy (2), frequency,
# power factor, alarm.
PZEM_REGISTERS = 10
# A PZEM-004T answers in about 50 ms; a reply later than this is a fault of this poll.
PZEM_TIMEOUT_S = 0.5


class MeterFault(Exception):
    """No usable answer from the meter this time (timeout, bad frame, port error)."""


@dataclass(frozen=True)
class Reading:
    """One answer of a meter: power now (W) and its energy counter (Wh)."""

    power_w: float
    energy_wh: float


class Meter(Protocol):
    """What the agent needs of a meter."""

    def read(self, mono: float) -> Reading:
        """Read the meter now (``mono``: the agent's monotonic clock); raises MeterFault."""
        ...

    def load_switched(self, on: bool, mono: float) -> None:
        """The bay's relay switched (a real meter sees that itself; a mock needs telling)."""
        ...

    def close(self) -> None:
        """Release the port (the last meter of a shared bus closes it)."""
        ...


@dataclass(frozen=True)
class PzemValues:
    """The decoded input registers of a PZEM-004T v3."""

    voltage_v: float
    current_a: float
    power_w: float
    energy_wh: float
    frequency_hz: float
    power_factor: float
    alarm: bool


def _u32(low: int, high: int) -> int:
    """The PZEM-004T sends 32-bit values low word first."""
    return low | (high << 16)


def decode_pzem(registers: Sequence[int]) -> PzemValues:
    """Decode registers 0x0000..0x0009 (units per the PZEM-004T v3 datasheet)."""
    if len(registers) != PZEM_REGISTERS:
        raise MeterFault(f"expected {PZEM_REGISTERS} registers, got {len(registers)}")
    r = registers
    return PzemValues(
        voltage_v=r[0] * 0.1,
        current_a=_u32(r[1], r[2]) * 0.001,
        power_w=_u32(r[3], r[4]) * 0.1,
        energy_wh=float(_u32(r[5], r[6])),
        frequency_hz=r[7] * 0.1,
        power_factor=r[8] * 0.01,
        alarm=r[9] != 0,
    )


class SerialBus:
    """One RS-485/UART port and its Modbus client, shared by every meter on it.

    Modbus RTU is one question at a time on a line, so a lock serialises the meters.
    pymodbus is imported here, only for an agent with such a meter: it adds about 3.5 MB to
    the agent's memory.
    """

    def __init__(self, port: str, *, timeout: float = PZEM_TIMEOUT_S) -> None:
        from pymodbus.client import ModbusSerialClient  # noqa: PLC0415 - see the docstring

        # pymodbus logs an error for every unanswered request; the agent logs when a meter
        # stops and starts answering instead (and each fault at DEBUG).
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        self.port = port
        self.users = 0
        self._lock = threading.Lock()
        self._client = ModbusSerialClient(
            port,
            baudrate=PZEM_BAUDRATE,
            bytesize=8,
            parity="N",
            stopbits=1,
            timeout=timeout,
            # A failed poll is simply the next poll's business; retrying here would only
            # delay the other meters on the line.
            retries=0,
        )

    def read_input_registers(self, address: int, count: int) -> list[int]:
        """Read ``count`` input registers from 0 of the device at ``address``."""
        from pymodbus.exceptions import ModbusException  # noqa: PLC0415 - loaded with the client

        with self._lock:
            try:
                if not self._client.connected and not self._client.connect():
                    raise MeterFault(f"cannot open {self.port}")
                response = self._client.read_input_registers(0, count=count, device_id=address)
            except (ModbusException, OSError, ValueError) as err:
                # A broken link is reopened on the next poll.
                self._client.close()  # type: ignore[no-untyped-call]
                raise MeterFault(f"{self.port} address {address}: {err}") from err
        if response.isError():
            raise MeterFault(f"{self.port} address {address}: Modbus error {response}")
        return list(response.registers)

    def close(self) -> None:
        """Close the port."""
        with self._lock:
            self._client.close()  # type: ignore[no-untyped-call]


class Pzem004t:
    """A PZEM-004T v3 at ``address`` on a :class:`SerialBus`.

    Its energy counter is never reset by the agent (no function 0x42): a session counts the
    counter's increases, so a reset is not needed, and not resetting keeps the owner's
    lifetime total on the meter's display and leaves the bus with reads only.
    """

    def __init__(self, bus: SerialBus, address: int = PZEM_GENERAL_ADDRESS) -> None:
        self.bus = bus
        self.address = address
        bus.users += 1

    def read_values(self) -> PzemValues:
        """Every register, decoded."""
        return decode_pzem(self.bus.read_input_registers(self.address, PZEM_REGISTERS))

    def read(self, mono: float) -> Reading:
        """Power and energy counter now (the meter keeps its own time)."""
        values = self.read_values()
        return Reading(power_w=values.power_w, energy_wh=values.energy_wh)

    def load_switched(self, on: bool, mono: float) -> None:
        """The meter measures the load itself."""

    def close(self) -> None:
        """Release this meter; the port closes with its last meter."""
        self.bus.users -= 1
        if self.bus.users <= 0:
            self.bus.close()


@dataclass(frozen=True)
class ChargingCurve:
    """A charger's draw as a function of the energy it has taken.

    ``power_w`` until ``taper_at_wh``, then down to ``standby_w`` over ``taper_wh``, then
    ``standby_w`` (the near-zero draw of a full battery).
    """

    power_w: float = 3000.0
    taper_at_wh: float = 500.0
    taper_wh: float = 100.0
    standby_w: float = 2.0

    def power(self, delivered_wh: float) -> float:
        """The draw after ``delivered_wh`` of this charge."""
        if delivered_wh < self.taper_at_wh:
            return self.power_w
        into = delivered_wh - self.taper_at_wh
        if into >= self.taper_wh:
            return self.standby_w
        return self.power_w + (self.standby_w - self.power_w) * into / self.taper_wh


class MockMeter:
    """A meter on a simulated vehicle: draws along a :class:`ChargingCurve` while powered.

    Energy is integrated over the agent's monotonic clock (time passed in), in steps of at
    most ``MAX_STEP_S`` so a slow poll still follows the curve. A new charge (the load
    switched on) starts the curve again; the counter keeps counting, as a real one does.
    """

    MAX_STEP_S = 1.0

    def __init__(self, curve: ChargingCurve, *, counter_wh: float = 0.0) -> None:
        # Read by the meter thread, switched by whichever thread applies a decision.
        self._lock = threading.Lock()
        self.curve = curve
        self.counter_wh = counter_wh
        self._charge_wh = 0.0
        self._on = False
        self._last: float | None = None

    def _advance(self, mono: float) -> None:
        if self._on and self._last is not None:
            elapsed = max(0.0, mono - self._last)
            while elapsed > 0:
                step = min(elapsed, self.MAX_STEP_S)
                wh = self.curve.power(self._charge_wh) * step / 3600.0
                self._charge_wh += wh
                self.counter_wh += wh
                elapsed -= step
        self._last = mono

    def load_switched(self, on: bool, mono: float) -> None:
        """The bay's relay switched at ``mono``: the draw starts (a new charge) or stops."""
        with self._lock:
            self._advance(mono)
            if on and not self._on:
                self._charge_wh = 0.0
            self._on = on

    def read(self, mono: float) -> Reading:
        """The draw and the counter at ``mono``."""
        with self._lock:
            self._advance(mono)
            power = self.curve.power(self._charge_wh) if self._on else 0.0
            return Reading(power_w=power, energy_wh=self.counter_wh)

    def close(self) -> None:
        """Nothing to release."""


def build_meters(bays: Sequence[BayConfig]) -> dict[str, Meter]:
    """The meter of each bay that has one; meters on the same port share its bus."""
    buses: dict[str, SerialBus] = {}
    meters: dict[str, Meter] = {}
    for bay in bays:
        config = bay.meter
        if config is None:
            continue
        if config.kind == "mock":
            curve = ChargingCurve(
                power_w=config.power_w,
                taper_at_wh=config.taper_at_wh,
                taper_wh=config.taper_wh,
                standby_w=config.standby_w,
            )
            meters[bay.id] = MockMeter(curve)
        else:
            assert config.port is not None  # the config requires it for a pzem004t
            bus = buses.setdefault(config.port, SerialBus(config.port))
            meters[bay.id] = Pzem004t(bus, config.address)
    return meters
