"""The per-bay rules: given the bay's session, a command and the time, what happens.

Pure functions over immutable values, with the time passed in (:class:`Now`), so every
rule of the MQTT contract can be checked without a broker, a pin or a sleeping test:

* a session once ended or cancelled never powers the bay again;
* the same ``on`` twice is a no-op, a later ``until`` for the running session extends it;
* another session's ``on`` while the bay is busy is refused;
* no deadline is ever further away than the configured cap;
* deadlines are kept on the monotonic clock, and ``until`` (sender's wall clock) is only
  trusted when the Pi's wall clock agrees with the sender's ``sent``;
* a metered session (``energy_wh``) or the vehicle-full rule (``full``, on a timed session
  too) needs a bay with a meter; a session keeps its kind and its full rule, and a top-up
  takes the larger energy as it takes the later ``until`` (its counting and energy ends are
  in :mod:`pi_mqtt_relay.energy_rules`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from .commands import Command, FullRule, OffCommand, OnCommand, PlainOff, PlainOn

# When the sender's ``sent`` is this much ahead of the Pi's wall clock, the Pi's clock is
# taken to be wrong (a Pi has no RTC; before NTP it runs on the last saved time).
CLOCK_SKEW_TOLERANCE_S = 60.0
# Float slack when comparing a requested deadline with the cap.
CAP_SLACK_S = 1.0
# Ended and cancelled session ids are kept this long to refuse late or replayed commands.
FINISHED_RETENTION_S = 86400.0
# At most this many of them: far more than a day of real sessions on one agent.
FINISHED_KEPT = 1000
MANUAL_PREFIX = "manual-"


class Reason(StrEnum):
    """The ``reason`` field of the state payload (documented in docs/pi-agent.md)."""

    BOOT = "boot"
    COMMAND = "command"
    CLOCK_SKEW_DURATION_TRUSTED = "clock_skew_duration_trusted"
    TOP_UP = "top_up"
    DEADLINE = "deadline"
    OFF_COMMAND = "off_command"
    RESUMED = "resumed"
    SHUTDOWN = "shutdown"
    ENERGY_REACHED = "energy_reached"
    VEHICLE_FULL = "vehicle_full"
    METER_SILENT = "meter_silent"
    METER_INVALID = "meter_invalid"
    METER_BACKWARDS = "meter_backwards"
    METER_OVERPOWER = "meter_overpower"
    REJECTED_MALFORMED = "rejected_malformed"
    REJECTED_UNKNOWN_BAY = "rejected_unknown_bay"
    REJECTED_EXPIRED = "rejected_expired"
    REJECTED_CANCELLED = "rejected_cancelled"
    REJECTED_ENDED = "rejected_ended"
    REJECTED_BUSY = "rejected_busy"
    REJECTED_TOO_LONG = "rejected_too_long"
    REJECTED_STORAGE_ERROR = "rejected_storage_error"
    REJECTED_NO_METER = "rejected_no_meter"


class Finish(StrEnum):
    """How a session stopped; both kinds refuse any later ``on`` for it."""

    ENDED = "ended"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Now:
    """One reading of both clocks: monotonic for timers, wall for epoch timestamps."""

    mono: float
    wall: float


@dataclass(frozen=True)
class Limits:
    """The bay-independent and bay-specific limits a decision needs."""

    max_session_s: float
    default_s: float
    metered: bool = False


@dataclass(frozen=True)
class ActiveSession:
    """The session powering a bay.

    ``until`` is the deadline as the sender expressed it (its wall clock) and is what the
    state payload reports; ``deadline`` is the monotonic time the relay goes off (the time
    cap of a metered session). ``energy_wh`` is the energy paid for (None: a timed session);
    ``full`` the vehicle-full rule (either kind, at a bay with a meter).
    """

    session: str
    until: float
    deadline: float
    energy_wh: float | None = None
    full: FullRule | None = None

    def remaining(self, now: Now) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.deadline - now.mono)


@dataclass(frozen=True)
class StoredSession:
    """What the state file keeps of an active session to resume it after a restart.

    ``deadline_mono`` is exact across a crash of the agent alone (same ``boot_id``: the
    monotonic clock keeps counting); after a reboot the wall clock deadline is used once the
    clock is synced, never more than ``remaining`` (the time left when it was last stored);
    before that the session is held (see :class:`Resume`). A session at a metered bay also
    keeps its paid energy (if metered) and full rule, the energy counted and the meter's
    counter at that count (see :class:`Counted`), so a restart resumes counting from there.
    """

    session: str
    until: float
    deadline_mono: float
    deadline_wall: float
    remaining: float
    boot_id: str | None
    energy_wh: float | None = None
    full: FullRule | None = None
    counted: Counted | None = None

    @classmethod
    def of(
        cls, active: ActiveSession, now: Now, boot_id: str | None, counted: Counted | None = None
    ) -> StoredSession:
        """Snapshot an active session at ``now``."""
        remaining = active.remaining(now)
        return cls(
            session=active.session,
            until=active.until,
            deadline_mono=active.deadline,
            deadline_wall=now.wall + remaining,
            remaining=remaining,
            boot_id=boot_id,
            energy_wh=active.energy_wh,
            full=active.full,
            counted=counted,
        )


@dataclass(frozen=True)
class Counted:
    """A session's energy counted so far and the meter counter it was counted to."""

    energy_wh: float
    counter_wh: float | None


