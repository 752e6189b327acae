"""Simulated PZEM-004T v3 meters on a simulated serial line, for the agent's real serial code.

pymodbus's own Modbus RTU server plays the meters (one device per address, input registers
0x0000..0x0009 filled from :class:`PzemState` at each request). It listens on one
pseudo-terminal; the agent opens another (``port``); a bridge thread copies bytes between
the two pty masters, the way ``socat`` would (it is not installed here), and can go silent
(a meter unplugged), corrupt the meters' answers, or write raw bytes to the agent's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import threading
import tty
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice


@dataclass
class PzemState:
    """What one simulated meter measures; the test sets it, each request reads it."""

    power_w: float = 0.0
    energy_wh: int = 0
    voltage_v: float = 230.0
    requests: int = 0

    def registers(self) -> list[int]:
        """Registers 0x0000..0x0009 as the PZEM-004T v3 sends them (32-bit: low word first)."""
        current_ma = round(self.power_w / self.voltage_v * 1000)
        power = round(self.power_w * 10)
        return [
            round(self.voltage_v * 10),
            current_ma & 0xFFFF,
            current_ma >> 16,
            power & 0xFFFF,
            power >> 16,
            self.energy_wh & 0xFFFF,
            self.energy_wh >> 16,
            500,  # 50.0 Hz
            100,  # power factor 1.00
            0,  # no alarm
        ]


async def _fill(
    state: PzemState,
    function_code: int,
    start_address: int,
    address: int,
    count: int,
    current_registers: list[int],
    set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    """pymodbus's device action: the registers are the meter's state at this request."""
    state.requests += 1
    current_registers[:] = state.registers()
    return None


def _pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    return master, slave, os.ttyname(slave)


class SimulatedPzemLine:
    """PZEM-004T meters at ``addresses`` on one line; the agent's port is :attr:`port`."""

    def __init__(self, addresses: tuple[int, ...] = (1,)) -> None:
        self.meters = {address: PzemState() for address in addresses}
        self._server_master, self._server_slave, self._server_port = _pty()
        self._agent_master, self._agent_slave, self.port = _pty()
        self.silent = threading.Event()
        self.garble = threading.Event()
        self._stop = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._server: ModbusSerialServer | None = None
        self._threads = [
            threading.Thread(target=self._bridge, name="pzem-bridge", daemon=True),
            threading.Thread(target=self._serve, name="pzem-server", daemon=True),
        ]
        self._started = threading.Event()

    def start(self) -> SimulatedPzemLine:
        for thread in self._threads:
            thread.start()
        assert self._started.wait(5), "the simulated meter did not start"
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(5)
        for thread in self._threads:
            thread.join(5)
        for fd in (
            self._server_master,
            self._server_slave,
            self._agent_master,
            self._agent_slave,
        ):
            with contextlib.suppress(OSError):
                os.close(fd)

    def inject(self, data: bytes) -> None:
        """Write raw bytes to the agent's side of the line (noise, a stray frame)."""
        os.write(self._agent_master, data)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            devices = [
                SimDevice(
                    id=address,
                    simdata=SimData(0, count=10, values=0, datatype=DataType.REGISTERS),
                    action=partial(_fill, state),
                )
                for address, state in self.meters.items()
            ]
            if len(self.meters) == 1:
                # Alone on its line, a PZEM-004T also answers the general address 0xF8
                # (pymodbus's device 0 answers any address no other device has).
                [state] = self.meters.values()
                devices.append(replace(devices[0], id=0, action=partial(_fill, state)))
            self._server = ModbusSerialServer(devices, port=self._server_port, baudrate=9600)
            # Started only once the port is open: bytes sent before would be flushed.
            await self._server.serve_forever(background=True)
            self._started.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._server.serving

        self._loop.run_until_complete(serve())

    def _bridge(self) -> None:
        """Copy bytes between the two pty masters, unless silent; corrupt answers on demand."""
        ends = {self._agent_master: self._server_master, self._server_master: self._agent_master}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(ends), [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 1024)
                except OSError:
                    return
                if self.silent.is_set():
                    continue
                if fd == self._server_master and self.garble.is_set():
                    # A flipped bit in every byte: the CRC no longer matches.
                    data = bytes(b ^ 0x10 for b in data)
                os.write(ends[fd], data)


@contextlib.contextmanager
def pzem_line(addresses: tuple[int, ...] = (1,)) -> Iterator[SimulatedPzemLine]:
    """A started :class:`SimulatedPzemLine`, stopped afterwards."""
    line = SimulatedPzemLine(addresses).start()
    try:
        yield line
    finally:
        line.stop()
