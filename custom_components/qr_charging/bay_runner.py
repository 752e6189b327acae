"""One runner per bay: its driver, its session's lifecycle, its dashboard state.

The rules live in ``session_rules`` and ``report_rules`` (plain Python): a report from the bay
becomes a verdict (``report_rules.read_report``) carried out here, and every end or failure
is an ``Ending`` applied by ``endings.Endings``. This module holds the Home Assistant side:
driver commands, events and the timers (``timers.BayTimers``). Every decision is made in one
change of the books, after any wait; when a change cannot be stored, nothing is sent that
powers the bay, an ``off`` owed at a deadline is still sent, and the decision is tried again
later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send

from . import session_rules as rules
from .books import Books
from .catalog import Bay
from .const import EVENT_SESSION_STARTED, LOGGER
from .drivers.base import BayDriver, BayReport
from .ending_rules import Ending, RefundMode
from .endings import Endings
from .energy_rules import METER_INVALID, implausible, resumed_count
from .ledger import Ledger, Wanted
from .notices import Notices, bay_signal
from .records import RUNNING_STATES, BayTotals, SessionRecord, SessionState
from .report_rules import ReportVerdict, Verdict, read_report, tells
from .running_energy import RunningEnergy
from .session_rules import PAID_ONLY, STARTING_ONLY, Resume
from .site_gate import SiteGate
from .store import StorageError
from .timers import BayTimers


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


def bay_status(session: SessionRecord | None, *, online: bool, fault: str | None) -> BayStatus:
    """What a bay's status sensor shows: its running session first, then why it is idle."""
    if session is not None:
        active = session.state is SessionState.ACTIVE
        return BayStatus.CHARGING if active else BayStatus.STARTING
    if not online:
        return BayStatus.OFFLINE
    return BayStatus.FAULT if fault else BayStatus.IDLE


async def stored_or_retried(job: Coroutine[Any, Any, Any]) -> None:
    """Run a bay's job; a change it could not store was set up to be retried.

    After an unload (the store closed) the work is left to the next setup, which resumes from
    the ledger.
    """
    try:
        await job
    except StorageError:
        LOGGER.debug("A bay's change was not stored; it is tried again later")


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def _started(session: SessionRecord) -> dict[str, Any]:
    """What ``qr_charging_session_started`` tells."""
    return {
        "bay": session.bay_id,
        "session_id": session.session_id,
        "until": _iso(session.until),
        "seconds": session.seconds,
        "owner": session.owner,
        # Sold by the kWh: the energy paid for and its price (0 for time).
        "energy_wh": session.energy_paid_wh,
        "price_per_kwh_paise": session.price_per_kwh_paise,
    }


def _verdict(
    ledger: Ledger,
    session: SessionRecord | None,
    report: BayReport,
    now: float,
    driver: BayDriver,
) -> tuple[ReportVerdict, float | None]:
    """``read_report``'s verdict, and the energy to bill when it must be bounded.

    An agent's energy figure no meter could count (``energy_rules.implausible``) is a meter
    fault, billed at most the bound.
    """
    meter = driver.reported_meter
    bound = implausible(session, report.session_id, report.energy_wh, now, meter)
    if bound is None:
        return read_report(ledger, session, report, now), None
    return ReportVerdict(Verdict.METERED_END, reason=METER_INVALID), bound


def _believed(session: SessionRecord | None, report: BayReport, driver: BayDriver) -> bool:
    """Whether a report's energy figure is one its meter could have counted (``_verdict``)."""
    meter = driver.reported_meter
    return implausible(session, report.session_id, report.energy_wh, time.time(), meter) is None


def _log_ignored(bay_id: str, session: SessionRecord, report: BayReport, verdict: Verdict) -> None:
    """A report of power that agrees with nothing HA commanded: it counts for nothing."""
    if verdict is Verdict.OVERSTATED:
        LOGGER.warning(
            "Bay %s reports power for %s until %s, past the paid %s; ignored",
            bay_id,
            session.session_id,
            _iso(report.until),
            _iso(session.until),
        )
    else:
        # A relay powered until a time already past is no acknowledgement.
        LOGGER.warning(
            "Bay %s reports %s powered until %s, already past; ignored",
            bay_id,
            session.session_id,
            _iso(report.until),
        )


