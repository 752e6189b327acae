"""The relay outputs, through gpiozero.

Each bay is an ``OutputDevice`` created with ``initial_value=False``: the relay is off
from the moment the pin is claimed. ``active_high: false`` in the config serves the
common relay boards that switch on when their input is pulled low.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from gpiozero import OutputDevice

from .config import BayConfig

_LOGGER = logging.getLogger(__name__)


class Relays:
    """One output per bay, addressed by bay id."""

    def __init__(self, bays: Iterable[BayConfig], pin_factory: Any = None) -> None:
        self._devices: dict[str, Any] = {}
        try:
            for bay in bays:
                self._devices[bay.id] = OutputDevice(
                    bay.pin,
                    active_high=bay.active_high,
                    initial_value=False,
                    pin_factory=pin_factory,
                )
        except Exception:
            # Whatever was claimed already goes off and is released before the error.
            self.close()
            raise

    def on(self, bay_id: str) -> None:
        """Energise the bay's relay."""
        self._devices[bay_id].on()

    def off(self, bay_id: str) -> None:
        """De-energise the bay's relay."""
        self._devices[bay_id].off()

    def is_on(self, bay_id: str) -> bool:
        """Whether the bay's relay is energised (as gpiozero reads the output back)."""
        return bool(self._devices[bay_id].value)

    def all_off(self) -> None:
        """Switch every relay off; one failing pin does not keep the others on."""
        for bay_id, device in self._devices.items():
            try:
                device.off()
            except Exception:
                _LOGGER.exception("could not switch off the relay of %s", bay_id)

    def close(self) -> None:
        """Switch everything off and release the pins."""
        self.all_off()
        for device in self._devices.values():
            try:
                device.close()
            except Exception:
                _LOGGER.exception("could not release a relay pin")
        self._devices.clear()
