"""A bay's payment QR code: a Razorpay payment link for the bay's default plan, as a PNG.

Links are created lazily, when the image is fetched, and reused until they are paid or about
to expire; each new link changes the image's ``image_last_updated`` (its state).
"""

from __future__ import annotations

import asyncio
import io
import time
from datetime import datetime

import segno
from homeassistant.components.image import ImageEntity, ImageEntityDescription
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

from .bay_runner import BayRunner
from .const import LOGGER
from .entity import QrChargingEntity, add_bay_entities
from .hub import QrChargingConfigEntry
from .payments import Payments
from .razorpay_api import RazorpayError
from .store import StorageError

PARALLEL_UPDATES = 0

# A link this close to its expiry is not shown any more: a customer needs time to pay.
EXPIRY_MARGIN_S = 120
QR_SCALE = 10
QR_BORDER = 4

PAYMENT_QR = ImageEntityDescription(key="payment_qr", translation_key="payment_qr")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: QrChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the payment QR image of every bay."""
    add_bay_entities(
        entry,
        async_add_entities,
        lambda runner: [
            QrChargingPaymentImage(hass, runner, entry.runtime_data.payments, PAYMENT_QR)
        ],
    )


def qr_png(url: str) -> bytes:
    """A QR code of ``url`` as PNG (blocking; pure Python)."""
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="png", scale=QR_SCALE, border=QR_BORDER)
    return out.getvalue()


class QrChargingPaymentImage(QrChargingEntity, ImageEntity):
    """The QR code a customer scans to pay for a session at this bay."""

    _attr_content_type = "image/png"

    def __init__(
        self,
        hass: HomeAssistant,
        runner: BayRunner,
        payments: Payments,
        description: ImageEntityDescription,
    ) -> None:
        QrChargingEntity.__init__(self, runner, description)
        self._payments = payments
        ImageEntity.__init__(self, hass)
        self._attr_image_last_updated = dt_util.utcnow()
        self._link_id: str | None = None
        self._png: bytes | None = None
        self._lock = asyncio.Lock()
        self._unsub_expiry: CALLBACK_TYPE | None = None

    async def async_added_to_hass(self) -> None:
        """Also drop the expiry timer on removal."""
        await super().async_added_to_hass()
        self.async_on_remove(self._cancel_expiry)

    def _link_usable(self) -> bool:
        """Whether the current link can still be paid: not paid, closed or about to expire."""
        if self._link_id is None:
            return False
        link = self.runner.books.ledger.links.get(self._link_id)
        return (
            link is not None
            and link.status == "created"
            and link.expire_by - time.time() > EXPIRY_MARGIN_S
        )

    async def async_image(self) -> bytes | None:
        """The current link's QR code, making a new link when there is none to reuse."""
        async with self._lock:
            if self._png is not None and self._link_usable():
                return self._png
            if not self.runner.driver.online:
                # A payment for a bay that cannot start would only be refunded.
                return None
            try:
                created = await self._payments.async_create_link(self.runner.bay.bay_id, None)
            except (RazorpayError, StorageError) as err:
                LOGGER.warning(
                    "No payment link for the QR code of bay %s: %s", self.runner.bay.bay_id, err
                )
                return None
            link = created.link
            self._png = await self.hass.async_add_executor_job(qr_png, link.short_url)
            self._link_id = link.link_id
            self._schedule_expiry(link.expire_by)
            self._changed()
            return self._png

    @callback
    def _changed(self) -> None:
        """The QR code is another one (or the shown one is stale): tell the dashboards."""
        self._attr_image_last_updated = dt_util.utcnow()
        self.async_write_ha_state()

    @callback
    def _handle_bay_update(self) -> None:
        """A payment may have used the shown link: drop it so the next fetch makes a new one."""
        if self._png is not None and not self._link_usable():
            self._drop_link()
            return
        super()._handle_bay_update()

    @callback
    def _drop_link(self) -> None:
        self._cancel_expiry()
        self._link_id = self._png = None
        self._changed()

    def _schedule_expiry(self, expire_by: int) -> None:
        self._cancel_expiry()

        @callback
        def _expiring(_now: datetime) -> None:
            self._unsub_expiry = None
            if self._png is not None:
                self._drop_link()

        delay = max(expire_by - EXPIRY_MARGIN_S - time.time(), 0)
        self._unsub_expiry = async_call_later(
            self.hass, delay, HassJob(_expiring, "qr_charging link expiry", cancel_on_shutdown=True)
        )

    @callback
    def _cancel_expiry(self) -> None:
        if self._unsub_expiry is not None:
            self._unsub_expiry()
            self._unsub_expiry = None
