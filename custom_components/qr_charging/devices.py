"""Devices: one per bay, linked to what switches it (an MQTT agent's device, or a plug's)."""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo

from .bay_runner import BayRunner
from .catalog import (
    Bay,
    bay_from_data,
)
from .const import CONF_BAY_ID, CONF_SITE_ID, DOMAIN, SUBENTRY_BAY, SUBENTRY_SITE
from .drivers.base import AgentInfo
from .relays import DEFAULT_PREFIX, MqttRelay, agent_identifier, relay_from_data
from .site_clock import sites_of
from .sites import Site
from .tax import settings_of as tax_settings_of

MANUFACTURER = "qr_charging"
BAY_MODEL = "Charging bay"
SITE_MODEL = "Charging site"


def bay_identifier(entry: ConfigEntry, bay: Bay) -> tuple[str, str]:
    """The device registry identifier of a bay (bay ids are unique within one account)."""
    return (DOMAIN, f"{entry.entry_id}_{bay.bay_id}")


def bay_device_info(entry: ConfigEntry, bay: Bay) -> DeviceInfo:
    """The device info every entity of a bay carries (the parent link is set separately)."""
    return DeviceInfo(
        identifiers={bay_identifier(entry, bay)},
        name=bay.name,
        manufacturer=MANUFACTURER,
        model=BAY_MODEL,
    )


def _subentry_id(entry: ConfigEntry, kind: str, key: str, value: str) -> str | None:
    """The config subentry of this kind whose ``key`` is ``value`` (None: there is none)."""
    return next(
        (
            sub.subentry_id
            for sub in entry.subentries.values()
            if sub.subentry_type == kind and sub.data.get(key) == value
        ),
        None,
    )


def bay_subentry_id(entry: ConfigEntry, bay: Bay) -> str | None:
    """The config subentry a bay was added with (its device and entities belong to it)."""
    return _subentry_id(entry, SUBENTRY_BAY, CONF_BAY_ID, bay.bay_id)


def site_identifier(entry: ConfigEntry, site_id: str) -> tuple[str, str]:
    """The device registry identifier of a site (``/`` never appears in a bay's id)."""
    return (DOMAIN, f"{entry.entry_id}/site/{site_id}")


def site_device_info(entry: ConfigEntry, site: Site) -> DeviceInfo:
    """The device info every entity of a site carries."""
    return DeviceInfo(
        identifiers={site_identifier(entry, site.site_id)},
        name=site.name,
        manufacturer=MANUFACTURER,
        model=SITE_MODEL,
    )


def tax_identifier(entry: ConfigEntry) -> tuple[str, str]:
    """The device registry identifier of an account's tax totals (an account-level service)."""
    return (DOMAIN, f"{entry.entry_id}/tax")


def tax_device_info(entry: ConfigEntry) -> DeviceInfo:
    """The account's tax device: the month's totals, shown while the owner has a GSTIN."""
    return DeviceInfo(
        identifiers={tax_identifier(entry)},
        name=f"{entry.title} tax",
        manufacturer=MANUFACTURER,
        entry_type=DeviceEntryType.SERVICE,
    )


def site_subentry_id(entry: ConfigEntry, site: Site) -> str | None:
    """The config subentry of a site (None: the default site of an entry not migrated yet)."""
    return _subentry_id(entry, SUBENTRY_SITE, CONF_SITE_ID, site.site_id)


def bay_in_order(hass: HomeAssistant, runner: BayRunner) -> bool:
    """Whether a bay sells: its agent or switch online, its device not disabled."""
    if not runner.driver.online:
        return False
    # By scanning the account's devices: looking one up by identifier changed its name
    # between the HA versions supported.
    wanted = bay_identifier(runner.entry, runner.bay)
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), runner.entry.entry_id)
    return not any(d.disabled_by is not None and wanted in d.identifiers for d in devices)


@callback
def async_update_agent_device(
    hass: HomeAssistant, entry: ConfigEntry, agent: AgentInfo
) -> dr.DeviceEntry:
    """Create an agent's device, or bring its name and version up to date."""
    return dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, agent.identifier)},
        name=agent.name,
        manufacturer=MANUFACTURER,
        model=agent.model,
        sw_version=agent.sw_version,
    )


def _parent_device_id(hass: HomeAssistant, entry: ConfigEntry, runner: BayRunner) -> str | None:
    """The device that switches a bay: its agent's, or the switch entity's own (if any)."""
    if (agent := runner.driver.agent) is not None:
        return async_update_agent_device(hass, entry, agent).id
    return runner.driver.parent_device_id