def _log_availability(bay_id: str, online: bool, was_online: bool | None) -> None:
    """Log a change of the bay's availability (not its first news of being online)."""
    if online and was_online is not None:
        LOGGER.info("Bay %s is back online", bay_id)
    elif not online:
        LOGGER.info("Bay %s is unavailable (its agent or switch is offline)", bay_id)


class BayRunner:
    """Runs one bay's sessions through its driver."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        entry: ConfigEntry,
        bay: Bay,
        books: Books,
        endings: Endings,
        notices: Notices,
        settings: BaySettings,
        gate: SiteGate | None = None,
        make_driver: Callable[[Callable[[BayReport], None], Callable[[], None]], BayDriver],
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.bay = bay
        self.books = books
        self.endings = endings
        self.notices = notices
        self.settings = settings
        self.gate = gate  # its site's rules (none for a bay whose site was removed)
        self.driver = make_driver(self._on_report, self._on_driver_change)
        self._was_online: bool | None = None  # last seen online (None: unknown); logs changes
        self.signal = bay_signal(entry.entry_id, bay.bay_id)
        self.fault: str | None = None
        self.last_report: BayReport | None = None
        self.energy = RunningEnergy(books, self.driver, self._task)
        self.timers = BayTimers(
            hass,
            bay_id=bay.bay_id,
            ack_timeout_s=settings.ack_timeout_s,
            on_ack_expired=self._ack_expired,
            on_deadline=self._deadline_reached,
        )

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
        return bay_status(self.session, online=self.driver.online, fault=self.fault)

    @property
    def limit_s(self) -> int:
        """The longest session: the bay's own cap, and the agent's when it announces one."""
        limit = self.bay.max_minutes * 60
        return min(limit, self.driver.max_session_s) if self.driver.max_session_s else limit

    @callback
    def _on_driver_change(self) -> None:
        """The bay's availability or description changed: log a change of availability once."""
        if (online := self.driver.online) != self._was_online:
            _log_availability(self.bay.bay_id, online, self._was_online)
            self._was_online = online
        self.energy.note(self.session)  # a switch bay's meter counted a reading
        self.async_notify_entities()

    @callback
    def async_notify_entities(self) -> None:
        """Tell the bay's entities to refresh (the dispatcher signal they listen to)."""
        async_dispatcher_send(self.hass, self.signal)

    # -- lifecycle -------------------------------------------------------------------------------

    async def async_setup(self) -> None:
        """Listen to the bay, then pick up where the ledger says the bay was."""
        now = time.time()
        first = self.session
        resume = rules.resume(first, first=True, now=now) if first is not None else None
        if first is not None and resume is Resume.DEADLINE:
            assert first.until is not None
            # Before listening: the bay's first report must be read against this session.
            paid = first.energy_paid_wh or None
            self.driver.resume(first.session_id, first.until, paid, resumed_count(first))
        await self.driver.async_setup()
        if first is not None and resume is Resume.END and first.sells_energy:
            # Its end bills the energy: the bay's retained state (or the agent's answer) tells.
            await self.driver.async_wait_state(self.settings.ack_timeout_s, partial(tells, first))
        # The bay's first report may already have settled it (an agent that ended it meanwhile).
        for index, session in enumerate(self.books.ledger.running_sessions(self.bay.bay_id)):
            match rules.resume(session, first=not index, now=now):
                case Resume.END:
                    await self.async_end(session, Ending.deadline(session, send_off=True))
                case Resume.DEADLINE:
                    self.timers.deadline(session)
                case Resume.ACK:
                    self.timers.ack(session)
                case Resume.START:
                    self._task(self.async_handle_paid(session), session)
                case Resume.INTERRUPTED:
                    await self.async_end(session, self._failure("interrupted"))

    def _task(self, job: Coroutine[Any, Any, Any], session: SessionRecord | None = None) -> None:
        """Run work for this bay as a task of the entry, so an unload waits for it to finish."""
        name = f"qr_charging {self.bay.bay_id} {session.session_id if session else 'report'}"
        self.entry.async_create_task(self.hass, stored_or_retried(job), name)

    async def async_unload(self) -> None:
        """Stop timers and listening; sessions go on and resume at the next setup."""
        self.timers.stop()
        await self.driver.async_unload()

    def retry(self, job: Callable[[], Coroutine[Any, Any, Any]], session: SessionRecord) -> None:
        """A decision could not be stored: make it again a little later."""
        self.timers.retry(session.session_id, lambda: self._task(job(), session))

    @callback
    def _ack_expired(self, session: SessionRecord) -> None:
        if session.state is SessionState.STARTING:
            failure = self._failure("no_acknowledgement", STARTING_ONLY)
            self._task(self.async_end(session, failure), session)

    @callback
    def _deadline_reached(self, session: SessionRecord) -> None:
        if session.state is SessionState.ACTIVE and not rules.deadline_ahead(session, time.time()):
            self._task(self.async_end(session, Ending.deadline(session, send_off=True)), session)

    # -- starting ------------------------------------------------------------------------------

    def _settle(self, ledger: Ledger, session: SessionRecord, now: float) -> rules.PaidOutcome:
        """Decide a paid session of this bay in the change under way (``rules.settle_paid``)."""
        return rules.settle_paid(
            ledger,
            session,
            online=self.driver.online,
            limit_s=self.limit_s,
            now=now,
            margin_s=self.settings.ack_timeout_s + rules.DEADLINE_SLACK_S,
            metered=self.driver.metered,
            gate=self.gate,
        )

    def power_now(
        self, ledger: Ledger, session: SessionRecord, now: float
    ) -> rules.PaidOutcome | None:
        """In the change that opened a paid session: start or top up at once, if that is it.

        Only when the bay's availability is known and the decision powers the bay; the caller
        commits the change, then hands the outcome to ``async_powered_by``. Anything else (a
        refusal, an availability still on its way) is left as it was, for ``async_handle_paid``.
        """
        if self.timers.stopped or not self.driver.known or session.state is not SessionState.PAID:
            return None
        outcome = self._settle(ledger, session, now)
        return outcome if outcome.command is not None else None

    async def async_handle_paid(self, session: SessionRecord) -> None:
        """A payment (or the owner) asks for time: start, top up, or refuse and refund."""
        if self.timers.stopped:
            return
        # Just after a (re)start the bay's availability may still be on its way.
        await self.driver.async_wait_known(self.settings.ack_timeout_s)
        try:
            async with self.books.change(Wanted(reference_ids={session.session_id})) as ledger:
                # Decided in the change (with its link: ``paid_grace_s``): another delivery, a
                # stop or a deadline may have changed the bay while this waited.
                if session.state is not SessionState.PAID:
                    return
                outcome = self._settle(ledger, session, time.time())
        except StorageError:
            # Nothing was stored and nothing is sent: the payment stays paid, to be tried again.
            self.retry(lambda: self.async_handle_paid(session), session)
            return
        if outcome.command is None:
            await self.async_end(session, self._failure(outcome.decision.value, PAID_ONLY))
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
            self.timers.ack(session)
        else:
            self.timers.deadline(session)
        self.async_notify_entities()
        await self._async_send_on(command)

    async def _async_send_on(self, command: rules.OnCommand) -> None:
        try:
            await self.driver.async_turn_on(
                command.session_id, command.until, command.duration, command.sent, command.energy_wh
            )
        except Exception:
            # A start then fails at its acknowledgement time; a top-up that never lands shows
            # as the bay switching off before the deadline, and its share is refunded then.
            LOGGER.exception("Could not send on to bay %s", self.bay.bay_id)

    # -- reports from the bay ------------------------------------------------------------------

    @callback
    def _on_report(self, report: BayReport) -> None:
        self.last_report = report
        # An agent's count so far (an OFF's is stored by its end), if a meter could count it.
        if report.powered and _believed(self.session, report, self.driver):
            self.energy.note(self.session)
        self._task(self._async_handle_report(report))

    async def _async_handle_report(self, report: BayReport) -> None:
        """Carry out what the report means (``_verdict``: ``report_rules.read_report``, bounded)."""
        session = self.session
        now = time.time()
        verdict, bound = _verdict(self.books.ledger, session, report, now, self.driver)
        if verdict.verdict is Verdict.FOREIGN_POWER:
            # Power nobody paid for (an ended, refunded or unknown session): cut it.
            LOGGER.warning(
                "Bay %s is powered for %s, which is not its session; switching off",
                self.bay.bay_id,
                report.session_id,
            )
            await self.driver.async_turn_off(report.session_id)
            return
        if session is None or verdict.verdict is Verdict.NOTHING:
            self.async_notify_entities()
            return
        match verdict.verdict:
            case Verdict.OVERSTATED | Verdict.STALE:
                _log_ignored(self.bay.bay_id, session, report, verdict.verdict)
                return
            case Verdict.ACKNOWLEDGED:
                await self._async_acknowledged(session, now)
                return
            case Verdict.TOP_UP_REFUSED:
                assert report.until is not None
                await self.endings.async_top_up_refused(session, report.until, self)
                return
            case Verdict.START_REJECTED:
                failure = self._failure(verdict.reason or "rejected", STARTING_ONLY)
                await self.async_end(session, failure)
            case Verdict.METERED_END:
                prorata, reason = self.bay.prorata, verdict.reason or ""
                ending = Ending.reported(reason, session, report, prorata=prorata, bound=bound)
                await self.async_end(session, ending)
            case Verdict.RAN_OUT:
                await self.async_end(session, Ending.deadline(session, send_off=False))
            case Verdict.AGENT_RESTARTED | Verdict.ASK_AGENT:
                assert verdict.command is not None
                await self._async_send_on(verdict.command)
            case Verdict.POWER_CUT:
                # Off first all the same: the report may be spoofed; a refunded relay stays off.
                refund = RefundMode.PRORATA if self.settings.auto_refund else RefundMode.NONE
                await self.async_end(session, Ending.end("power_cut", send_off=True, refund=refund))
                return
        self.async_notify_entities()

    async def _async_acknowledged(self, session: SessionRecord, now: float) -> None:
        """The bay powers the starting session: it is active."""
        try:
            async with self.books.change():
                confirmed = rules.confirm(session, now)
        except StorageError:
            # Still starting: the acknowledgement timer stays, and ends it with an "off".
            LOGGER.exception("Bay %s: could not store the acknowledgement", self.bay.bay_id)
            return
        if not confirmed:
            return
        self.timers.ack_done()
        self.fault = None
        self.notices.clear_repair(f"start_failed_{self.bay.bay_id}")
        self.notices.clear_repair(f"meter_fault_{self.bay.bay_id}")
        self.timers.deadline(session)
        self.notices.fire(EVENT_SESSION_STARTED, _started(session))
        self.async_notify_entities()

    # -- ending --------------------------------------------------------------------------------

    def _failure(self, reason: str, states: frozenset[SessionState] = RUNNING_STATES) -> Ending:
        """The session cannot run: failed from ``states``, the bay told off, refunded (option)."""
        return Ending.fail(reason, auto_refund=self.settings.auto_refund, states=states)

    async def async_end(self, session: SessionRecord, ending: Ending) -> int | None:
        """End or fail the bay's session (``Endings.async_end`` with this bay's part)."""
        return await self.endings.async_end(session, ending, self)

    async def async_send_off(self, session_id: str) -> None:
        """Tell the bay ``off``; a failure to send is logged (the bay's own deadline holds)."""
        try:
            await self.driver.async_turn_off(session_id)
        except Exception:
            LOGGER.exception("Could not send off to bay %s", self.bay.bay_id)
