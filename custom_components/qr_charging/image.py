"""A bay's QR code: the address of the bay's page, which never changes (unless dynamic).

A dashboard or a print of it keeps working: the page tells the customer whether the bay is
free, busy or out of order, and sells time. While the bay is out of order (agent or switch
offline, device disabled) the image is an out-of-order sign instead, never an error; each
change between the two changes the image's state (``image_last_updated``).

A bay with a dynamic QR code shows its current password in the code, and a new picture at
each interval: a dashboard on a screen at the bay serves as its display.

While the bay's site is closed the image is a closed sign (a clock): it changes at each opening
and closing, on timers on HA's clock (none for a site open around the clock).
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
from .pictures import closed_png, out_of_order_png
from .site_clock import track_next_edge
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
        self._current: tuple[str, str | None] | None = None
        self._drawn: tuple[str, str | None] | None = None
        self._png: bytes | None = None
        self._next_code: CALLBACK_TYPE | None = None
        self._next_site_change: CALLBACK_TYPE | None = None

    async def async_added_to_hass(self) -> None:
        """Remember what the picture shows now; a dynamic code changes with each interval."""
        await super().async_added_to_hass()
        self._current = self._wanted()
        self._schedule_next_code()
        self._schedule_site_change()

    async def async_will_remove_from_hass(self) -> None:
        """Stop changing the code and following the site's hours."""
        for cancel in (self._next_code, self._next_site_change):
            if cancel is not None:
                cancel()
        self._next_code = self._next_site_change = None
        await super().async_will_remove_from_hass()

    @callback
    def _schedule_site_change(self, since: float = 0) -> None:
        """Change the picture at the site's next opening or closing (if it ever has one).

        ``since``: the edge just passed (HA's timer may fire a moment before the wall clock).
        """
        if (gate := self.runner.gate) is None:
            return

        @callback
        def _site_changed(when: datetime) -> None:
            self._next_site_change = None
            self._handle_bay_update()
            self._schedule_site_change(when.timestamp())

        self._next_site_change = track_next_edge(
            self.hass,
            gate,
            max(time.time(), since),
            stop_at_shutdown(_site_changed, "site's hours"),
        )

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

    def _wanted(self) -> tuple[str, str | None]:
        """What to show: (``code``, ``out_of_order`` or ``closed``; address the code holds)."""
        now, gate = time.time(), self.runner.gate
        show = "code"
        if not bay_in_order(self.hass, self.runner):
            show = "out_of_order"
        elif gate is not None and not gate.is_open(now):
            show = "closed"
        return show, self._addresses.qr_url(self.runner.bay, now)

    async def async_image(self) -> bytes | None:
        """The bay page's QR code, the out-of-order sign, or the closed sign."""
        wanted = self._wanted()
        if self._png is None or wanted != self._drawn:
            show, url = wanted
            if url is None:
                LOGGER.warning("Home Assistant has no address for the page of a bay's QR code")
            if show == "code" and url is not None:
                self._png = await self.hass.async_add_executor_job(qr_png, url)
            elif show == "closed":
                self._png = await self.hass.async_add_executor_job(closed_png)
            else:
                self._png = await self.hass.async_add_executor_job(out_of_order_png)
            self._drawn = wanted
        return self._png

    @callback
    def _handle_bay_update(self) -> None:
        """The bay went out of order or back, or its site closed or opened: a new picture."""
        if (wanted := self._wanted()) != self._current:
            self._current = wanted
            self._attr_image_last_updated = dt_util.utcnow()
        super()._handle_bay_update()
