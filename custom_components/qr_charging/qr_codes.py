"""The account's static QR codes at Razorpay: each one closed once it is no bay's any more.

The record of every code the account made (``static_qr.remember_codes``) is kept in the config
entry's data (``qr_codes``), beside the bay subentries that name the codes: Home Assistant
writes both in one file (atomically, whole), so the record is never older than a bay saved
after it, and it survives restarts and the bay's removal without a ledger migration. It is
brought up to date at each (re)load, before the update listener is attached; marking a code
closed later changes nothing else, so it does not reload the account (``__init__``).

A close that Razorpay does not answer (down, 5xx, timeout) leaves the code ``to_close``: every
reconciliation (each 5 minutes and at start-up) tries again. One already closed there (the
answer was lost) is found by asking for it. A payment arriving meanwhile is refunded in full.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback

from .account_api import AccountApi, api_for
from .catalog import Bay
from .const import CONF_QR_CODES, LOGGER
from .razorpay_api import RazorpayApi, RazorpayError
from .refunds import refused_for_good
from .static_qr import KnownCodes, codes_to_close, remember_codes, with_closed


def known_codes(entry: ConfigEntry) -> KnownCodes:
    """Every QR code the account made, as recorded in its entry."""
    codes: KnownCodes = entry.data.get(CONF_QR_CODES, {})
    return codes


def _closed(api: RazorpayApi, code_id: str) -> bool:
    """Close a code at Razorpay (blocking); whether it is closed there now.

    Razorpay refuses to close a code closed already (our answer to an earlier close was lost):
    that refusal is checked by fetching the code. A passing failure is left for the next try.
    """
    try:
        api.close_qr_code(code_id)
    except RazorpayError as err:
        with suppress(RazorpayError):
            if refused_for_good(err) and api.fetch_qr_code(code_id).get("status") == "closed":
                return True
        LOGGER.warning("QR code %s not closed at Razorpay: %s", code_id, err)
        return False
    return True


class QrCodes:
    """Closes the codes of an account's bays that no longer sell anything."""

    def __init__(
        self, hass: HomeAssistant, entry: ConfigEntry, api: AccountApi, bays: Mapping[str, Bay]
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.api = api
        self.bays = bays

    @property
    def known(self) -> KnownCodes:
        """Every code the account made (read when a payment arrives)."""
        return known_codes(self.entry)

    @callback
    def remember(self) -> None:
        """Record the bays' codes, and those no longer a bay's as to be closed (at setup)."""
        codes = remember_codes(self.known, self.bays)
        if codes != self.known:
            self._store(codes)

    async def async_close_pending(self) -> None:
        """Close at Razorpay each code to be closed; those it does not close wait for the next."""
        for code_id in codes_to_close(self.known):
            if await self.api.run(_closed, self.api.client, code_id):
                LOGGER.info("Closed QR code %s at Razorpay", code_id)
                self._store(with_closed(self.known, code_id))

    @callback
    def _store(self, codes: KnownCodes) -> None:
        self.hass.config_entries.async_update_entry(
            self.entry, data={**self.entry.data, CONF_QR_CODES: codes}
        )


async def async_close_all(hass: HomeAssistant, entry: ConfigEntry, bays: Mapping[str, Bay]) -> None:
    """The account is removed: close every code it has open, once.

    Nothing is left to retry with: a code Razorpay does not close now is logged, for the owner
    to close in Razorpay's dashboard.
    """
    codes = codes_to_close(remember_codes(known_codes(entry), bays), all_open=True)
    if not codes:
        return
    api = api_for(entry.data)
    try:
        for code_id in codes:
            if not await hass.async_add_executor_job(_closed, api, code_id):
                LOGGER.error(
                    "QR code %s of the removed account is still open at Razorpay: close it "
                    "in Razorpay's dashboard (Payments, QR Codes)",
                    code_id,
                )
    finally:
        api.close()
