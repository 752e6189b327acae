"""Config entry migration: accounts of 0.2 get the customer pages' webhook and secret.

Version 1.1 had one webhook (Razorpay's). 1.2 adds a second one for the customer's pages, a
cloudhook for it when the account uses HA Cloud, and the secret that signs session page tokens.
1.3 gives every bay the secret of its dynamic QR code and its display's token. 1.4 (sites, issue
#25) adds the default site as a subentry, named as the account; bays without a site are in it.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from types import MappingProxyType, ModuleType
from typing import Any

from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntry, ConfigSubentry, ConfigSubentryData
from homeassistant.core import HomeAssistant

from .catalog import with_screen_secrets
from .const import (
    CONF_CLOUDHOOK,
    CONF_PAGES_SECRET,
    CONF_PAGES_URL,
    CONF_PAGES_WEBHOOK_ID,
    LOGGER,
    SUBENTRY_BAY,
    SUBENTRY_SITE,
)
from .sites import default_site, site_to_data

VERSION = 1
MINOR_VERSION = 4


def default_site_subentry() -> ConfigSubentryData:
    """The site an account's bays start in (``sites.default_site``)."""
    site = default_site()
    return ConfigSubentryData(
        data=site_to_data(site),
        subentry_type=SUBENTRY_SITE,
        title=site.name,
        unique_id=site.site_id,
    )


type CreateCloudhook = Callable[[HomeAssistant, str], Awaitable[str]]


def cloud_component() -> ModuleType:
    """HA Cloud, imported only when loaded: it pulls in much that a plain install may lack."""
    from homeassistant.components import cloud  # noqa: PLC0415

    return cloud


async def async_pages_data(
    hass: HomeAssistant, create_cloudhook: CreateCloudhook | None
) -> dict[str, Any]:
    """A new pages webhook id and token secret, and its cloudhook when the account has one."""
    webhook_id = webhook.async_generate_id()
    data: dict[str, Any] = {
        CONF_PAGES_WEBHOOK_ID: webhook_id,
        CONF_PAGES_SECRET: secrets.token_urlsafe(32),
    }
    if create_cloudhook is not None:
        try:
            data[CONF_PAGES_URL] = await create_cloudhook(hass, webhook_id)
        except Exception:
            LOGGER.warning("No cloudhook for the customer's pages; they use HA's own address")
    return data


async def async_migrate_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Bring an account up to this version; a newer one is refused."""
    if entry.version > VERSION:
        return False
    if entry.version == VERSION and entry.minor_version < 2:
        create: CreateCloudhook | None = None
        if entry.data.get(CONF_CLOUDHOOK) and "cloud" in hass.config.components:
            create = cloud_component().async_create_cloudhook
        pages = await async_pages_data(hass, create)
        hass.config_entries.async_update_entry(entry, data={**entry.data, **pages}, minor_version=2)
        LOGGER.info("Account %s: customer pages added", entry.title)
    if entry.version == VERSION and entry.minor_version < 3:
        for subentry in entry.subentries.values():
            if subentry.subentry_type == SUBENTRY_BAY:
                hass.config_entries.async_update_subentry(
                    entry, subentry, data=with_screen_secrets(subentry.data)
                )
        hass.config_entries.async_update_entry(entry, minor_version=3)
    if entry.version == VERSION and entry.minor_version < 4:
        if not any(sub.subentry_type == SUBENTRY_SITE for sub in entry.subentries.values()):
            site = default_site_subentry()
            hass.config_entries.async_add_subentry(
                entry,
                ConfigSubentry(
                    data=MappingProxyType(site["data"]),
                    subentry_type=site["subentry_type"],
                    title=site["title"],
                    unique_id=site["unique_id"],
                ),
            )
        hass.config_entries.async_update_entry(entry, minor_version=4)
    return True