@dataclass(frozen=True)
class Decision:
    """The outcome of a command or a deadline for one bay.

    ``active`` is the bay's session afterwards. ``reason`` is None when nothing changed
    (the state is republished with its previous reason), a ``rejected_*`` value when the
    command was refused (state unchanged), else the reason of the change. ``finished``
    names a session id to remember as ended or cancelled.
    """

    active: ActiveSession | None
    reason: Reason | None
    changed: bool = False
    finished: tuple[str, Finish] | None = None
    problem: str | None = None

    @property
    def rejected(self) -> bool:
        """Whether the command was refused."""
        return self.reason is not None and self.reason.value.startswith("rejected_")


def _unchanged(active: ActiveSession | None) -> Decision:
    return Decision(active=active, reason=None)


def _reject(active: ActiveSession | None, reason: Reason, problem: str) -> Decision:
    return Decision(active=active, reason=reason, problem=problem)


def decide(
    active: ActiveSession | None,
    command: Command,
    *,
    now: Now,
    limits: Limits,
    finished: Mapping[str, Finish],
    manual_id: str,
) -> Decision:
    """Apply one parsed command to a bay.

    ``finished`` maps ended/cancelled session ids to how they finished; ``manual_id`` is
    the id given to a session started by a plain ``ON``.
    """
    if isinstance(command, OnCommand):
        return _on(active, command, now, limits, finished)
    if isinstance(command, OffCommand):
        return _off(active, command, finished)
    if isinstance(command, PlainOn):
        # A plain ON always starts a timed session, on a metered bay too.
        if active is not None:
            return _unchanged(active)
        return Decision(
            active=ActiveSession(
                session=manual_id,
                until=now.wall + limits.default_s,
                deadline=now.mono + limits.default_s,
            ),
            reason=Reason.COMMAND,
            changed=True,
        )
    assert isinstance(command, PlainOff)
    if active is None:
        return _unchanged(active)
    return _end(active.session)


def end(active: ActiveSession, reason: Reason) -> Decision:
    """The session ends by a rule (deadline, energy, meter): it never powers the bay again."""
    return Decision(
        active=None, reason=reason, changed=True, finished=(active.session, Finish.ENDED)
    )


def _end(session: str) -> Decision:
    """The bay's session ends on a command; it can never power the bay again."""
    return Decision(
        active=None,
        reason=Reason.OFF_COMMAND,
        changed=True,
        finished=(session, Finish.CANCELLED),
    )


def _off(
    active: ActiveSession | None, command: OffCommand, finished: Mapping[str, Finish]
) -> Decision:
    """An ``off`` ends only its own session."""
    if active is not None and active.session == command.session:
        return _end(command.session)
    if command.session in finished:
        return _unchanged(active)
    # Cancelled before its ``on`` arrived: remember it so a late ``on`` is refused.
    return Decision(active=active, reason=None, finished=(command.session, Finish.CANCELLED))


def _refusal(
    active: ActiveSession | None,
    command: OnCommand,
    limits: Limits,
    finished: Mapping[str, Finish],
) -> Decision | None:
    """Refusals of an ``on`` that do not depend on the clock."""
    finish = finished.get(command.session)
    if finish is Finish.CANCELLED:
        return _reject(active, Reason.REJECTED_CANCELLED, "session was cancelled")
    if finish is Finish.ENDED:
        return _reject(active, Reason.REJECTED_ENDED, "session has already ended")
    if command.duration > limits.max_session_s + CAP_SLACK_S:
        return _reject(
            active,
            Reason.REJECTED_TOO_LONG,
            f"duration {command.duration:g} s exceeds max_session_s {limits.max_session_s:g}",
        )
    if active is not None and active.session != command.session:
        return _reject(active, Reason.REJECTED_BUSY, f"bay is busy with session {active.session}")
    return _kind_refusal(active, command, limits)


def _kind_refusal(
    active: ActiveSession | None, command: OnCommand, limits: Limits
) -> Decision | None:
    """Energy and vehicle full need a meter, and a session keeps its kind."""
    if command.energy_wh is not None and not limits.metered:
        return _reject(active, Reason.REJECTED_NO_METER, "bay has no meter to count energy")
    if command.full is not None and not limits.metered:
        return _reject(active, Reason.REJECTED_NO_METER, "bay has no meter to see a full vehicle")
    if active is not None and (active.energy_wh is None) != (command.energy_wh is None):
        kind = "timed" if active.energy_wh is None else "metered"
        return _reject(active, Reason.REJECTED_MALFORMED, f"session {active.session} is {kind}")
    return None


