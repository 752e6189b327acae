"""One runner per bay: its driver, its session's lifecycle, its timers, its dashboard state.

The rules live in ``session_rules`` (plain Python); this module holds the Home Assistant side:
timers, events, and calls to the driver. Every decision is made in one change of the books,
after any wait; when a change cannot be stored, nothing is sent that powers the bay, an ``off``
owed at a deadline is still sent, and the decision is tried again later.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.event import async_call_later, async_track_point_in_utc_time
from homeassistant.util.ulid import ulid_now

from . import session_rules as rules
from .books import Books
from .catalog import Bay
from .const import DOMAIN, EVENT_SESSION_ENDED, EVENT_SESSION_STARTED, LOGGER
from .drivers.base import BayDriver, BayReport
from .ledger import Ledger
from .notices import Notices, bay_signal
from .records import RUNNING_STATES, BayTotals, RefundRecord, SessionRecord, SessionState
from .refunds import Refunds
from .store import StorageError

# Reasons of an "OFF" before the deadline that are passing: the agent restarted and resumes the
# session from its own disk. Any other such "OFF" means the power was cut.
PASSING_REASONS = frozenset({"boot", "shutdown"})
# A session whose deadline is this close when the bay reports it off has simply run out.
DEADLINE_SLACK_S = 2.0
# Why a session ends when its paid time is up.
DEADLINE = "deadline"
# A decision that could not be stored is tried again this much later.
STORAGE_RETRY_S = 10.0
# The states a failure was decided in (an acknowledgement may come while it waits).
PAID_ONLY = frozenset({SessionState.PAID})
STARTING_ONLY = frozenset({SessionState.STARTING})


@dataclass(frozen=True, slots=True)
class BaySettings:
    """The account's options every bay follows."""

    ack_timeout_s: float
    auto_refund: bool


class BayStatus(StrEnum):
    """The bay's status sensor."""

    IDLE = "idle"
    STARTING = "starting"
    CHARGING = "charging"
    OFFLINE = "offline"
    FAULT = "fault"


class RefundMode(StrEnum):
    """How much to give back when a session is stopped early."""

    NONE = "none"
    PRORATA = "prorata"
    FULL = "full"


def stop_at_shutdown(action: Callable[[datetime], None], what: str) -> HassJob[[datetime], None]:
    """A timer job HA drops when it stops: deadlines live on in the ledger and the agents."""
    return HassJob(action, f"qr_charging {what}", cancel_on_shutdown=True)


async def stored_or_retried(job: Coroutine[Any, Any, Any]) -> None:
    """Run a bay's job; a change it could not store was set up to be retried.

    After an unload (the store closed) the work is left to the next setup, which resumes from
    the ledger.
    """
    try:
        await job
    except StorageError:
        LOGGER.debug("A bay's change was not stored; it is tried again later")


def _active(session: SessionRecord) -> bool:
    """Whether a session powers its bay now (read afresh after every wait)."""
    return session.state is SessionState.ACTIVE


def _extended(session: SessionRecord, now: float) -> bool:
    """Whether the session's deadline is still ahead: a top-up moved it since it was armed."""
    return session.until is not None and session.until - now > DEADLINE_SLACK_S


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


