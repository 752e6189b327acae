"""The agent: wires the rules, the relays, the state file and MQTT together.

Threads: paho's network thread delivers commands (:meth:`Agent.handle_command`); the
agent's own deadline thread switches relays off on the monotonic clock, so a deadline
holds whether or not the broker, the network or Home Assistant are there; the meter thread
polls the bays' meters and ends metered sessions by the energy rules, with the same
independence. One lock serialises them, so a command, a deadline and a reading never race
on the same bay (meters are read outside it).

Order of effects, chosen for safety: a session is written to the state file *before*
its relay is switched on; a relay is switched off *before* the file is updated.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from . import __version__
from .commands import MalformedCommand, parse_command
from .config import AgentConfig, BayConfig
from .discovery import discovery_payload
from .energy_rules import REPORT_EVERY_S
from .metering import Metering, Refused, read_meter
from .meters import Meter, build_meters
from .mqtt_link import MqttLink
from .relays import Relays
from .sessions import (
    MANUAL_PREFIX,
    ActiveSession,
    Decision,
    Finish,
    Limits,
    Now,
    Reason,
    Resume,
    StoredSession,
    decide,
    end,
    expire,
    prune_finished,
    resume,
)
from .state_file import SavedState, StateFile, current_boot_id, wall_clock_synced

_LOGGER = logging.getLogger(__name__)
# What builds the agent's MQTT link: (config, on_connected, on_command) -> link.
LinkFactory = Callable[[AgentConfig, Callable[[], None], Callable[[str, bytes], None]], MqttLink]
# While a session runs, its remaining time is re-stored this often; it bounds what a
# reboot with a wrong wall clock could serve twice.
CHECKPOINT_INTERVAL_S = 30.0


def system_now() -> Now:
    """Read the real clocks."""
    return Now(mono=time.monotonic(), wall=time.time())


def _number(value: float) -> float | int:
    """Whole numbers as ints in JSON (``14400`` rather than ``14400.0``)."""
    return int(value) if float(value).is_integer() else value


def _meter_object(bay: BayConfig) -> dict[str, Any]:
    """A metered bay's ``meter`` in the config message (a bay without one has no key)."""
    if bay.meter is None:
        return {}
    return {"meter": {"kind": bay.meter.kind, "max_power_w": _number(bay.meter.max_power_w)}}


