"""One way a session ends: an ``Ending`` applied by one rule in one change, then one tail.

Every end and failure goes through here: the deadline, a power cut, the owner's stop, no
acknowledgement, a refusal by the bay or by the rules, a restart that interrupted a session,
a payment too late, a bay removed. The rule (``ending_rules.apply_ending``) and the refunds it
owes are stored together; the tail then keeps the order the invariants need: timers cancelled,
``off`` first when due (before any refund), the event, the repair unless the sale was refused,
the refunds sent, the entities told. A session whose bay is gone has no bay part in the tail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from .books import Books
from .const import EVENT_SESSION_ENDED
from .drivers.base import BayDriver
from .ending_rules import Ending
from .energy_rules import METER_FAULTS
from .notices import Notices
from .records import SessionRecord, SessionState
from .refunds import Failure, Refunds
from .session_rules import (
    DEADLINE_SLACK_S,
    PAID_TOO_LATE,
    PaidDecision,
    before_top_ups,
    shorten,
)
from .static_qr import ABOVE_MAXIMUM, BELOW_MINIMUM, CURRENCY_MISMATCH, QR_CLOSED
from .store import StorageError
from .timers import BayTimers

# A sale refused (the bay busy or held, the amount, currency or time out of range, the payment
# late, or made to a static QR code that is no bay's any more): the bay is fine, so there is
# no "did not start" to repair (the session's event still says what happened). Money left
# unrefunded (automatic refund off) has its own repair per session (``Refunds.remind``).
SALE_REFUSALS = frozenset(
    {
        PaidDecision.REFUSE_BUSY.value,
        PaidDecision.REFUSE_TOO_LONG.value,
        PaidDecision.REFUSE_ENDING.value,
        PaidDecision.REFUSE_NO_METER.value,
        PaidDecision.REFUSE_CLOSED.value,
        PaidDecision.REFUSE_LOAD_CAP.value,
        BELOW_MINIMUM,
        ABOVE_MAXIMUM,
        PAID_TOO_LATE,
        CURRENCY_MISMATCH,
        QR_CLOSED,
    }
)


class EndingBay(Protocol):
    """The bay's part of an ending (its runner)."""

    timers: BayTimers
    fault: str | None  # why the bay's last start failed (its status shows ``fault``)
    driver: BayDriver  # its meter: the energy counted, the meter's name

    async def async_send_off(self, session_id: str) -> None:
        """Tell the bay ``off`` (never raises)."""

    def retry(self, job: Callable[[], Coroutine[Any, Any, Any]], session: SessionRecord) -> None:
        """Run ``job`` again a little later: its change could not be stored."""

    def async_notify_entities(self) -> None:
        """Tell the bay's entities to refresh."""


