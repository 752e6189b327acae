"""One Razorpay account, wired: its books, payments, bays, refunds and reconciliation.

A payment's path reads top to bottom through the parts built here:
``razorpay_webhook → payments → bays → refunds → books/store``, with ``notices`` (events,
repairs) and the Razorpay client (``account_api``) used from below. This module only builds,
sets up and unloads them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import STORAGE_DIR
from homeassistant.helpers.translation import async_get_translations

from .account_api import AccountApi
from .bay_runner import BaySettings
from .bays import Bays
from .books import Books
from .catalog import (
    Bay,
    Plan,
    bay_from_data,
    plan_from_data,
)
from .const import (
    BAY_WITHOUT_SITE,
    CONF_ACK_TIMEOUT,
    CONF_AUTO_REFUND,
    CONF_BAY_ID,
    CONF_CODE,
    CONF_QR_CODES,
    DEFAULT_ACK_TIMEOUT_S,
    DOMAIN,
    LOGGER,
    PLAN_SUBENTRIES,
    SITE_TIME_ZONE_UNKNOWN,
    SUBENTRY_BAY,
    TAX_DETAILS_INVALID,
)
from .invoices import describer, dues_of
from .notices import Notices
from .pages import CustomerPages
from .pages_addresses import PageAddresses
from .payments import Payments
from .qr_codes import QrCodes
from .reconcile import Reconciler
from .refunds import Refunds
from .relays import MqttRelay, relay_from_data
from .site_clock import SiteClock, sites_of
from .sites import Zones
from .store import LedgerStore
from .tax import read_settings as read_tax_settings
from .tax_month import TaxMonth


def plans_of(entry: ConfigEntry) -> dict[str, Plan]:
    """The plans (fixed and per minute) configured as subentries of an entry."""
    return {
        sub.data[CONF_CODE]: plan_from_data(sub.data)
        for sub in entry.subentries.values()
        if sub.subentry_type in PLAN_SUBENTRIES
    }


def bays_of(entry: ConfigEntry) -> dict[str, Bay]:
    """The bays configured as subentries of an entry."""
    return {
        sub.data[CONF_BAY_ID]: bay_from_data(sub.data)
        for sub in entry.subentries.values()
        if sub.subentry_type == SUBENTRY_BAY
    }


def agent_relays(entries: Iterable[ConfigEntry]) -> set[tuple[str, str, str]]:
    """Every agent bay the entries sell, as (prefix, node, agent bay).

    The relays alone: every agent of a fleet comes through discovery at HA's start, and
    reading each of 1,000 bays in whole for each of 250 agents held up the loop.
    """
    return {
        # No agent bay stored (data from before the form filled it in): the bay's own id.
        (relay.prefix, relay.node, relay.agent_bay or sub.data[CONF_BAY_ID])
        for entry in entries
        for sub in entry.subentries.values()
        if sub.subentry_type == SUBENTRY_BAY
        and isinstance(relay := relay_from_data(sub.data), MqttRelay)
    }


def settings_of(entry: ConfigEntry) -> tuple[Any, ...]:
    """What an account is built from: all of its entry but the record of its QR codes."""
    return (
        {key: value for key, value in entry.data.items() if key != CONF_QR_CODES},
        dict(entry.options),
        {
            sid: (sub.subentry_type, sub.title, dict(sub.data))
            for sid, sub in entry.subentries.items()
        },
    )


def store_for(hass: HomeAssistant, entry_id: str) -> LedgerStore:
    """The account's database in ``.storage``, importing the JSON ledger of 0.1 if present."""
    storage = Path(hass.config.path(STORAGE_DIR))
    return LedgerStore(
        storage / f"{DOMAIN}.{entry_id}.db",
        hass.async_add_executor_job,
        legacy=(
            storage / f"{DOMAIN}.{entry_id}.ledger",
            storage / f"{DOMAIN}.{entry_id}.archive.jsonl",
        ),
    )


