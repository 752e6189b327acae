"""The month's tax totals of one account, kept for its sensors (a thin Home Assistant shell).

Read by one SQL sum (``LedgerStore.async_tax_totals``) when the account is set up, after each
committed change that had documents due (``Books.documents_changed``) and at the turn of
India's month, when the totals start again from nothing.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_point_in_utc_time

from .const import DOMAIN, LOGGER
from .store import LedgerStore, StorageError
from .tax import Split
from .tax_export import ZERO, month_bounds, month_of


class TaxMonth:
    """The current IST month's totals, net of credit notes; ``signal`` is sent on each change."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, store: LedgerStore) -> None:
        self._hass = hass
        self._entry = entry
        self._store = store
        self.signal = f"{DOMAIN}_{entry.entry_id}_tax"
        self.totals: Split = ZERO
        self.start, self._end = month_bounds(*month_of(time.time()))
        self._unsub_turn: CALLBACK_TYPE | None = None

    @property
    def last_reset(self) -> datetime:
        """When the totals last started from nothing: the month's start (IST), in UTC."""
        return datetime.fromtimestamp(self.start, UTC)

    async def async_start(self) -> None:
        """Read the month so far and wait for its turn, until the entry unloads.

        Also when the setup fails after this: HA runs the unload callbacks then too.
        """
        await self._async_read()
        self._schedule_turn()
        self._entry.async_on_unload(self.stop)

    @callback
    def stop(self) -> None:
        """Stop waiting for the month's turn."""
        if self._unsub_turn is not None:
            self._unsub_turn()
            self._unsub_turn = None

    @callback
    def refresh(self) -> None:
        """Read the totals again, in the background (a change issued documents)."""
        self._entry.async_create_background_task(
            self._hass, self._async_read(), f"{DOMAIN} tax totals"
        )

    async def _async_read(self) -> None:
        start, end = self.start, self._end
        try:
            totals = await self._store.async_tax_totals(start, end)
        except StorageError as err:
            # The figures shown stay the last read; the next change or the turn reads again.
            LOGGER.warning("The month's tax totals could not be read: %s", err)
            return
        if (start, end) == (self.start, self._end):
            self.totals = totals
            async_dispatcher_send(self._hass, self.signal)

    def _schedule_turn(self) -> None:
        self._unsub_turn = async_track_point_in_utc_time(
            self._hass, self._turn, datetime.fromtimestamp(self._end, UTC)
        )

    @callback
    def _turn(self, _now: datetime) -> None:
        self.start, self._end = month_bounds(*month_of(max(time.time(), self._end)))
        self.totals = ZERO
        async_dispatcher_send(self._hass, self.signal)
        self._schedule_turn()
        self.refresh()