class Endings:
    """Ends and fails an account's sessions."""

    def __init__(self, *, books: Books, refunds: Refunds, notices: Notices) -> None:
        self.books = books
        self.refunds = refunds
        self.notices = notices
        # Sessions being ended now: one end at a time, one "off" for it.
        self._ending: set[str] = set()

    async def async_end(
        self, session: SessionRecord, ending: Ending, bay: EndingBay | None = None
    ) -> int | None:
        """Apply ``ending`` in one change, then its tail; return the paise refunded.

        None when it no longer applies (ended, failed or acknowledged meanwhile, or being ended
        already). When the change cannot be stored an ``off`` that was due is sent all the same
        (a bay is never left on past what was paid) and the bay tries again later, unless the
        owner asked (they are told); ``StorageError`` is raised, but for an automatic failure.
        """
        sid = session.session_id
        if bay is not None:
            ending = ending.measured(bay.driver.energy_for(sid))
        if session.state not in ending.states or (not ending.failed and sid in self._ending):
            return None  # ended, or being ended (the bay's report of our own "off", say)
        if not ending.failed:
            self._ending.add(sid)
        try:
            if bay is not None and ending.send_off and not ending.failed:
                # First, and whatever storing does: the bay must not wait (a backup holding
                # writes, a failing disk) to go off at the time paid for.
                await bay.async_send_off(sid)
            async with self.books.change() as ledger:
                stored = self.refunds.apply(ledger, session, ending, time.time())
        except StorageError:
            if bay is None or ending.by_owner:
                raise
            if ending.failed and ending.send_off:
                # A session that cannot be ended must not keep its bay on.
                await bay.async_send_off(sid)
            bay.retry(lambda: self.async_end(session, ending, bay), session)
            if ending.failed:
                return None
            raise
        finally:
            self._ending.discard(sid)
        if stored is None:
            return None
        await self.async_tail(session, ending, stored, bay)
        return sum(refund.amount for refund in stored.refunds)

    async def async_tail(
        self,
        session: SessionRecord,
        ending: Ending,
        stored: Failure,
        bay: EndingBay | None = None,
    ) -> None:
        """Once an ending is stored: bay off, tell of it, repair, send its refunds.

        A failure the owner did not ask for raises ``start_failed`` unless the sale was refused
        (the bay is fine) and, with money still owed, ``refund_owed`` for its session. The bay's
        entities are told last: its revenue keeps what was not refunded.
        """
        if bay is not None:
            bay.timers.cancel(session.session_id)
            if ending.repaired:
                bay.fault = ending.reason
            if ending.send_off and ending.failed:
                # Before the refunds are sent: the bay must not wait for Razorpay's answer.
                # Whatever the bay makes of a late "on", "off" marks the session cancelled there.
                await bay.async_send_off(session.session_id)
        if ending.announced:
            self._announce(session, ending)
        if ending.repaired and ending.reason not in SALE_REFUSALS:
            self.notices.raise_repair(
                f"start_failed_{session.bay_id}",
                "start_failed",
                {
                    "bay": self.refunds.bay_name(session.bay_id),
                    "reason": ending.reason,
                    "session_id": session.session_id,
                    "refund": "yes" if session.state is SessionState.REFUNDED else "no",
                },
            )
        if bay is not None and ending.reason in METER_FAULTS:
            self.notices.raise_repair(
                f"meter_fault_{session.bay_id}",
                "meter_fault",
                {
                    "bay": self.refunds.bay_name(session.bay_id),
                    "meter": bay.driver.meter or "?",
                    "reason": ending.reason,
                },
            )
        await self.refunds.async_send_all(stored.refunds)
        if ending.repaired:
            self.refunds.remind(session, stored.owed)
        if bay is not None:
            bay.async_notify_entities()
        else:
            self.notices.bay_changed(session.bay_id)

    async def async_top_up_refused(
        self, session: SessionRecord, reported: float, bay: EndingBay
    ) -> None:
        """The bay refused to extend (a top-up): it stops at the deadline before the top-up(s).

        The time cut off is refunded, per payment, in the change that shortens the session.
        """
        try:
            async with self.books.change() as ledger:
                until = before_top_ups(ledger, session, reported, DEADLINE_SLACK_S)
                if not session.running or until is None:  # changed while this waited
                    return
                parts = shorten(ledger, session, until)
                to_send = self.refunds.record(ledger, session, parts, "top_up_refused")
        except StorageError:
            bay.retry(lambda: self.async_top_up_refused(session, reported, bay), session)
            raise
        bay.timers.deadline(session)
        bay.async_notify_entities()
        await self.refunds.async_send_all(to_send)

    def _announce(self, session: SessionRecord, ending: Ending) -> None:
        if ending.failed:
            self.notices.session_failed(
                session.bay_id, session.session_id, list(session.payment_ids), ending.reason
            )
            return
        served = (session.ended_at or 0) - (session.started_at or session.created_at)
        self.notices.fire(
            EVENT_SESSION_ENDED,
            {
                "bay": session.bay_id,
                "session_id": session.session_id,
                "reason": ending.reason,
                "served_s": max(round(served), 0),
                "owner": session.owner,
                # A metered bay's session: the energy its meter counted (Wh) and, sold by
                # the kWh, its price (0 when sold by time).
                "energy_wh": session.energy_used_wh,
                "price_per_kwh_paise": session.price_per_kwh_paise,
            },
        )