class QrChargingHub:
    """Everything one Razorpay account does; kept in ``entry.runtime_data``."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, zones: Zones) -> None:
        """Build the account's parts; ``zones``: its sites' time zones, loaded in the executor."""
        self.entry = entry
        self.built_from = settings_of(entry)
        # Home Assistant's time zone as the sites were set up with it (see ``Zones.on_home``).
        self.home_zone = hass.config.time_zone
        self.zones = zones
        self.api = AccountApi(hass, entry)
        self.books = Books(store_for(hass, entry.entry_id))
        self.notices = Notices(hass, entry.entry_id)
        configs = bays_of(entry)
        settings = BaySettings(
            ack_timeout_s=entry.options.get(CONF_ACK_TIMEOUT, DEFAULT_ACK_TIMEOUT_S),
            auto_refund=entry.options.get(CONF_AUTO_REFUND, True),
        )
        self.refunds = Refunds(
            self.books,
            self.api,
            self.notices,
            auto_refund=settings.auto_refund,
            # Read when a repair is raised: the bays are made just below.
            bay_name=lambda bay_id: self.bays.name(bay_id),  # noqa: PLW0108
        )
        self.bays = Bays(
            hass,
            entry,
            configs=configs,
            books=self.books,
            refunds=self.refunds,
            notices=self.notices,
            settings=settings,
            sites=sites_of(entry),
            zones=zones,
        )
        self.sites = {
            site_id: SiteClock(
                hass,
                gate,
                notices=self.notices,
                ledger=lambda: self.books.ledger,
                runners=self.bays.runners,
            )
            for site_id, gate in self.bays.site_gates.items()
        }
        plans = plans_of(entry)
        self.tax, self.tax_invalid = read_tax_settings(entry.options)
        if self.tax_invalid is not None:
            LOGGER.warning(
                "The tax details in the options are not valid (%s): receipts are issued, not "
                "tax invoices, until they are corrected in the options",
                self.tax_invalid,
            )
        describe = describer(configs, plans, sites_of(entry))
        self.books.documents = lambda written, ledger, now: dues_of(
            written, ledger.links, describe, self.tax, now, refunds=ledger.refunds
        )
        # The month's tax totals (the sensors'), only for an owner with a GSTIN.
        self.tax_month = TaxMonth(hass, entry, self.books.store) if self.tax.registered else None
        if self.tax_month is not None:
            self.books.documents_changed = self.tax_month.refresh
        self.qr_codes = QrCodes(hass, entry, self.api, configs)
        self.payments = Payments(
            books=self.books,
            api=self.api,
            notices=self.notices,
            bays=self.bays,
            refunds=self.refunds,
            plans=plans,
            qr_codes=self.qr_codes,
        )
        self.addresses = PageAddresses(hass, entry, configs)
        self.pages = CustomerPages(
            hass,
            entry,
            bays=self.bays,
            payments=self.payments,
            books=self.books,
            plans=plans,
            addresses=self.addresses,
            tax=self.tax,
        )
        self.reconciler = Reconciler(
            books=self.books,
            api=self.api,
            payments=self.payments,
            refunds=self.refunds,
            set_up_at=entry.created_at.timestamp(),
            qr_codes=self.qr_codes,
        )

    async def async_setup(self) -> None:
        """Record the bays' QR codes, open the ledger and start the bays."""
        self.qr_codes.remember()
        await self.books.async_open()
        await self.refunds.async_remind_owed()
        await self.pages.async_setup()
        await self.bays.async_setup()
        now = time.time()
        for site in self.sites.values():
            site.start(now)
        self.flag_bays_without_site()
        self.flag_lost_time_zones()
        await self.async_flag_invalid_tax_details()
        if self.tax_month is not None:
            # Last: a setup cancelled before here (HA stopping) leaves no timer behind.
            await self.tax_month.async_start()

    def flag_bays_without_site(self) -> None:
        """A repair naming the bays whose site was removed (they sell ungated meanwhile).

        HA removes a site subentry without asking; the account reloads, and the issue goes at
        the first setup where every bay is at a site again.
        """
        issue_id = f"{BAY_WITHOUT_SITE}_{self.entry.entry_id}"
        if homeless := [b for b in self.bays.configs.values() if b.bay_id not in self.bays.gates]:
            names = ", ".join(f"{bay.name} ({bay.site_id})" for bay in homeless)
            self.notices.raise_repair(issue_id, BAY_WITHOUT_SITE, {"bays": names})
        else:
            self.notices.clear_repair(issue_id)

    def flag_lost_time_zones(self) -> None:
        """A warning and a repair naming the sites whose time zone no longer loads.

        Such a site runs on Home Assistant's time zone until its own is chosen again.
        """
        issue_id = f"{SITE_TIME_ZONE_UNKNOWN}_{self.entry.entry_id}"
        if lost := [clock.site for clock in self.sites.values() if self.zones.lost(clock.site)]:
            names = ", ".join(f"{site.name} ({site.time_zone})" for site in lost)
            LOGGER.warning(
                "The time zone of site %s does not load: it runs on Home Assistant's (%s) "
                "until its own is chosen again",
                names,
                self.home_zone,
            )
            self.notices.raise_repair(
                issue_id, SITE_TIME_ZONE_UNKNOWN, {"sites": names, "home_zone": self.home_zone}
            )
        else:
            self.notices.clear_repair(issue_id)

    async def async_flag_invalid_tax_details(self) -> None:
        """A repair while the stored tax details are not valid (receipts are issued meanwhile).

        It names the problem in the options form's own words (its error text, in Home
        Assistant's language); saving valid details reloads the account, which clears it.
        """
        issue_id = f"{TAX_DETAILS_INVALID}_{self.entry.entry_id}"
        if (problem := self.tax_invalid) is None:
            self.notices.clear_repair(issue_id)
            return
        texts = await async_get_translations(
            self.notices.hass, self.notices.hass.config.language, "options", [DOMAIN]
        )
        text = texts.get(f"component.{DOMAIN}.options.error.{problem.key}", problem.key)
        self.notices.raise_repair(
            issue_id, TAX_DETAILS_INVALID, {"account": self.entry.title, "problem": text}
        )

    def follows_home_zone(self) -> bool:
        """Whether a site runs on Home Assistant's time zone (so a change of it matters)."""
        return any(self.zones.on_home(clock.site) for clock in self.sites.values())

    async def async_unload(self) -> None:
        """Stop the bays and close the ledger (running sessions resume at the next setup)."""
        for site in self.sites.values():
            site.stop()
        await self.bays.async_unload()
        await self.books.store.async_close()
        self.api.close()


type QrChargingConfigEntry = ConfigEntry[QrChargingHub]
