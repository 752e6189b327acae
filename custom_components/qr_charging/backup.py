"""Backups: each ledger database is checkpointed and its writes held while HA copies files.

So a backup holds every ledger as of one moment, never half a transaction; changes wait
(a webhook delivery waits, or Razorpay delivers it again) until the copy is done.
"""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .store import LedgerStore

_HELD: HassKey[list[LedgerStore]] = HassKey(f"{DOMAIN}_backup_held")


async def async_pre_backup(hass: HomeAssistant) -> None:
    """Write each ledger's WAL into its database file and hold its writes."""
    held = hass.data.setdefault(_HELD, [])
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            store: LedgerStore = entry.runtime_data.books.store
            await store.async_hold()
            held.append(store)


async def async_post_backup(hass: HomeAssistant) -> None:
    """Let the ledgers' writes go on."""
    for store in hass.data.pop(_HELD, []):
        store.release()
