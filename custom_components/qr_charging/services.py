"""Actions (services) of qr_charging, each answering with response data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    Context,
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError, Unauthorized, UnknownUser
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util
from homeassistant.util.ulid import ulid_now

from .bay_owner import async_start_owner, async_stop
from .catalog import rupees_to_paise
from .catalog_errors import CatalogError
from .const import DOMAIN
from .ending_rules import RefundMode
from .errors import translated
from .tax_export import MonthError, month_bounds, parse_month, rupees

if TYPE_CHECKING:
    from .hub import QrChargingHub

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_BAY = "bay"
ATTR_PLAN = "plan"
ATTR_PAYMENT_ID = "payment_id"
ATTR_AMOUNT = "amount"
ATTR_MINUTES = "minutes"
ATTR_REFUND = "refund"
ATTR_START = "start"
ATTR_END = "end"
ATTR_MONTH = "month"
# An export larger than this is only written to its file, not returned in the response.
MAX_INLINE_EXPORT = 1024 * 1024

SERVICE_BAY_LINKS = "bay_links"
SERVICE_CREATE_PAYMENT_LINK = "create_payment_link"
SERVICE_EXPORT_SESSIONS = "export_sessions"
SERVICE_EXPORT_TAX = "export_tax"
SERVICE_REFUND = "refund"
SERVICE_START_SESSION = "start_session"
SERVICE_STOP_SESSION = "stop_session"

_ENTRY: dict[vol.Marker, Any] = {vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string}
_MINUTES = vol.All(vol.Coerce(int), vol.Range(min=1, max=1440))

Handler = Callable[[HomeAssistant, ServiceCall], Awaitable[ServiceResponse]]


async def async_check_admin(hass: HomeAssistant, context: Context | None) -> None:
    """Refuse a user who is not an admin; calls with no user (automations, scripts) pass.

    The same rule as HA's admin services, for whatever gives power or moves money: a kiosk
    screen logged in as a plain user must not.
    """
    if context is None or context.user_id is None:
        return
    user = await hass.auth.async_get_user(context.user_id)
    if user is None:
        raise UnknownUser(context=context)
    if not user.is_admin:
        raise Unauthorized(context=context)


def _admin_only(
    hass: HomeAssistant, handler: Handler
) -> Callable[[ServiceCall], Coroutine[Any, Any, ServiceResponse]]:
    """The handler behind the admin check.

    Not ``async_register_admin_service``: on HA 2025.4 it takes no ``supports_response`` and
    drops the handler's response.
    """

    async def checked(call: ServiceCall) -> ServiceResponse:
        await async_check_admin(hass, call.context)
        return await handler(hass, call)

    return checked


def hub_for(hass: HomeAssistant, call: ServiceCall) -> QrChargingHub:
    """The loaded account the call names, or the only one."""
    entry_id: str | None = call.data.get(ATTR_CONFIG_ENTRY_ID)
    entries = [
        e
        for e in hass.config_entries.async_entries(DOMAIN)
        if e.state is ConfigEntryState.LOADED and entry_id in (None, e.entry_id)
    ]
    if len(entries) != 1:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found" if not entries else "entry_ambiguous",
        )
    hub: QrChargingHub = entries[0].runtime_data
    return hub


@translated
async def _create_payment_link(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    hub = hub_for(hass, call)
    created = await hub.payments.async_create_link(
        call.data[ATTR_BAY],
        call.data.get(ATTR_PLAN),
        minutes=call.data.get(ATTR_MINUTES),
        paise=call.data.get(ATTR_AMOUNT),
    )
    return created.as_response() | hub.addresses.links(call.data[ATTR_BAY])


async def _bay_links(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    hub = hub_for(hass, call)
    try:
        await async_check_admin(hass, call.context)
        display = True
    except (Unauthorized, UnknownUser):
        display = False  # the pages' addresses, not the displays' secret ones
    bays: dict[str, Any] = {
        bay_id: hub.addresses.links(bay_id, display=display) for bay_id in hub.bays.configs
    }
    return {"bays": bays}


def _stamped(name: str) -> str:
    """An export's name: ``name``, the UTC time and a ULID.

    The ULID too: two exports in the same second must not share (and overwrite) one file.
    """
    return f"{name}-{dt_util.utcnow().strftime('%Y%m%dT%H%M%SZ')}-{ulid_now()}"


@translated
async def _export_sessions(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    hub = hub_for(hass, call)
    start: datetime | None = call.data.get(ATTR_START)
    end: datetime | None = call.data.get(ATTR_END)
    now = dt_util.utcnow()
    name = _stamped(f"sessions-{hub.entry.entry_id}") + ".csv"
    path = Path(hass.config.path(DOMAIN, name))
    count = await hub.books.store.async_export(
        path,
        dt_util.as_utc(start).timestamp() if start else 0.0,
        dt_util.as_utc(end).timestamp() if end else now.timestamp() + 1,
    )
    # The rows were streamed to the file; a small export is returned inline too.
    text = await hass.async_add_executor_job(_small_text, path)
    return {"csv": text, "path": str(path), "sessions": count}


@translated
async def _export_tax(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    hub = hub_for(hass, call)
    text = call.data[ATTR_MONTH]
    try:
        year, month = parse_month(text)
    except MonthError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_month",
            translation_placeholders={"month": text},
        ) from err
    name = _stamped(f"tax-{hub.entry.entry_id}-{year:04d}-{month:02d}")
    written = await hub.books.store.async_export_tax(
        Path(hass.config.path(DOMAIN, name)),
        *month_bounds(year, month),
        registered=hub.tax.registered,
    )
    totals = written.totals
    return {
        "files": {table: str(path) for table, path in written.files.items()},
        "documents": written.documents,
        # GSTR-1 reports tax invoices only: receipts (no GSTIN) are listed in receipts.csv.
        "gstr1": "b2b" in written.files,
        "totals": {
            "taxable": rupees(totals.taxable),
            "cgst": rupees(totals.cgst),
            "sgst": rupees(totals.sgst),
            "igst": rupees(totals.igst),
        },
    }


def _small_text(path: Path) -> str | None:
    if path.stat().st_size > MAX_INLINE_EXPORT:
        return None
    return path.read_text(encoding="utf-8")


@translated
async def _refund(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    hub = hub_for(hass, call)
    refund = await hub.refunds.async_refund(
        call.data[ATTR_PAYMENT_ID], call.data.get(ATTR_AMOUNT), "owner"
    )
    return {
        "refund_id": refund.refund_id,
        "payment_id": refund.payment_id,
        "amount": refund.amount,
        "state": refund.state.value,
    }


@translated
async def _start_session(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    runner = hub_for(hass, call).bays.runner(call.data[ATTR_BAY])
    minutes = call.data.get(ATTR_MINUTES, runner.bay.default_minutes)
    session = await async_start_owner(runner, minutes)
    return {
        "session_id": session.session_id,
        "bay": session.bay_id,
        "minutes": minutes,
        "state": session.state.value,
        "until": dt_util.utc_from_timestamp(session.until).isoformat() if session.until else None,
    }


@translated
async def _stop_session(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    runner = hub_for(hass, call).bays.runner(call.data[ATTR_BAY])
    return await async_stop(runner, RefundMode(call.data[ATTR_REFUND]))


def _rupees_as_paise(value: Any) -> int:
    """An amount entered in rupees, as integer paise."""
    try:
        paise = rupees_to_paise(value)
    except CatalogError as err:
        raise vol.Invalid("amount must be rupees with at most two decimals") from err
    if paise <= 0:
        raise vol.Invalid("amount must be more than zero")
    return paise


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions once for the domain; those that give power or refund are admin-only."""
    register = partial(hass.services.async_register, DOMAIN)
    register(
        SERVICE_CREATE_PAYMENT_LINK,
        partial(_create_payment_link, hass),
        schema=vol.Schema(
            {
                **_ENTRY,
                vol.Required(ATTR_BAY): cv.string,
                vol.Optional(ATTR_PLAN): cv.string,
                vol.Optional(ATTR_MINUTES): _MINUTES,
                vol.Optional(ATTR_AMOUNT): _rupees_as_paise,
            }
        ),
        supports_response=SupportsResponse.ONLY,
    )
    register(
        SERVICE_BAY_LINKS,
        partial(_bay_links, hass),
        schema=vol.Schema(_ENTRY),
        supports_response=SupportsResponse.ONLY,
    )
    register(
        SERVICE_EXPORT_SESSIONS,
        partial(_export_sessions, hass),
        schema=vol.Schema(
            {**_ENTRY, vol.Optional(ATTR_START): cv.datetime, vol.Optional(ATTR_END): cv.datetime}
        ),
        supports_response=SupportsResponse.OPTIONAL,
    )
    register(
        SERVICE_EXPORT_TAX,
        _admin_only(hass, _export_tax),
        schema=vol.Schema({**_ENTRY, vol.Required(ATTR_MONTH): cv.string}),
        supports_response=SupportsResponse.OPTIONAL,
    )
    register(
        SERVICE_START_SESSION,
        _admin_only(hass, _start_session),
        schema=vol.Schema(
            {
                **_ENTRY,
                vol.Required(ATTR_BAY): cv.string,
                vol.Optional(ATTR_MINUTES): _MINUTES,
            }
        ),
        supports_response=SupportsResponse.OPTIONAL,
    )
    register(
        SERVICE_STOP_SESSION,
        _admin_only(hass, _stop_session),
        schema=vol.Schema(
            {
                **_ENTRY,
                vol.Required(ATTR_BAY): cv.string,
                vol.Optional(ATTR_REFUND, default=RefundMode.PRORATA.value): vol.In(
                    [m.value for m in RefundMode]
                ),
            }
        ),
        supports_response=SupportsResponse.OPTIONAL,
    )
    register(
        SERVICE_REFUND,
        _admin_only(hass, _refund),
        schema=vol.Schema(
            {
                **_ENTRY,
                vol.Required(ATTR_PAYMENT_ID): cv.string,
                vol.Optional(ATTR_AMOUNT): _rupees_as_paise,
            }
        ),
        supports_response=SupportsResponse.OPTIONAL,
    )
