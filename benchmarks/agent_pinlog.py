"""``pi-mqtt-relay --mock-gpio``, telling the benchmark each time a mock pin changes.

Runs the agent's own command line (``pi_mqtt_relay.__main__.main``) unchanged, on gpiozero's
``MockFactory`` (``--mock-gpio``); the only addition is a line on stdout for every change of a
mock pin, ``pin <name> <0|1> <time>``, where ``time`` is the ``time.monotonic()`` gpiozero
itself records for the change in the pin's history (``MockPin.states``). CLOCK_MONOTONIC is
one clock for every process on the machine, so the benchmark compares it with its own. With
``QR_BENCH_AGENT_NODELAY`` set, its MQTT socket also gets TCP_NODELAY (see ``rig.Tuning``).
Python 3.11 (the agent's floor) and later.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from gpiozero.pins import mock

_change_state = mock.MockPin._change_state


def _reporting_change_state(self: Any, value: Any) -> bool:
    changed = bool(_change_state(self, value))
    if changed:
        sys.stdout.write(f"pin {self.info.name} {int(bool(value))} {self._last_change!r}\n")
        sys.stdout.flush()
    return changed


mock.MockPin._change_state = _reporting_change_state  # type: ignore[method-assign]

if os.environ.get("QR_BENCH_AGENT_NODELAY"):
    # The benchmark's "TCP_NODELAY" conditions: the agent's socket without Nagle's algorithm
    # (paho leaves it on); not what the agent does by itself.
    import socket

    import paho.mqtt.client as paho

    _create = paho.Client._create_socket_connection

    def _nodelay(self: Any) -> Any:
        sock = _create(self)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    paho.Client._create_socket_connection = _nodelay  # type: ignore[method-assign]

if __name__ == "__main__":
    from pi_mqtt_relay.__main__ import main

    sys.exit(main(sys.argv[1:]))