class Agent:
    """A running relay agent for the bays of one configuration."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        pin_factory: Any = None,
        clock: Callable[[], Now] = system_now,
        boot_id: str | None = None,
        clock_synced: Callable[[], bool] = wall_clock_synced,
        relays: Relays | None = None,
        state_file: StateFile | None = None,
        link: LinkFactory = MqttLink,
        meters: Mapping[str, Meter] | None = None,
    ) -> None:
        """``relays``, ``state_file``, ``link`` and ``meters`` default to the real ones.

        Tests hand in their own: relays that record which session powered them, a state file
        that fails, a link that keeps what is published instead of sending it.
        """
        self._config = config
        self._clock = clock
        self._clock_synced = clock_synced
        self._boot_id = boot_id if boot_id is not None else current_boot_id()
        # Claiming the pins switches every relay off (initial_value=False).
        self._relays = relays if relays is not None else Relays(config.bays, pin_factory)
        self._metering = Metering(config, build_meters(config.bays) if meters is None else meters)
        self._store = state_file if state_file is not None else StateFile(config.state_file)
        self._link = link(config, self._publish_everything, self.handle_command)
        self._lock = threading.Condition(threading.RLock())
        self._active: dict[str, ActiveSession | None] = {bay.id: None for bay in config.bays}
        self._reason: dict[str, Reason] = {bay.id: Reason.BOOT for bay in config.bays}
        self._finished: dict[str, tuple[Finish, float]] = {}
        self._stopping = False
        self._failure: BaseException | None = None
        # The state file lags behind the relays (a failed save): retried until it works, so a
        # cancelled session cannot come back after a restart.
        self._unsaved = False
        self._threads: list[threading.Thread] = []
        # When the state file was last written (monotonic): the count's writes are throttled.
        self._saved_at = -math.inf
        self._meters_stop = threading.Event()

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Resume stored sessions, then connect and keep the deadlines.

        Raises OSError when the state file cannot be written: without it a session could
        not survive a restart, so the agent refuses to run rather than run unsafely.
        """
        try:
            self._resume_stored_sessions()
        except BaseException:
            self._relays.close()
            raise
        self._threads = [
            threading.Thread(target=self._guard, args=(self._keep_deadlines,), name="deadlines")
        ]
        if self._metering.meters:
            self._threads.append(
                threading.Thread(target=self._guard, args=(self._poll_meters,), name="meters")
            )
        for thread in self._threads:
            thread.start()
        self._link.start()

    def stop(self) -> None:
        """Relays off, remaining time stored for the next start, ``offline`` published."""
        with self._lock:
            self._stopping = True
            self._relays.all_off()
            now = self._clock()
            try:
                self._save(self._active, self._finished, now, stopped=True)
            except OSError:
                _LOGGER.exception("could not store the sessions while stopping")
            for bay in self._config.bays:
                self._publish_state(bay.id, now, Reason.SHUTDOWN, powered=False)
            self._lock.notify_all()
        self._meters_stop.set()
        for thread in self._threads:
            thread.join()
        self._link.stop()
        self._relays.close()
        for meter in self._metering.meters.values():
            meter.close()

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set (the CLI sets it on SIGTERM and SIGINT)."""
        self.start()
        try:
            while not stop.wait(0.5):
                if self._failure is not None:
                    raise RuntimeError("a deadline or meter keeper failed") from self._failure
        finally:
            self.stop()

    # -- commands ---------------------------------------------------------------------

    def handle_command(self, bay_id: str, payload: bytes) -> None:
        """Apply one ``set`` message; never raises on bad input."""
        bay = self._config.bay(bay_id)
        if bay is None:
            _LOGGER.warning("%s: command for unknown bay '%s'", Reason.REJECTED_UNKNOWN_BAY, bay_id)
            return
        try:
            command = parse_command(payload)
        except MalformedCommand as err:
            _LOGGER.warning("%s: %s: %s", bay_id, Reason.REJECTED_MALFORMED, err)
            with self._lock:
                now = self._clock()
                refused = Refused(None, Reason.REJECTED_MALFORMED)
                self._publish_state(bay_id, now, refused.reason, refused=refused)
            return
        with self._lock:
            if self._stopping or self._failure is not None:
                return
            now = self._clock()
            decision = decide(
                self._active[bay_id],
                command,
                now=now,
                limits=self._limits(bay),
                finished={session: kind for session, (kind, _) in self._finished.items()},
                manual_id=f"{MANUAL_PREFIX}{uuid.uuid4().hex[:12]}",
            )
            self._apply(bay_id, decision, now, getattr(command, "session", None))

    def _limits(self, bay: BayConfig) -> Limits:
        return Limits(
            max_session_s=self._config.max_session_s,
            default_s=bay.default_s,
            metered=self._metering.metered(bay.id),
        )

    def _apply(self, bay_id: str, decision: Decision, now: Now, session: str | None = None) -> None:
        """Carry out a decision: file before power on, power off before file.

        ``session``: the command's; a refusal's state (the bay off) is about it alone.
        """
        if decision.rejected and decision.reason is not None:
            _LOGGER.warning("%s: %s: %s", bay_id, decision.reason, decision.problem)
            refused = Refused(session, decision.reason)
            self._publish_state(bay_id, now, decision.reason, refused=refused)
            return
        before = self._active[bay_id]
        active = dict(self._active)
        active[bay_id] = decision.active
        finished = dict(self._finished)
        if decision.finished is not None:
            session, kind = decision.finished
            finished[session] = (kind, now.wall)
        if decision.changed or decision.finished is not None:
            if decision.active is None and before is not None:
                self._relays.off(bay_id)
            try:
                self._save(active, finished, now)
            except OSError:
                if decision.active is not None:
                    _LOGGER.exception("%s: cannot store the session; refused", bay_id)
                    refused = Refused(session, Reason.REJECTED_STORAGE_ERROR)
                    self._publish_state(bay_id, now, refused.reason, refused=refused)
                    return
                _LOGGER.exception("%s: relay is off, the state file was not updated", bay_id)
                self._unsaved = True
            self._active, self._finished = active, finished
            self._metering.switched(bay_id, before, decision.active, now.mono)
            if decision.active is not None and before is None:
                self._relays.on(bay_id)
            if decision.reason is not None:
                self._reason[bay_id] = decision.reason
            _LOGGER.info(
                "%s: %s, session %s (%s)",
                bay_id,
                "ON" if decision.active else "OFF",
                decision.active.session if decision.active else before and before.session,
                self._reason[bay_id],
            )
            self._lock.notify_all()
        self._publish_state(bay_id, now)

    # -- deadlines and persistence ----------------------------------------------------

    def _guard(self, keeper: Callable[[], None]) -> None:
        """Run a keeper (deadlines, meters); should it ever fail, every relay goes off at once.

        Without it no deadline or paid energy would hold, so a failure here switches
        everything off and makes :meth:`run` stop with an error (systemd then restarts the
        agent, which resumes the stored sessions).
        """
        try:
            keeper()
        except BaseException as err:
            _LOGGER.critical("%s failed; switching every relay off", keeper.__name__, exc_info=True)
            with self._lock:
                # Set first: an "on" after this point is refused (no deadline keeper left).
                self._failure = err
                self._relays.all_off()

    def _keep_deadlines(self) -> None:
        """Switch bays off at their deadlines and checkpoint the remaining time."""
        with self._lock:
            last_checkpoint = self._clock().mono
            while not self._stopping:
                now = self._clock()
                for bay_id, active in self._active.items():
                    decision = expire(active, now)
                    if decision is not None:
                        self._apply(bay_id, decision, now)
                running = [a.deadline for a in self._active.values() if a is not None]
                due = now.mono - last_checkpoint >= CHECKPOINT_INTERVAL_S
                if (running or self._unsaved) and due:
                    self._checkpoint(now)
                    last_checkpoint = now.mono
                timeout = CHECKPOINT_INTERVAL_S
                if running:
                    timeout = min(timeout, max(0.0, min(running) - now.mono))
                self._lock.wait(timeout)

    def _poll_meters(self) -> None:
        """Read every meter each ``meter_poll_s`` until the agent stops.

        At a fixed rate (the time a round takes is not added to the interval): the energy
        cut is late by at most what is drawn between two readings.
        """
        poll_s = self._config.metering.meter_poll_s
        # The first round at once: a session's count starts from the reading before it.
        due = time.monotonic()
        while not self._meters_stop.wait(max(0.0, due - time.monotonic())):
            self.poll_meters()
            due = max(due + poll_s, time.monotonic())

    def poll_meters(self) -> None:
        """Read each meter once and apply what it says.

        A metered session ends by the energy rules; otherwise the bay's state is published
        when it moved a step (and the count stored with it).
        """
        for bay_id, meter in self._metering.meters.items():
            mono = self._clock().mono
            reading = read_meter(bay_id, meter, mono)
            with self._lock:
                if self._stopping or self._failure is not None:
                    return
                active = self._active[bay_id]
                outcome = self._metering.observe(bay_id, active, reading, mono)
                now = self._clock()
                if active is not None and outcome is not None and outcome.end is not None:
                    # A meter's fault is the owner's business; the other ends are normal.
                    faulty = outcome.end.value.startswith("meter_")
                    (_LOGGER.warning if faulty else _LOGGER.info)(
                        "%s: session %s ends: %s%s",
                        bay_id,
                        active.session,
                        outcome.end,
                        f" ({outcome.problem})" if outcome.problem else "",
                    )
                    self._apply(bay_id, end(active, outcome.end), now)
                    continue
                if outcome is not None and outcome.problem:
                    # A timed session's meter fault ends nothing: its time is the clock's.
                    _LOGGER.debug("%s: meter fault ignored: %s", bay_id, outcome.problem)
                if self._metering.report_due(bay_id, active, now.mono):
                    # The count is stored with a report, at most every REPORT_EVERY_S (SD
                    # wear: a report step of 1 Wh would write per Wh); a resume judges the
                    # first rise over that time, so what is drawn meanwhile is still counted.
                    if active is not None and now.mono - self._saved_at >= REPORT_EVERY_S:
                        self._checkpoint(now)
                    self._publish_state(bay_id, now)

    def _checkpoint(self, now: Now) -> None:
        try:
            self._save(self._active, self._finished, now)
        except OSError:
            _LOGGER.exception("could not checkpoint the sessions")
            self._unsaved = True
        else:
            self._unsaved = False

    def _save(
        self,
        active: dict[str, ActiveSession | None],
        finished: dict[str, tuple[Finish, float]],
        now: Now,
        *,
        stopped: bool = False,
    ) -> None:
        sessions = {
            bay_id: StoredSession.of(
                session, now, self._boot_id, self._metering.counted(bay_id, session)
            )
            for bay_id, session in active.items()
            if session is not None
        }
        pruned = prune_finished(finished, now.wall)
        ended = {
            bay_id: last
            for bay_id, session in active.items()
            if (last := self._metering.last_ended(bay_id, session)) is not None
            and last[0] in pruned
        }
        energies = self._metering.energies(active, pruned)
        self._store.save(
            SavedState(
                sessions=sessions, finished=pruned, ended=ended, energies=energies, stopped=stopped
            )
        )
        self._saved_at = now.mono

    def _resume_stored_sessions(self) -> None:
        """After a crash or reboot: relays are off; unexpired sessions continue."""
        saved = self._store.load()
        now = self._clock()
        self._finished = prune_finished(saved.finished, now.wall)
        self._metering.remember(saved.energies)
        for bay_id, (session_id, energy_wh) in saved.ended.items():
            if session_id in self._finished:
                self._metering.ended_before(bay_id, session_id, energy_wh)
        for bay_id, stored in saved.sessions.items():
            if bay_id not in self._active:
                _LOGGER.warning("dropping the stored session of unknown bay %s", bay_id)
                continue
            outcome, session = resume(
                stored,
                now,
                self._boot_id,
                self._config.max_session_s,
                wall_clock_synced=self._clock_synced(),
            )
            if outcome is Resume.HOLD:
                self._metering.hold(bay_id, stored.session, stored.counted)
                _LOGGER.warning(
                    "%s: session %s held after a reboot: the clock is not synced yet, so the "
                    "time left is unknown; the bay stays off until its 'on' is sent again",
                    bay_id,
                    stored.session,
                )
            elif session is None:
                self._finished[stored.session] = (Finish.ENDED, now.wall)
                self._reason[bay_id] = Reason.DEADLINE
                self._metering.expired_while_stopped(bay_id, stored.session, stored.counted)
                _LOGGER.info("%s: session %s expired while stopped", bay_id, stored.session)
            else:
                self._active[bay_id] = session
                self._reason[bay_id] = Reason.RESUMED
                # The bay may have drawn while the agent was down only after a crash on this
                # boot (the relay kept its state); after a clean stop or a reboot it was off.
                crashed = not saved.stopped and stored.boot_id == self._boot_id
                down_s = stored.remaining - session.remaining(now) if crashed else 0.0
                self._metering.resumed(bay_id, session, stored.counted, now.mono, down_s)
                _LOGGER.info(
                    "%s: resuming session %s for %.1f s",
                    bay_id,
                    session.session,
                    session.remaining(now),
                )
        self._save(self._active, self._finished, now)
        for bay_id, session in self._active.items():
            if session is not None:
                self._relays.on(bay_id)

    # -- publishing -------------------------------------------------------------------

    def _state_payload(
        self,
        bay_id: str,
        now: Now,
        reason: Reason,
        powered: bool | None = None,
        refused: Refused | None = None,
    ) -> dict[str, Any]:
        active = self._active[bay_id]
        on = active is not None if powered is None else powered
        return {
            "state": "ON" if on else "OFF",
            "session": active.session if active else None,
            "until": active.until if active else None,
            "remaining": round(active.remaining(now), 1) if active else 0,
            "reason": reason.value,
            **self._metering.state_fields(bay_id, active, now.mono, refused),
        }

    def _publish_state(
        self,
        bay_id: str,
        now: Now,
        reason: Reason | None = None,
        *,
        powered: bool | None = None,
        refused: Refused | None = None,
    ) -> None:
        payload = self._state_payload(bay_id, now, reason or self._reason[bay_id], powered, refused)
        self._link.publish_json(self._link.topics.state(bay_id), payload, retain=True)

    def _publish_everything(self) -> None:
        """After each (re)connection: config, discovery and every bay's state."""
        topics = self._link.topics
        config = self._config
        self._link.publish_json(
            topics.config,
            {
                "node": config.node_id,
                "name": config.node_name,
                "sw_version": __version__,
                "bays": [
                    {"id": bay.id, "name": bay.name, **_meter_object(bay)} for bay in config.bays
                ],
                "max_session_s": _number(config.max_session_s),
            },
            retain=True,
        )
        for bay in config.bays:
            if config.ha_discovery:
                self._link.publish_json(
                    topics.discovery(bay.id), discovery_payload(config, topics, bay), retain=True
                )
            else:
                # Clears an announcement left from when discovery was on (no duplicates).
                self._link.publish(topics.discovery(bay.id), b"", retain=True)
        with self._lock:
            now = self._clock()
            for bay in config.bays:
                powered = False if self._stopping else None
                self._publish_state(bay.id, now, powered=powered)