def _top_up(active: ActiveSession, command: OnCommand, now: Now, limits: Limits) -> Decision:
    """The running session's ``on`` again.

    A later ``until`` extends it, a larger ``energy_wh`` adds energy; else it is a no-op.
    """
    later = command.until > active.until
    more = (command.energy_wh or 0.0) > (active.energy_wh or 0.0)
    if not (later or more):
        return _unchanged(active)
    deadline = active.deadline
    if later:
        # Both ``until`` values are on the sender's clock, so their difference is right even
        # when the Pi's own clock is wrong.
        deadline += command.until - active.until
    if deadline - now.mono > limits.max_session_s + CAP_SLACK_S:
        return _reject(active, Reason.REJECTED_TOO_LONG, "top-up would exceed max_session_s")
    return Decision(
        active=replace(
            active,
            until=max(command.until, active.until),
            deadline=deadline,
            energy_wh=command.energy_wh if more else active.energy_wh,
        ),
        reason=Reason.TOP_UP,
        changed=True,
    )


def _on(
    active: ActiveSession | None,
    command: OnCommand,
    now: Now,
    limits: Limits,
    finished: Mapping[str, Finish],
) -> Decision:
    """Rules for a JSON ``on``."""
    refusal = _refusal(active, command, limits, finished)
    if refusal is not None:
        return refusal
    if active is not None:
        return _top_up(active, command, now, limits)
    if command.sent - now.wall > CLOCK_SKEW_TOLERANCE_S:
        # The sender's clock is ahead of ours: ours is wrong (a Pi without RTC or NTP).
        # ``until`` cannot be compared with our clock, ``duration`` can be trusted.
        remaining = command.duration
        reason = Reason.CLOCK_SKEW_DURATION_TRUSTED
    else:
        # Our clock agrees, or the command was delayed (queued while we were away):
        # ``until`` holds, and a command past it is stale.
        remaining = command.until - now.wall
        reason = Reason.COMMAND
        if remaining <= 0:
            return _reject(active, Reason.REJECTED_EXPIRED, "'until' has passed")
    if remaining > limits.max_session_s + CAP_SLACK_S:
        return _reject(
            active, Reason.REJECTED_TOO_LONG, f"{remaining:.0f} s exceeds max_session_s from now"
        )
    return Decision(
        active=ActiveSession(
            session=command.session,
            until=command.until,
            deadline=now.mono + remaining,
            energy_wh=command.energy_wh,
            full=command.full,
        ),
        reason=reason,
        changed=True,
    )


def expire(active: ActiveSession | None, now: Now) -> Decision | None:
    """Switch the bay off when its deadline has come; None while it has not."""
    if active is None or now.mono < active.deadline:
        return None
    return end(active, Reason.DEADLINE)


class Resume(StrEnum):
    """What becomes of a stored session at start."""

    RESUME = "resume"
    EXPIRED = "expired"
    # After a reboot with a wall clock not yet synced: its remaining time cannot be known
    # (the power-cut time is unknown), so the bay stays off and the session is neither ended
    # nor cancelled; the sender's next "on" for it (HA re-sends one) powers what is left.
    HOLD = "hold"


def resume(
    stored: StoredSession,
    now: Now,
    boot_id: str | None,
    max_session_s: float,
    *,
    wall_clock_synced: bool,
) -> tuple[Resume, ActiveSession | None]:
    """The session to continue after a restart, for its remaining time only."""
    if boot_id is not None and stored.boot_id == boot_id:
        remaining = stored.deadline_mono - now.mono
    elif not wall_clock_synced:
        return Resume.HOLD, None
    else:
        remaining = stored.deadline_wall - now.wall
    remaining = min(remaining, stored.remaining, max_session_s)
    if remaining <= 0:
        return Resume.EXPIRED, None
    return Resume.RESUME, ActiveSession(
        session=stored.session,
        until=stored.until,
        deadline=now.mono + remaining,
        energy_wh=stored.energy_wh,
        full=stored.full,
    )


def prune_finished(
    finished: Mapping[str, tuple[Finish, float]], wall_now: float
) -> dict[str, tuple[Finish, float]]:
    """Forget ended/cancelled ids older than a day (by wall clock) and beyond the newest few.

    ``FINISHED_KEPT`` bounds them: a flood of "off" for unknown sessions must not grow the
    state file (rewritten with fsync on every change) for ever.
    """
    recent = [
        (at, session, kind)
        for session, (kind, at) in finished.items()
        if wall_now - at < FINISHED_RETENTION_S
    ]
    recent.sort(reverse=True)
    return {session: (kind, at) for at, session, kind in recent[:FINISHED_KEPT]}
