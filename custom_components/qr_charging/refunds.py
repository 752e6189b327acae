"""Money going back: refunds recorded with the change that owes them, sent once, settled.

Each refund is recorded in the same transaction as the failure or end that owes it, with its
own idempotency key, and only then sent; a send that does not get an answer is sent again with
the same key by reconciliation, so Razorpay pays it once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.exceptions import ServiceValidationError
from homeassistant.util.ulid import ulid_now

from . import payment_rules
from .account_api import AccountApi
from .books import Books
from .catalog import (
    CURRENCY,
    paise_to_rupees,
)
from .const import DOMAIN, EVENT_REFUND, LOGGER
from .ending_rules import Ending, apply_ending
from .ledger import Ledger, Wanted
from .notices import Notices
from .payment_rules import MIN_REFUND_PAISE, Settlement
from .razorpay_api import RazorpayError, RazorpayRequestError, is_outage
from .razorpay_events import NOTE_REFUND_KEY, NOTE_SESSION, RefundNotice
from .records import RefundRecord, RefundState, SessionRecord
from .session_rules import mark_refunded, refund_owed
from .store import StorageError

# Answers that are not final: the same key still being processed (409), too many requests (429).
RETRIED_STATUSES = frozenset({409, 429})


def refused_for_good(err: RazorpayError) -> bool:
    """Razorpay refused the refund itself (4xx): sending the same refund again cannot succeed.

    A 409, a 429, any 5xx, a timeout or a lost connection are not answers about the refund:
    it is sent again later with the same idempotency key, so Razorpay pays it once.
    """
    status = err.status if isinstance(err, RazorpayRequestError) else None
    return status is not None and 400 <= status < 500 and status not in RETRIED_STATUSES


def owed_text(ledger: Ledger, session: SessionRecord) -> str:
    """What a failed session still owes its customer, for the owner (``₹15.00``); "" if nothing.

    In the payment's own currency when it is not rupees (a static QR code's ``currency_mismatch``).
    """
    if not (owed := refund_owed(ledger, session)):
        return ""
    payment = ledger.payments.get(session.payment_ids[0])
    currency = payment.currency if payment is not None else CURRENCY
    amount = paise_to_rupees(owed)
    return f"₹{amount}" if currency == CURRENCY else f"{amount} {currency}"


@dataclass(frozen=True, slots=True)
class Failure:
    """A session's ending as stored: why, its refunds to send, what the owner still owes.

    ``owed`` is ``owed_text``: "" for an end, or a failure refunded (or kept under ₹1).
    """

    reason: str
    refunds: list[RefundRecord]
    owed: str


class Refunds:
    """One account's refunds."""

    def __init__(
        self,
        books: Books,
        api: AccountApi,
        notices: Notices,
        *,
        auto_refund: bool,
        bay_name: Callable[[str], str],
    ) -> None:
        self.books = books
        self.api = api
        self.notices = notices
        self.auto_refund = auto_refund
        self.bay_name = bay_name
        # Keys of refunds being sent: one send of a refund at a time.
        self._sending: set[str] = set()

    # -- recording (inside a change) -----------------------------------------------------------

    def record(
        self, ledger: Ledger, session: SessionRecord, parts: list[tuple[str, int]], reason: str
    ) -> list[RefundRecord]:
        """Record a session's refunds, one per (payment, paise); return those to send."""
        refunds = [
            self._new(ledger, payment_id, paise, reason, session.session_id)
            for payment_id, paise in parts
        ]
        mark_refunded(ledger, session)
        return [r for r in refunds if r.state is RefundState.REQUESTED]

    @staticmethod
    def _new(
        ledger: Ledger, payment_id: str, amount: int, reason: str, session_id: str | None
    ) -> RefundRecord:
        """A refund recorded to be sent; one Razorpay would refuse as too small is only kept."""
        small = amount < MIN_REFUND_PAISE
        refund = RefundRecord(
            key=f"r-{ulid_now()}",
            payment_id=payment_id,
            amount=amount,
            created_at=time.time(),
            state=RefundState.TOO_SMALL if small else RefundState.REQUESTED,
            reason=reason,
            session_id=session_id,
        )
        payment_rules.add_refund(ledger, refund)
        return refund

    def apply(
        self, ledger: Ledger, session: SessionRecord, ending: Ending, now: float
    ) -> Failure | None:
        """Inside a change: apply an ending (``apply_ending``) and record the refunds it owes.

        None when it no longer applies; else what the tail needs once the change is stored:
        the refunds to send and what a failed session still owes (automatic refund off).
        """
        parts = apply_ending(ledger, session, ending, now)
        if parts is None:
            return None
        refunds = self.record(ledger, session, parts, ending.refund_reason or ending.reason)
        return Failure(ending.reason, refunds, owed_text(ledger, session))

    def refuse(self, ledger: Ledger, session: SessionRecord, reason: str) -> Failure:
        """Inside a change: fail a session and record its refunds (by default).

        A payment's webhook refuses what it bought this way in its own change (a static QR
        code's payment that buys nothing), so the payment and its refund are stored together.
        """
        ending = Ending.fail(reason, auto_refund=self.auto_refund)
        return self.apply(ledger, session, ending, time.time()) or Failure(reason, [], "")

    # -- the owner's refund --------------------------------------------------------------------

    async def async_refund(self, payment_id: str, amount: int | None, reason: str) -> RefundRecord:
        """Refund (part of) a payment once: recorded first, keyed so a retry cannot repeat it."""
        async with self.books.change(Wanted(payment_ids={payment_id})) as ledger:
            if payment_id not in ledger.payments:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="unknown_payment",
                    translation_placeholders={"payment_id": payment_id},
                )
            refundable = payment_rules.refundable(ledger, payment_id)
            amount = refundable if amount is None else amount
            if amount <= 0 or amount > refundable:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="invalid_refund_amount",
                    translation_placeholders={"amount": str(amount), "refundable": str(refundable)},
                )
            if amount < MIN_REFUND_PAISE:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="refund_too_small",
                    translation_placeholders={"amount": str(amount)},
                )
            payment = ledger.payments[payment_id]
            owed = ""
            refund = self._new(ledger, payment_id, amount, reason, payment.session_id)
            if (session := ledger.sessions.get(payment.session_id or "")) is not None:
                # A failed session refunded by hand is refunded too, once nothing is left.
                mark_refunded(ledger, session)
                owed = owed_text(ledger, session)
        await self.async_send(refund)
        if session is not None:
            self.remind(session, owed)
        return refund

    # -- money the owner owes back (automatic refund off) --------------------------------------

    def remind(self, session: SessionRecord, owed: str) -> None:
        """A failed session's money not refunded: one repair per session until it is.

        ``owed`` (``owed_text``) empty (refunded, or under ₹1) removes it; a part refunded
        updates its amount.
        """
        issue_id = f"refund_owed_{session.session_id}"
        if not owed:
            self.notices.clear_repair(issue_id)
            return
        self.notices.raise_repair(
            issue_id,
            "refund_owed",
            {
                "bay": self.bay_name(session.bay_id),
                "amount": owed,
                "payment_ids": ", ".join(session.payment_ids),
                "reason": session.end_reason or "",
                "session_id": session.session_id,
            },
        )

    async def async_remind_owed(self) -> None:
        """At start-up: the repair again for every failed session the ledger says is owed."""
        ledger = await self.books.store.async_owed()
        for session in ledger.sessions.values():
            if owed := owed_text(ledger, session):
                self.remind(session, owed)

    # -- sending and settling ------------------------------------------------------------------

    async def async_send_all(self, refunds: list[RefundRecord]) -> None:
        """Send refunds already stored."""
        for refund in refunds:
            await self.async_send(refund)

    async def async_send(self, refund: RefundRecord) -> None:
        """Ask Razorpay for a stored refund; a passing failure waits for the next reconcile.

        One send of a refund at a time: a second caller (reconciliation while the first send
        waits for Razorpay) leaves it to the first.
        """
        if refund.key in self._sending or refund.state is not RefundState.REQUESTED:
            return
        self._sending.add(refund.key)
        try:
            await self._async_send(refund)
        finally:
            self._sending.discard(refund.key)

    async def _async_send(self, refund: RefundRecord) -> None:
        try:
            answer = await self.api.run(
                self.api.client.refund,
                refund.payment_id,
                amount=refund.amount,
                idempotency_key=refund.key,
                notes={
                    "reason": refund.reason,
                    NOTE_SESSION: refund.session_id or "",
                    NOTE_REFUND_KEY: refund.key,
                },
            )
        except RazorpayError as err:
            if not refused_for_good(err):
                # An outage is logged once for the account (``razorpay_api.Reachability``).
                log = LOGGER.debug if is_outage(err) else LOGGER.warning
                log("Refund %s of %s not sent yet: %s", refund.key, refund.payment_id, err)
                return
            await self._async_settle(refund, RefundState.FAILED, None, str(err))
            return
        processed = answer.get("status") == "processed"
        state = RefundState.PROCESSED if processed else RefundState.PENDING
        await self._async_settle(refund, state, answer.get("id"))

    async def _async_settle(
        self,
        refund: RefundRecord,
        state: RefundState,
        refund_id: str | None,
        problem: str | None = None,
    ) -> None:
        """Store Razorpay's answer to a refund we sent."""
        try:
            async with self.books.change(Wanted(payment_ids={refund.payment_id})) as ledger:
                stored = ledger.refunds.get(refund.key)
                if stored is None:
                    LOGGER.error("Refund %s was sent but is not in the ledger", refund.key)
                    return
                stored.refund_id = refund_id or stored.refund_id
                if stored.state is not RefundState.REQUESTED:
                    # Its webhook came first and already settled it (and told of it).
                    return
                stored.state = state
                settlement = payment_rules.settlement(ledger, stored.payment_id)
        except StorageError:
            # Unchanged on disk: reconciliation sends it again with the same key.
            LOGGER.exception("Could not store the answer to refund %s", refund.key)
            return
        self.settled(stored, settlement, problem)

    def stuck(self, refund: RefundRecord) -> None:
        """A refund Razorpay has not accepted for a day: the owner should look (once)."""
        self.notices.raise_repair(
            f"refund_stuck_{refund.key}",
            "refund_stuck",
            {
                "payment_id": refund.payment_id,
                "amount": str(paise_to_rupees(refund.amount)),
            },
        )

    def settled(
        self, refund: RefundRecord, settlement: Settlement, problem: str | None = None
    ) -> None:
        """Tell of a refund's new state; a failed one needs the owner, a full one ends attention."""
        if refund.state is RefundState.FAILED:
            self.notices.raise_repair(
                f"refund_failed_{refund.key}",
                "refund_failed",
                {
                    "payment_id": refund.payment_id,
                    "amount": str(refund.amount),
                    "problem": problem or "refund.failed",
                },
            )
        else:
            # Paid after all (Razorpay reported a failed refund processed later), or answered.
            self.notices.clear_repair(f"refund_failed_{refund.key}")
            self.notices.clear_repair(f"refund_stuck_{refund.key}")
        if refund.state is not RefundState.FAILED and settlement.fully_refunded:
            for kind in ("payment_attention", "payment_unmatched"):
                self.notices.clear_repair(f"{kind}_{refund.payment_id}")
            # Refunded in full after all: the refusals on the way need nobody any more.
            for key in settlement.failed_keys:
                self.notices.clear_repair(f"refund_failed_{key}")
        self.notices.bay_changed(refund.bay_id)  # its revenue changed
        self.notices.fire(
            EVENT_REFUND,
            {
                "payment_id": refund.payment_id,
                "refund_id": refund.refund_id,
                "amount": refund.amount,
                "reason": refund.reason,
                "session_id": refund.session_id,
                "state": refund.state.value,
            },
        )

    async def async_check(self, refund: RefundRecord) -> None:
        """Ask Razorpay how a pending refund went (its webhook may never have come)."""
        assert refund.refund_id is not None
        try:
            remote = await self.api.run(
                self.api.client.fetch_refund, refund.payment_id, refund.refund_id
            )
        except RazorpayError as err:
            LOGGER.debug("Refund %s not checked: %s", refund.refund_id, err)
            return
        notice = RefundNotice(
            refund.refund_id, refund.payment_id, refund.amount, str(remote.get("status"))
        )
        async with self.books.change(Wanted.for_refund(notice)) as ledger:
            stored, changed = payment_rules.apply_refund(ledger, notice)
            settlement = payment_rules.settlement(ledger, refund.payment_id)
        if changed and stored is not None:
            self.settled(stored, settlement)
