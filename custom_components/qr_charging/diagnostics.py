"""Diagnostics: settings without secrets, a summary of the ledger, and each bay's state."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant

from .bay_runner import BayRunner
from .const import (
    CONF_DISPLAY_TOKEN,
    CONF_KEY_ID,
    CONF_KEY_SECRET,
    CONF_PAGES_SECRET,
    CONF_QR_SECRET,
    CONF_WEBHOOK_SECRET,
)
from .hub import QrChargingConfigEntry
from .sites import site_to_data
from .tax import TaxSettings, rate_text

# The pages' webhook id is not secret: every poster prints it. A bay's dynamic QR code secret
# and its display's token (so its address) are.
TO_REDACT = {
    CONF_KEY_ID,
    CONF_KEY_SECRET,
    CONF_WEBHOOK_SECRET,
    CONF_WEBHOOK_ID,
    CONF_PAGES_SECRET,
    CONF_QR_SECRET,
    CONF_DISPLAY_TOKEN,
    "display_url",
}


def _bay(runner: BayRunner) -> dict[str, Any]:
    driver = runner.driver
    session = runner.session
    agent = driver.agent
    return {
        "name": runner.bay.name,
        "driver": runner.bay.driver,
        "site_id": runner.bay.site_id,
        "rated_w": runner.bay.rated_w,
        "status": runner.status.value,
        "online": driver.online,
        "fault": runner.fault,
        "limit_s": runner.limit_s,
        "session": None
        if session is None
        else {
            "session_id": session.session_id,
            "state": session.state.value,
            "owner": session.owner,
            "seconds": session.seconds,
            "paid_paise": session.paid_paise,
            "payment_ids": list(session.payment_ids),
            "started_at": session.started_at,
            "until": session.until,
        },
        "meter": {
            "metered": driver.metered,
            "meter": driver.meter,
            "power_sensor": runner.bay.power_sensor,
            "energy_sensor": runner.bay.energy_sensor,
            "full": runner.bay.full_rule,
            "prorata": runner.bay.prorata,
        },
        "agent": None
        if agent is None
        else {
            "identifier": agent.identifier,
            "name": agent.name,
            "sw_version": agent.sw_version,
            "model": agent.model,
        },
    }


def _tax(settings: TaxSettings) -> dict[str, Any]:
    """The tax details in force (a GSTIN is public: every invoice prints it)."""
    return {
        "registered": settings.registered,
        "legal_name": settings.legal_name,
        "gstin": settings.gstin,
        "state": settings.state,
        "sac": settings.sac,
        "rate": rate_text(settings.rate_bp) if settings.registered else "",
        "prefix": settings.prefix,
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: QrChargingConfigEntry
) -> dict[str, Any]:
    """Everything useful to debug an account, with its keys and secrets left out."""
    hub = entry.runtime_data
    counts = await hub.books.store.async_counts()
    return {
        "entry": {
            # The title is the key id.
            "title": REDACTED,
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": async_redact_data(dict(entry.options), TO_REDACT),
        },
        "subentries": [
            {
                "subentry_type": subentry.subentry_type,
                "title": subentry.title,
                "data": async_redact_data(dict(subentry.data), TO_REDACT),
            }
            for subentry in entry.subentries.values()
        ],
        "ledger": {
            "links": counts["links"],
            "payments": counts["payments"],
            "sessions": counts["sessions"],
            "refunds": counts["refunds"],
            "events": counts["events"]["stored"],
            "too_small_to_refund_paise": counts["refunds_too_small"]["paise"],
            "attention": [
                {
                    "payment_id": payment.payment_id,
                    "bay_id": payment.bay_id,
                    "amount": payment.amount,
                    "currency": payment.currency,
                    "problem": payment.problem,
                }
                for payment in await hub.books.store.async_attention()
            ],
        },
        # As documents are issued now: the options' tax section once checked (receipts only
        # when it is missing or no longer passes the form's checks).
        "tax": _tax(hub.tax),
        # Where each bay sells, when and how much power it may share: nothing secret.
        "sites": {site_id: site_to_data(site) for site_id, site in hub.bays.sites.items()},
        "bays": {
            bay_id: async_redact_data(_bay(runner) | hub.addresses.links(bay_id), TO_REDACT)
            for bay_id, runner in hub.bays.runners.items()
        },
    }