class BayRunner:
    """Runs one bay's sessions through its driver."""

    def __init__(  # noqa: PLR0917 - the parts a bay is run with
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        bay: Bay,
        books: Books,
        refunds: Refunds,
        notices: Notices,
        settings: BaySettings,
        make_driver: Callable[[Callable[[BayReport], None], Callable[[], None]], BayDriver],
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.bay = bay
        self.books = books
        self.refunds = refunds
        self.notices = notices
        self.settings = settings
        self.driver = make_driver(self._on_report, self._on_driver_change)
        # Whether the bay was last seen online (None: not known yet), to log each change once.
        self._was_online: bool | None = None
        self.signal = bay_signal(entry.entry_id, bay.bay_id)
        self.fault: str | None = None
        self.last_report: BayReport | None = None
        self._ack_timer: CALLBACK_TYPE | None = None
        self._deadline_timer: CALLBACK_TYPE | None = None
        # Sessions being ended now: one end at a time, one "off" for it.
        self._ending: set[str] = set()
        # One retry timer per session whose decision could not be stored.
        self._retry_timers: dict[str, CALLBACK_TYPE] = {}
        # Set at unload: a start still in flight then leaves the session to the next setup.
        self._unloaded = False
        # The session the timers are for: a refused second payment must not touch them.
        self._timed_session: str | None = None

    # -- state for the entities ----------------------------------------------------------------

    @property
    def session(self) -> SessionRecord | None:
        """The bay's running session."""
        return self.books.ledger.running_session(self.bay.bay_id)

    @property
    def totals(self) -> BayTotals:
        """What the bay kept and served, over all history."""
        return self.books.ledger.totals.get(self.bay.bay_id) or BayTotals()

    @property
    def status(self) -> BayStatus:
        """What the status sensor shows."""
        session = self.session
        if session is not None and session.state is SessionState.ACTIVE:
            return BayStatus.CHARGING
        if session is not None:
            return BayStatus.STARTING
        if not self.driver.online:
            return BayStatus.OFFLINE
        return BayStatus.FAULT if self.fault else BayStatus.IDLE

    @property
    def limit_s(self) -> int:
        """The longest session: the bay's own cap, and the agent's when it announces one."""
        limit = self.bay.max_minutes * 60
        return min(limit, self.driver.max_session_s) if self.driver.max_session_s else limit

    @callback
    def _on_driver_change(self) -> None:
        """The bay's availability or description changed: log a change of availability once."""
        online = self.driver.online
        if online != self._was_online:
            if online:
                if self._was_online is not None:
                    LOGGER.info("Bay %s is back online", self.bay.bay_id)
            else:
                LOGGER.info(
                    "Bay %s is unavailable (its agent or switch is offline)", self.bay.bay_id
                )
            self._was_online = online
        self.async_write()

    @callback
    def async_write(self) -> None:
        """Tell the bay's entities to refresh."""
        self.notices.bay_changed(self.bay.bay_id)

    # -- lifecycle -------------------------------------------------------------------------------

    async def async_setup(self) -> None:
        """Listen to the bay, then pick up where the ledger says the bay was."""
        session = self.session
        now = time.time()
        live = session is not None and session.state is SessionState.ACTIVE
        if live and session is not None and session.until is not None and session.until > now:
            # Before listening: the bay's first report must be read against this session.
            self.driver.resume(session.session_id, session.until)
        await self.driver.async_setup()
        # The bay's first report may already have settled it (an agent that ended it meanwhile).
        for index, session in enumerate(self.books.ledger.running_sessions(self.bay.bay_id)):
            if session.state is SessionState.ACTIVE and session.until is not None and not index:
                if session.until <= now:
                    await self._async_finish(session, DEADLINE, send_off=True)
                else:
                    self._schedule_deadline(session)
            elif session.state is SessionState.STARTING and not index:
                # Unknown whether the command got through: the bay's retained state will tell.
                self._schedule_ack(session)
            elif (
                session.state is SessionState.PAID
                and now - session.created_at < rules.RESUME_PAID_WITHIN_S
            ):
                # Paid just before a restart: start it, or top up the one running.
                self._task(self.async_handle_paid(session), session)
            else:
                await self._async_fail(session, "interrupted")

    def _task(self, job: Coroutine[Any, Any, Any], session: SessionRecord | None = None) -> None:
        """Run work for this bay as a task of the entry, so an unload waits for it to finish."""
        name = f"qr_charging {self.bay.bay_id} {session.session_id if session else 'report'}"
        self.entry.async_create_task(self.hass, stored_or_retried(job), name)

    async def async_unload(self) -> None:
        """Stop timers and listening; sessions go on and resume at the next setup."""
        self._unloaded = True
        self.cancel_timers()
        await self.driver.async_unload()

    def cancel_timers(self, session_id: str | None = None) -> None:
        """Drop pending timers, all or one session's (the ledger keeps the deadlines)."""
        for key in [k for k in self._retry_timers if session_id in (None, k)]:
            self._retry_timers.pop(key)()
        if session_id is None or self._timed_session == session_id:
            for timer in (self._ack_timer, self._deadline_timer):
                if timer is not None:
                    timer()
            self._ack_timer = self._deadline_timer = None

    def _retry(self, job: Callable[[], Coroutine[Any, Any, Any]], session: SessionRecord) -> None:
        """A decision could not be stored: make it again a little later."""
        LOGGER.error(
            "Bay %s: could not store a change of session %s; trying again in %.0f s",
            self.bay.bay_id,
            session.session_id,
            STORAGE_RETRY_S,
        )
        if self._unloaded:
            return
        key = session.session_id
        if (pending := self._retry_timers.pop(key, None)) is not None:
            pending()

        @callback
        def _again(_now: datetime) -> None:
            self._retry_timers.pop(key, None)
            self._task(job(), session)

        # Its own timer: retrying one session's decision never drops another's timers.
        self._retry_timers[key] = async_call_later(
            self.hass, STORAGE_RETRY_S, stop_at_shutdown(_again, "retry")
        )

    # -- starting ------------------------------------------------------------------------------

    def settle_paid(self, ledger: Ledger, session: SessionRecord, now: float) -> rules.PaidOutcome:
        """Decide a paid session of this bay in the change under way (``rules.settle_paid``)."""
        return rules.settle_paid(
            ledger,
            session,
            online=self.driver.online,
            limit_s=self.limit_s,
            now=now,
            margin_s=self.settings.ack_timeout_s + DEADLINE_SLACK_S,
        )

    def power_now(
        self, ledger: Ledger, session: SessionRecord, now: float
    ) -> rules.PaidOutcome | None:
        """In the change that opened a paid session: start or top up at once, if that is it.

        Only when the bay's availability is known and the decision powers the bay; the caller
        commits the change, then hands the outcome to ``async_powered_by``. Anything else (a
        refusal, an availability still on its way) is left as it was, for ``async_handle_paid``.
        """
        if self._unloaded or not self.driver.known or session.state is not SessionState.PAID:
            return None
        outcome = self.settle_paid(ledger, session, now)
        return outcome if outcome.command is not None else None

    async def async_handle_paid(self, session: SessionRecord) -> None:
        """A payment (or the owner) asks for time: start, top up, or refuse and refund."""
        if self._unloaded:
            return
        # Just after a (re)start the bay's availability may still be on its way.
        await self.driver.async_wait_known(self.settings.ack_timeout_s)
        try:
            async with self.books.change() as ledger:
                # Decided in the change: another delivery, a stop or a deadline may have
                # changed the bay while this waited.
                if session.state is not SessionState.PAID:
                    return
                outcome = self.settle_paid(ledger, session, time.time())
        except StorageError:
            # Nothing was stored and nothing is sent: the payment stays paid, to be tried again.
            self._retry(lambda: self.async_handle_paid(session), session)
            return
        if outcome.command is None:
            await self._async_fail(session, outcome.decision.value, expected=PAID_ONLY)
            return
        await self.async_powered_by(outcome)

    async def async_powered_by(self, outcome: rules.PaidOutcome) -> None:
        """A start or top-up is stored: arm its timers, show it, and send ``on``.

        Runs right after the commit that stored it (the bay's own, or the webhook's). A session
        changed since (stopped, ended, topped up again) is left to whoever changed it.
        """
        session, command = outcome.session, outcome.command
        assert command is not None
        if not session.running or session.until != command.until:
            return
        if session.state is SessionState.STARTING:
            self._schedule_ack(session)
        else:
            self._schedule_deadline(session)
        self.async_write()
        await self._async_send_on(command)

    async def _async_send_on(self, command: rules.OnCommand) -> None:
        try:
            await self.driver.async_turn_on(
                command.session_id, command.until, command.duration, command.sent
            )
        except Exception:
            # A start then fails at its acknowledgement time; a top-up that never lands shows
            # as the bay switching off before the deadline, and its share is refunded then.
            LOGGER.exception("Could not send on to bay %s", self.bay.bay_id)

    async def async_start_owner(self, minutes: int) -> SessionRecord:
        """A session the owner gives (no payment); the ledger marks it as such."""
        if self.session is not None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="bay_busy",
                translation_placeholders={"bay": self.bay.bay_id},
            )
        if minutes * 60 > self.limit_s:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="too_long",
                translation_placeholders={"bay": self.bay.bay_id, "max": str(self.limit_s // 60)},
            )
        if not self.driver.online:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="bay_offline",
                translation_placeholders={"bay": self.bay.bay_id},
            )
        session = SessionRecord(
            session_id=f"s-{ulid_now()}",
            bay_id=self.bay.bay_id,
            state=SessionState.PAID,
            created_at=time.time(),
            seconds=minutes * 60,
            owner=True,
        )
        async with self.books.change() as ledger:
            ledger.sessions[session.session_id] = session
        await self.async_handle_paid(session)
        return session

    # -- reports from the bay ------------------------------------------------------------------

    @callback
    def _on_report(self, report: BayReport) -> None:
        self.last_report = report
        self._task(self._async_handle_report(report))

    async def _async_handle_report(self, report: BayReport) -> None:
        session = self.session
        now = time.time()
        if report.powered:
            if session is not None and report.session_id == session.session_id:
                await self._async_powered(session, report, now)
                return
            # Power nobody paid for (an ended, refunded or unknown session): cut it.
            LOGGER.warning(
                "Bay %s is powered for %s, which is not its session; switching off",
                self.bay.bay_id,
                report.session_id,
            )
            await self.driver.async_turn_off(report.session_id)
            return
        if session is None or report.session_id not in (None, session.session_id):
            self.async_write()
            return
        rejected = (report.reason or "").startswith("rejected")
        if session.state is SessionState.STARTING and rejected and report.fresh:
            await self._async_fail(session, report.reason or "rejected", expected=STARTING_ONLY)
        elif session.state is SessionState.ACTIVE and session.until is not None:
            if session.until - now <= DEADLINE_SLACK_S:
                await self._async_finish(session, DEADLINE, send_off=False)
            elif report.reason in PASSING_REASONS:
                # The agent restarted. It resumes the session from its disk, and then this
                # same "on" is a no-op; if its disk lost the session, this powers the rest.
                await self._async_send_on(
                    rules.OnCommand(
                        session.session_id, session.until, math.ceil(session.until - now), now
                    )
                )
            else:
                # Off before the paid deadline without HA asking (an "off" from elsewhere, a
                # plug switched by hand, a top-up the bay never took): refund the rest. Off is
                # sent first all the same: whoever said "off" may not be the bay (a spoofed
                # report), and the relay must not stay on for a refunded session.
                refund = RefundMode.PRORATA if self.settings.auto_refund else RefundMode.NONE
                await self._async_finish(session, "power_cut", send_off=True, refund=refund)
                return
        self.async_write()

    async def _async_powered(self, session: SessionRecord, report: BayReport, now: float) -> None:
        """The bay reports power for its session: the acknowledgement, or a shorter deadline.

        Only a report that agrees with what HA commanded counts: never more time than was paid.
        """
        if (
            report.until is not None
            and session.until is not None
            and report.until > session.until + DEADLINE_SLACK_S
        ):
            LOGGER.warning(
                "Bay %s reports power for %s until %s, past the paid %s; ignored",
                self.bay.bay_id,
                session.session_id,
                _iso(report.until),
                _iso(session.until),
            )
            return
        if session.state is SessionState.STARTING:
            if report.until is not None and report.until <= now:
                # A relay powered until a time already past is no acknowledgement.
                LOGGER.warning(
                    "Bay %s reports %s powered until %s, already past; ignored",
                    self.bay.bay_id,
                    session.session_id,
                    _iso(report.until),
                )
                return
            try:
                async with self.books.change():
                    confirmed = rules.confirm(session, now)
            except StorageError:
                # Still starting: the acknowledgement timer stays, and ends it with an "off".
                LOGGER.exception("Bay %s: could not store the acknowledgement", self.bay.bay_id)
                return
            if confirmed:
                self._started(session)
            return
        if (
            session.state is SessionState.ACTIVE
            and report.until is not None
            and (report.reason or "").startswith("rejected")
            and rules.before_top_ups(self.books.ledger, session, report.until, DEADLINE_SLACK_S)
        ):
            await self._async_top_up_refused(session, report)
            return
        self.async_write()

    async def _async_top_up_refused(self, session: SessionRecord, report: BayReport) -> None:
        """The bay refused to extend (a top-up): it stops at the deadline before the top-up(s).

        Only a deadline the session had before its newest top-ups counts: a report of any
        other earlier time (spoofed, or of time already served) is no refusal.
        """
        assert report.until is not None
        try:
            async with self.books.change() as ledger:
                until = rules.before_top_ups(ledger, session, report.until, DEADLINE_SLACK_S)
                if not session.running or until is None:  # changed while this waited
                    return
                parts = rules.shorten(ledger, session, until)
                refunds = self.refunds.record(ledger, session, parts, "top_up_refused")
        except StorageError:
            self._retry(lambda: self._async_top_up_refused(session, report), session)
            raise
        self._schedule_deadline(session)
        self.async_write()
        await self.refunds.async_send_all(refunds)

    @callback
    def _started(self, session: SessionRecord) -> None:
        if self._ack_timer is not None:
            self._ack_timer()
            self._ack_timer = None
        self.fault = None
        self.notices.clear_repair(f"start_failed_{self.bay.bay_id}")
        self._schedule_deadline(session)
        self.notices.fire(
            EVENT_SESSION_STARTED,
            {
                "bay": self.bay.bay_id,
                "session_id": session.session_id,
                "until": _iso(session.until),
                "seconds": session.seconds,
                "owner": session.owner,
            },
        )
        self.async_write()

    # -- timers --------------------------------------------------------------------------------

    def _schedule_ack(self, session: SessionRecord) -> None:
        if self._unloaded:
            return
        if self._ack_timer is not None:
            self._ack_timer()

        @callback
        def _expired(_now: datetime) -> None:
            self._ack_timer = None
            if session.state is SessionState.STARTING:
                self._task(
                    self._async_fail(session, "no_acknowledgement", expected=STARTING_ONLY), session
                )

        self._timed_session = session.session_id
        self._ack_timer = async_call_later(
            self.hass, self.settings.ack_timeout_s, stop_at_shutdown(_expired, "acknowledgement")
        )

    def _schedule_deadline(self, session: SessionRecord) -> None:
        if self._unloaded:
            return
        if self._deadline_timer is not None:
            self._deadline_timer()
        assert session.until is not None

        @callback
        def _deadline(_now: datetime) -> None:
            self._deadline_timer = None
            if session.state is SessionState.ACTIVE and not _extended(session, time.time()):
                self._task(self._async_finish(session, DEADLINE, send_off=True), session)

        self._timed_session = session.session_id
        self._deadline_timer = async_track_point_in_utc_time(
            self.hass,
            stop_at_shutdown(_deadline, "deadline"),
            datetime.fromtimestamp(session.until, UTC),
        )

    # -- ending --------------------------------------------------------------------------------

    async def _async_finish(
        self,
        session: SessionRecord,
        reason: str,
        *,
        send_off: bool,
        refund: RefundMode = RefundMode.NONE,
        retry: bool = True,
    ) -> int:
        """End an active session, with its refund stored in the same change; return the refund.

        When the change cannot be stored, an ``off`` that was due is sent all the same (the
        bay must not stay on past what was paid), the end is tried again later unless the
        owner asked for it (they are told), and ``StorageError`` is raised.
        """
        if session.session_id in self._ending or not _active(session):
            return 0  # ended, or being ended (the bay's report of our own "off", say)
        self._ending.add(session.session_id)
        try:
            if send_off:
                # First, and whatever storing does: the bay must not wait (a backup holding
                # writes, a failing disk) to go off at the time paid for.
                await self._async_send_off(session.session_id)
            async with self.books.change() as ledger:
                if not _active(session):  # ended while the off was on its way
                    return 0
                now = time.time()
                if reason == DEADLINE and _extended(session, now):
                    # A top-up stored while this waited (a slow commit): the session goes on,
                    # and the top-up's own "on" (sent after its commit, so after this "off")
                    # powers the bay again until the new deadline.
                    return 0
                parts = self._refund_parts(session, refund, now)
                rules.finish(session, now, reason)
                refunds = self.refunds.record(ledger, session, parts, reason)
        except StorageError:
            if retry:
                self._retry(
                    lambda: self._async_finish(session, reason, send_off=send_off, refund=refund),
                    session,
                )
            raise
        finally:
            self._ending.discard(session.session_id)
        self.cancel_timers(session.session_id)
        served = (session.ended_at or 0) - (session.started_at or session.created_at)
        self.notices.fire(
            EVENT_SESSION_ENDED,
            {
                "bay": self.bay.bay_id,
                "session_id": session.session_id,
                "reason": reason,
                "served_s": max(round(served), 0),
                "owner": session.owner,
            },
        )
        self.async_write()
        await self.refunds.async_send_all(refunds)
        return sum(r.amount for r in refunds)

    def _refund_parts(
        self, session: SessionRecord, mode: RefundMode, now: float
    ) -> list[tuple[str, int]]:
        if mode is RefundMode.NONE:
            return []
        if mode is RefundMode.PRORATA:
            return rules.unserved_parts(self.books.ledger, session, now)
        return rules.refundable_parts(self.books.ledger, session)

    async def _async_send_off(self, session_id: str) -> None:
        try:
            await self.driver.async_turn_off(session_id)
        except Exception:
            LOGGER.exception("Could not send off to bay %s", self.bay.bay_id)

    async def async_stop(self, mode: RefundMode) -> dict[str, Any]:
        """Stop the bay's session now, refunding none, the unserved share, or all of it."""
        session = self.session
        if session is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="bay_idle",
                translation_placeholders={"bay": self.bay.bay_id},
            )
        refunds: list[RefundRecord] = []
        async with self.books.change() as ledger:
            # Decided in the change: the bay's acknowledgement may have come meanwhile.
            starting = session.state in (SessionState.PAID, SessionState.STARTING)
            refunded = 0
            if starting:
                # Not powered yet: nothing was served, so any refund asked for is all of it.
                parts = [] if mode is RefundMode.NONE else rules.refundable_parts(ledger, session)
                rules.fail(session, time.time(), "stopped")
                refunds = self.refunds.record(ledger, session, parts, f"stopped_{mode.value}")
                refunded = sum(r.amount for r in refunds)
        if not starting:
            refunded = await self._async_finish(
                session, "stopped", send_off=True, refund=mode, retry=False
            )
        else:
            self.cancel_timers(session.session_id)
            await self._async_send_off(session.session_id)
            self.notices.session_failed(
                session.bay_id, session.session_id, list(session.payment_ids), "stopped"
            )
            self.async_write()
            await self.refunds.async_send_all(refunds)
        return {
            "session_id": session.session_id,
            "refunded": refunded,
            "state": session.state.value,
        }

    async def _async_fail(
        self,
        session: SessionRecord,
        reason: str,
        *,
        expected: frozenset[SessionState] = RUNNING_STATES,
    ) -> None:
        """The session cannot run: fail it (from the states decided on), bay off, refund."""

        async def _off() -> None:
            # Before the refunds are sent: the bay must not wait for Razorpay's answer.
            # Whatever the bay makes of a late "on", "off" marks the session cancelled there.
            await self._async_send_off(session.session_id)

        try:
            failed = await self.refunds.async_fail_session(
                session, reason, expected=expected, before_refunds=_off
            )
        except StorageError:
            # Off all the same: a session that cannot be ended must not keep its bay on.
            await _off()
            self._retry(lambda: self._async_fail(session, reason, expected=expected), session)
            return
        if not failed:
            return
        self.cancel_timers(session.session_id)
        self.fault = reason
        self.async_write()
