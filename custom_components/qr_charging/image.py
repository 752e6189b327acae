"""A bay's QR code: the address of the bay's page, which never changes (unless dynamic).

A dashboard or a print of it keeps working: the page tells the customer whether the bay is
free, busy or out of order, and sells time. While the bay is out of order (agent or switch
offline, device disabled) the image is an out-of-order sign instead, never an error; each
change between the two changes the image's state (``image_last_updated``).

A bay with a dynamic QR code shows its current password in the code, and a new picture at
each interval: a dashboard on a screen at the bay serves as its display.
"""

from __future__ import annotations

import time
from datetime import datetime

from homeassistant.components.image import ImageEntity, ImageEntityDescription
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

from .bay_runner import BayRunner
from .const import LOGGER
from .devices import bay_in_order
from .entity import QrChargingEntity, add_bay_entities
from .hub import QrChargingConfigEntry
from .pages_addresses import PageAddresses
from .pages_render import qr_png
from .pictures import out_of_order_png
from .timers import stop_at_shutdown
from .totp import current

PARALLEL_UPDATES = 0

PAYMENT_QR = ImageEntityDescription(key="payment_qr", translation_key="payment_qr")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: QrChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the QR code image of every bay."""
    add_bay_entities(
        entry,
        async_add_entities,
        lambda runner: [QrChargingBayImage(hass, runner, entry.runtime_data.addresses, PAYMENT_QR)],
    )


class QrChargingBayImage(QrChargingEntity, ImageEntity):
    """The QR code a customer scans to open the bay's page (an out-of-order sign meanwhile)."""

    _attr_content_type = "image/png"
    # The sign is the point while the bay is out of order.
    available_offline = True

    def __init__(
        self,
        hass: HomeAssistant,
        runner: BayRunner,
        addresses: PageAddresses,
        description: ImageEntityDescription,
    ) -> None:
        QrChargingEntity.__init__(self, runner, description)
        self._addresses = addresses
        ImageEntity.__init__(self, hass)
        self._attr_image_last_updated = dt_util.utcnow()
        # What the state stands for, and what the cached picture shows.
        self._current: tuple[bool, str | None] | None = None
        self._drawn: tuple[bool, str | None] | None = None
        self._png: bytes | None = None
        self._next_code: CALLBACK_TYPE | None = None

    async def async_added_to_hass(self) -> None:
        """Remember what the picture shows now; a dynamic code changes with each interval."""
        await super().async_added_to_hass()
        self._current = self._wanted()
        self._schedule_next_code()

    async def async_will_remove_from_hass(self) -> None:
        """Stop changing the code."""
        if self._next_code is not None:
            self._next_code()
            self._next_code = None
        await super().async_will_remove_from_hass()

    @callback
    def _schedule_next_code(self) -> None:
        bay = self.runner.bay
        if not bay.dynamic_qr or bay.qr_secret is None:
            return
        left = current(bay.qr_secret, bay.qr_validity_s, time.time())[1]

        @callback
        def _new_code(_now: datetime) -> None:
            self._next_code = None
            self._handle_bay_update()
            self._schedule_next_code()

        self._next_code = async_call_later(
            self.hass, left, stop_at_shutdown(_new_code, "dynamic QR code")
        )

    def _wanted(self) -> tuple[bool, str | None]:
        """What to show: (in order, address the code holds now)."""
        in_order = bay_in_order(self.hass, self.runner)
        return in_order, self._addresses.qr_url(self.runner.bay, time.time())

    async def async_image(self) -> bytes | None:
        """The bay page's QR code, or the out-of-order sign."""
        wanted = self._wanted()
        if self._png is None or wanted != self._drawn:
            in_order, url = wanted
            if url is None:
                LOGGER.warning("Home Assistant has no address for the page of a bay's QR code")
            if in_order and url is not None:
                self._png = await self.hass.async_add_executor_job(qr_png, url)
            else:
                self._png = await self.hass.async_add_executor_job(out_of_order_png)
            self._drawn = wanted
        return self._png

    @callback
    def _handle_bay_update(self) -> None:
        """The bay went out of order or back: the picture changes."""
        if (wanted := self._wanted()) != self._current:
            self._current = wanted
            self._attr_image_last_updated = dt_util.utcnow()
        super()._handle_bay_update()
