"""Catching what webhooks missed: paid links with no session, refunds unsent or unsettled.

Each pass also retries closing the static QR codes that are no bay's any more (``qr_codes``).
"""

from __future__ import annotations

import asyncio
import time

from .account_api import AccountApi
from .books import Books
from .const import (
    LOGGER,
    REFUND_CHECK_AFTER_S,
    REFUND_STUCK_S,
    WEBHOOK_SILENT_S,
    WEBHOOK_UNREACHABLE,
)
from .ledger import EVENT_MEMORY_S
from .payments import Payments
from .qr_codes import QrCodes
from .razorpay_api import RazorpayError
from .records import RefundState
from .refunds import Refunds, refused_for_good
from .store import StorageError


class Reconciler:
    """Asks Razorpay about what the ledger still waits for; one run at a time."""

    def __init__(
        self,
        *,
        books: Books,
        api: AccountApi,
        payments: Payments,
        refunds: Refunds,
        set_up_at: float,
        qr_codes: QrCodes,
    ) -> None:
        self.books = books
        self.api = api
        self.payments = payments
        self.refunds = refunds
        self.qr_codes = qr_codes
        # When the account was added: a webhook silent for a day after that is not set up.
        self.set_up_at = set_up_at
        self._running = asyncio.Lock()
        self._missed = False

    async def async_run(self) -> None:
        """One pass; a pass already under way makes this one a no-op."""
        if self._running.locked():
            return
        async with self._running:
            try:
                await self._async_pass(time.time())
            except StorageError:
                LOGGER.exception("Reconciliation stopped: the ledger could not be saved")

    async def _async_pass(self, now: float) -> None:
        # Read under the lock: a change under way may hold records that are not stored yet.
        async with self.books.lock:
            ledger = self.books.ledger
            requested = [r for r in ledger.refunds.values() if r.state is RefundState.REQUESTED]
            pending = [
                r
                for r in ledger.refunds.values()
                if r.state is RefundState.PENDING
                and r.refund_id
                and now - r.created_at > REFUND_CHECK_AFTER_S
            ]
            links = [link for link in ledger.links.values() if link.status == "created"]
        for refund in requested:
            if now - refund.created_at > REFUND_STUCK_S:
                self.refunds.stuck(refund)
            await self.refunds.async_send(refund)
        for refund in pending:
            await self.refunds.async_check(refund)
        # A QR code no bay sells through any more takes money until Razorpay closes it.
        await self.qr_codes.async_close_pending()
        self._missed = False
        for link in links:
            try:
                remote = await self.api.run(self.api.client.fetch_payment_link, link.link_id)
            except RazorpayError as err:
                if refused_for_good(err):
                    # This link only (made with other keys, or gone): the others are asked.
                    LOGGER.debug("Reconcile skipped %s: %s", link.link_id, err)
                    continue
                LOGGER.debug("Reconcile stopped at %s: %s", link.link_id, err)
                break
            outcomes = await self.payments.async_settle_link(link, remote)
            # A payment only reconciliation found: Razorpay's webhook did not bring it.
            self._missed |= any(o not in ("duplicate", "duplicate_delivery") for o in outcomes)
        await self.books.store.async_forget_events(now - EVENT_MEMORY_S)
        silent = now - self.set_up_at > WEBHOOK_SILENT_S and (
            await self.books.store.async_last_delivery() is None
        )
        if self._missed or silent:
            self.payments.notices.raise_repair(WEBHOOK_UNREACHABLE, WEBHOOK_UNREACHABLE, {})
