"""QR Charging: pay-per-use charging bays paid through Razorpay."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from homeassistant.const import CONF_WEBHOOK_ID, EVENT_CORE_CONFIG_UPDATE, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.typing import ConfigType

from .agent_discovery import async_follow_prefixes
from .agent_prefixes import extra_prefixes
from .catalog import paise_to_rupees
from .const import (
    BAY_WITHOUT_SITE,
    CONF_CLOUDHOOK,
    CONF_PAGES_WEBHOOK_ID,
    CONF_WEBHOOK_SECRET,
    DOMAIN,
    LOGGER,
    RECONCILE_INTERVAL_S,
    SITE_TIME_ZONE_UNKNOWN,
    TAX_DETAILS_INVALID,
)
from .devices import async_register_devices, device_in_use
from .hub import QrChargingConfigEntry, QrChargingHub, bays_of, settings_of, store_for
from .migration import async_migrate_entry as async_migrate_entry
from .qr_codes import async_close_all
from .razorpay_webhook import register_webhook, unregister_webhook
from .services import async_setup_services
from .session_rules import still_owed
from .site_clock import sites_of
from .sites import load_zones
from .store import StorageError

PLATFORMS = [Platform.BINARY_SENSOR, Platform.IMAGE, Platform.SENSOR, Platform.SWITCH]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, which serve every account."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: QrChargingConfigEntry) -> bool:
    """Open the ledger, start the bays, listen for Razorpay and keep reconciling."""
    # The sites' time zones are read from tzdata files: in the executor, not on the loop.
    sites = sites_of(entry).values()
    zones = await hass.async_add_executor_job(load_zones, sites, hass.config.time_zone)
    hub = QrChargingHub(hass, entry, zones)
    try:
        await hub.async_setup()
    except StorageError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="storage_failed",
            translation_placeholders={"error": str(err)},
        ) from err
    entry.runtime_data = hub
    await async_register_devices(hass, entry, hub.bays.runners.values())
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(
        register_webhook(
            hass, hub.payments, entry.data[CONF_WEBHOOK_ID], entry.data[CONF_WEBHOOK_SECRET]
        )
    )
    entry.async_on_unload(hub.pages.register())
    for unsubscribe in await async_follow_prefixes(hass, extra_prefixes(entry.options)):
        entry.async_on_unload(unsubscribe)

    @callback
    def _reconcile(_now: datetime | None = None) -> None:
        entry.async_create_background_task(
            hass, hub.reconciler.async_run(), "qr_charging reconcile"
        )

    entry.async_on_unload(
        async_track_time_interval(
            hass,
            _reconcile,
            timedelta(seconds=RECONCILE_INTERVAL_S),
            name="qr_charging reconcile",
            cancel_on_shutdown=True,
        )
    )
    # A webhook missed while HA was down is found by asking Razorpay, without delaying startup.
    _reconcile()
    entry.async_on_unload(entry.add_update_listener(_async_reload))

    @callback
    def _core_config_updated(_event: Event) -> None:
        # A site without a time zone of its own runs on HA's, read at setup: follow a change.
        if hass.config.time_zone != hub.home_zone and hub.follows_home_zone():
            hass.config_entries.async_schedule_reload(entry.entry_id)

    entry.async_on_unload(hass.bus.async_listen(EVENT_CORE_CONFIG_UPDATE, _core_config_updated))
    # A plan or bay saved while this setup ran, after it read the settings, found no listener
    # (the last one went with the unload): it would wait for the next reload. Reload now.
    if settings_of(entry) != hub.built_from:
        hass.config_entries.async_schedule_reload(entry.entry_id)
    return True


async def _async_reload(hass: HomeAssistant, entry: QrChargingConfigEntry) -> None:
    """Plans, bays or options changed: rebuild everything from the subentries.

    A QR code marked closed in the entry's record (``qr_codes``) changes nothing to rebuild.
    """
    if settings_of(entry) != entry.runtime_data.built_from:
        await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: QrChargingConfigEntry) -> bool:
    """Stop listening; the ledger stays on disk and running sessions resume at the next setup."""
    if not await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        return False
    await entry.runtime_data.async_unload()
    return True


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: QrChargingConfigEntry, device_entry: dr.DeviceEntry
) -> bool:
    """A device may go once no bay stands for it: a removed bay, an agent no bay uses."""
    return not device_in_use(entry, device_entry)


async def async_remove_entry(hass: HomeAssistant, entry: QrChargingConfigEntry) -> None:
    """Close the QR codes at Razorpay, then drop the webhook and the cloudhooks.

    HA has unloaded the account already, so its webhook answers 503 (Razorpay delivers
    again) while the codes are closed; once it is unregistered HA answers 200 to a delivery,
    which Razorpay takes as delivered. A payment that reaches a code before its close is
    lost to the integration either way (no account is left to refund it): the log names each
    code still open, and each refund still owed. The ledger's database is kept (the owner's
    record).
    """
    await async_close_all(hass, entry, bays_of(entry))
    for repair in (BAY_WITHOUT_SITE, SITE_TIME_ZONE_UNKNOWN, TAX_DETAILS_INVALID):
        ir.async_delete_issue(hass, DOMAIN, f"{repair}_{entry.entry_id}")
    await _async_log_owed(hass, entry)
    unregister_webhook(hass, entry.data[CONF_WEBHOOK_ID])
    if entry.data.get(CONF_CLOUDHOOK) and "cloud" in hass.config.components:
        from homeassistant.components import cloud  # noqa: PLC0415 - see config_flow._cloud

        await cloud.async_delete_cloudhook(hass, entry.data[CONF_WEBHOOK_ID])
        if CONF_PAGES_WEBHOOK_ID in entry.data:
            await cloud.async_delete_cloudhook(hass, entry.data[CONF_PAGES_WEBHOOK_ID])


async def _async_log_owed(hass: HomeAssistant, entry: QrChargingConfigEntry) -> None:
    """Name each refund still owed as the account goes: nothing will send it any more.

    Refunds Razorpay has not accepted yet, and failed sessions' money not refunded
    (automatic refund off), read from the ledger's database (closed at the unload).
    """
    store = store_for(hass, entry.entry_id)
    if not await hass.async_add_executor_job(store.path.exists):
        return
    try:
        await store.async_open(time.time())
        owed = still_owed(await store.async_owed())
    except StorageError:
        LOGGER.exception("Could not read the refunds still owed by the removed account")
        return
    finally:
        await store.async_close()
    for payment_id, paise in owed:
        LOGGER.warning(
            "Refund of ₹%s of payment %s is still owed and will not be sent: the account is "
            "removed; refund it in Razorpay's dashboard",
            paise_to_rupees(paise),
            payment_id,
        )