def _adopt_legacy_agent_devices(registry: dr.DeviceRegistry, entry: ConfigEntry) -> None:
    """Give an agent's device made by 0.2 under another prefix its identifier of today.

    0.2 named every agent's device ``agent-<node>``, whatever its prefix; now that is the
    default prefix's, and ``agent-<prefix>/<node>`` the others'. Renamed in place, the device
    keeps its id, area, name and history (a new one would be made and the old one swept).
    Only when the node is this entry's alone and under one other prefix: else the old device
    stands for a default-prefix agent, or for no one agent in particular.
    """
    prefixes: dict[str, set[str]] = {}
    for subentry in entry.subentries.values():
        if subentry.subentry_type == SUBENTRY_BAY:
            match relay_from_data(subentry.data):
                case MqttRelay(node=node, prefix=prefix):
                    prefixes.setdefault(node, set()).add(prefix)
    devices = {
        identifier: device
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        for identifier in device.identifiers
    }
    for node, used in prefixes.items():
        if len(used) != 1 or DEFAULT_PREFIX in used:
            continue
        old = devices.get((DOMAIN, agent_identifier(DEFAULT_PREFIX, node)))
        new = (DOMAIN, agent_identifier(next(iter(used)), node))
        # Another account may have the new device already (on HA 2025.4 identifiers are
        # global, and renaming onto one raises): then this one joins it and the old one goes.
        if (
            old is not None
            and old.config_entries == {entry.entry_id}
            and not any(new in device.identifiers for device in registry.devices.values())
        ):
            registry.async_update_device(old.id, new_identifiers={new})


async def async_register_devices(
    hass: HomeAssistant, entry: ConfigEntry, runners: Iterable[BayRunner]
) -> None:
    """Register every agent's device and every bay's device, linked to its parent.

    Idempotent: each call brings the registry in line with the bays' ``runners``, and drops the
    devices no bay stands for any more (the entry reloads when a bay is removed). The link is set by
    device id (``via_device_id``), which both supported HA lines accept on an update.
    """
    registry = dr.async_get(hass)
    _adopt_legacy_agent_devices(registry, entry)
    for runner in runners:
        parent_id = _parent_device_id(hass, entry, runner)
        device = registry.async_get_or_create(
            config_entry_id=entry.entry_id,
            config_subentry_id=bay_subentry_id(entry, runner.bay),
            **bay_device_info(entry, runner.bay),
        )
        if parent_id not in (device.via_device_id, device.id):
            registry.async_update_device(device.id, via_device_id=parent_id)
    async_remove_stale_devices(hass, entry)


def device_in_use(entry: ConfigEntry, device: dr.DeviceEntry) -> bool:
    """Whether a device of ours still stands for a bay or a site of the entry, an agent, or tax.

    Read from the entry's subentries, so it holds whether the entry is loaded or not.
    """
    return bool(device.identifiers & _identifiers_in_use(entry))


def _identifiers_in_use(entry: ConfigEntry) -> set[tuple[str, str]]:
    """The identifiers of every device the entry's bays, sites, agents and tax stand for.

    Read once per sweep of the devices: reading every bay's data again for each device made
    a set-up with 1,000 bays take 15 s.
    """
    wanted = {site_identifier(entry, site_id) for site_id in sites_of(entry)}
    if tax_settings_of(entry.options).registered:
        wanted.add(tax_identifier(entry))
    for subentry in entry.subentries.values():
        if subentry.subentry_type != SUBENTRY_BAY:
            continue
        bay = bay_from_data(subentry.data)
        wanted.add(bay_identifier(entry, bay))
        match bay.relay:
            case MqttRelay(node=node, prefix=prefix):
                wanted.add((DOMAIN, agent_identifier(prefix, node)))
    return wanted


@callback
def async_remove_stale_devices(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Let go of every device of ours that no bay of the entry stands for any more.

    A removed bay's device goes with its subentry (HA removes it); its agent's device is
    not tied to one bay, so it goes here once the agent's last bay is gone. A device another
    entry still has stays for that entry.
    """
    registry = dr.async_get(hass)
    wanted = _identifiers_in_use(entry)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        ours = any(domain == DOMAIN for domain, _ in device.identifiers)
        if ours and not device.identifiers & wanted:
            registry.async_update_device(device.id, remove_config_entry_id=entry.entry_id)
