"""The agent's meters: the count of each metered bay's session and what its state says.

Holds, per bay with a meter, the last valid reading, the running session's
:class:`~pi_mqtt_relay.energy_rules.Count` (timed sessions are counted too: the owner's energy
sold), the last session that ended (named by its OFF) and the final energy of every session it
counted (the answer to an ``on`` resent for one); the rules
themselves are in :mod:`pi_mqtt_relay.energy_rules`. Not thread-safe by itself: the agent
calls it under its lock (meters are read outside it).
"""

from __future__ import annotations

import logging
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any

from .config import AgentConfig
from .energy_rules import (
    REPORT_EVERY_S,
    Count,
    MeterLimits,
    Observation,
    Report,
    observe,
    observe_timed,
    report_due,
    start_count,
    valid,
)
from .meters import Meter, MeterFault, Reading
from .sessions import ActiveSession, Counted, Reason

_LOGGER = logging.getLogger(__name__)


@dataclass
class BayMetering:
    """One metered bay."""

    meter: Meter
    limits: MeterLimits
    last: Reading | None = None
    # The running session (metered or timed) and its count.
    session: str | None = None
    count: Count | None = None
    # The last session that ended and its final energy: named by the OFF state.
    ended: tuple[str, float] | None = None
    # A session held after a reboot (clock not synced) and its stored count, for its "on".
    held: tuple[str, Counted] | None = None
    reported: Report | None = None
    failing: bool = False


@dataclass(frozen=True)
class Refused:
    """A command refused, why, and the session it named (None: a malformed one names none)."""

    session: str | None
    reason: Reason


def read_meter(bay_id: str, meter: Meter, mono: float) -> Reading | None:
    """Read one meter; None when it did not answer (any error of a driver counts as that)."""
    try:
        return meter.read(mono)
    except MeterFault as err:
        _LOGGER.debug("%s: meter did not answer: %s", bay_id, err)
    except Exception:
        _LOGGER.exception("%s: meter read failed", bay_id)
    return None


def _unseen_s(counted: Counted | None, down_s: float) -> float:
    """How long a stored count's bay may have drawn unread.

    ``down_s`` stopped (0 unless the agent crashed on this boot: after a clean stop or a
    reboot the relay was off), plus the time before the stop since the count was last stored
    (with a report, at least every ``REPORT_EVERY_S`` while on).
    """
    return 0.0 if counted is None else max(0.0, down_s) + REPORT_EVERY_S


def _ending(bay: BayMetering, active: ActiveSession | None) -> bool:
    """Whether the bay's counted session is not ``active`` any more (it is ending)."""
    return active is None or active.session != bay.session


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class Metering:
    """The metered bays of one agent."""

    def __init__(self, config: AgentConfig, meters: Mapping[str, Meter]) -> None:
        self._steps = config.metering
        self._bays: dict[str, BayMetering] = {}
        for bay in config.bays:
            if bay.meter is not None and bay.id in meters:
                limits = MeterLimits(
                    max_power_w=bay.meter.max_power_w,
                    silent_s=config.metering.meter_silent_s,
                )
                self._bays[bay.id] = BayMetering(meters[bay.id], limits)
        # Each counted session that ended: (bay id, final energy).
        self._energies: dict[str, tuple[str, float]] = {}

    @property
    def meters(self) -> dict[str, Meter]:
        """Each metered bay's meter."""
        return {bay_id: bay.meter for bay_id, bay in self._bays.items()}

    def metered(self, bay_id: str) -> bool:
        """Whether the bay has a meter (may be sold energy)."""
        return bay_id in self._bays

    def counted(self, bay_id: str, active: ActiveSession) -> Counted | None:
        """What to store of ``active``'s count.

        A session not started yet counts from the last counter reading (the relay was off
        since).
        """
        bay = self._bays.get(bay_id)
        if bay is None:
            return None
        if bay.session == active.session and bay.count is not None:
            return Counted(bay.count.energy_wh, bay.count.counter_wh)
        if bay.held is not None and bay.held[0] == active.session:
            return bay.held[1]
        return Counted(0.0, bay.last.energy_wh if bay.last else None)

    def switched(
        self, bay_id: str, before: ActiveSession | None, after: ActiveSession | None, mono: float
    ) -> None:
        """A decision was carried out: a session started or ended, the relay switched."""
        bay = self._bays.get(bay_id)
        if bay is None:
            return
        if (before is None) != (after is None):
            bay.meter.load_switched(after is not None, mono)
        if after is not None and (before is None or before.session != after.session):
            held = bay.held is not None and bay.held[0] == after.session
            counted = self.counted(bay_id, after)
            # A held session's bay went off with the power: unseen only until that cut.
            self._begin(bay, after, counted, mono, _unseen_s(counted, 0.0) if held else 0.0)
        elif after is None and before is not None:
            if bay.count is not None and bay.session == before.session:
                self.ended_before(bay_id, before.session, bay.count.energy_wh)
            bay.session, bay.count = None, None

    def resumed(
        self,
        bay_id: str,
        active: ActiveSession,
        counted: Counted | None,
        mono: float,
        down_s: float,
    ) -> None:
        """A stored session continues after ``down_s`` stopped, counting from its stored count."""
        bay = self._bays.get(bay_id)
        if bay is not None:
            self._begin(bay, active, counted, mono, _unseen_s(counted, down_s))
            bay.meter.load_switched(True, mono)

    def hold(self, bay_id: str, session: str, counted: Counted | None) -> None:
        """A stored session waits for its ``on`` (see ``sessions.Resume.HOLD``).

        When that comes, it goes on counting from its stored count (kept until the agent
        stops, as the held session itself is).
        """
        bay = self._bays.get(bay_id)
        if bay is not None and counted is not None:
            bay.held = (session, counted)

    def expired_while_stopped(self, bay_id: str, session: str, counted: Counted | None) -> None:
        """A stored session ended while the agent was down: its OFF names it."""
        if counted is not None:
            self.ended_before(bay_id, session, counted.energy_wh)

    def ended_before(self, bay_id: str, session: str, energy_wh: float) -> None:
        """The bay's counted session ended (now or before a restart): its OFF names it."""
        bay = self._bays.get(bay_id)
        if bay is not None:
            bay.ended = (session, energy_wh)
            self._energies[session] = (bay_id, energy_wh)

    def last_ended(self, bay_id: str, active: ActiveSession | None) -> tuple[str, float] | None:
        """The bay's last ended counted session and its energy, to store.

        With ``active`` (what is about to be stored) no longer the counted session, the
        counted one is ending now.
        """
        bay = self._bays.get(bay_id)
        if bay is None:
            return None
        if bay.session is not None and bay.count is not None and _ending(bay, active):
            return (bay.session, bay.count.energy_wh)
        return bay.ended

    def remember(self, energies: Mapping[str, tuple[str, float]]) -> None:
        """The final energies of the sessions counted before a restart."""
        self._energies.update({s: e for s, e in energies.items() if e[0] in self._bays})

    def energies(
        self, active: Mapping[str, ActiveSession | None], kept: Container[str]
    ) -> dict[str, tuple[str, float]]:
        """Each ended counted session still ``kept`` (finished), with its bay and energy, to store.

        With ``active`` (what is about to be stored) no longer a bay's counted session, the
        counted one is ending now. Sessions no longer kept are forgotten here too.
        """
        self._energies = {s: e for s, e in self._energies.items() if s in kept}
        energies = dict(self._energies)
        for bay_id in self._bays:
            last = self.last_ended(bay_id, active.get(bay_id))
            if last is not None:
                energies[last[0]] = (bay_id, last[1])
        return {s: e for s, e in energies.items() if s in kept}

    @staticmethod
    def _begin(
        bay: BayMetering,
        active: ActiveSession,
        counted: Counted | None,
        mono: float,
        unseen_s: float = 0.0,
    ) -> None:
        bay.ended, bay.held = None, None
        energy, counter = (counted.energy_wh, counted.counter_wh) if counted else (0.0, None)
        bay.session = active.session
        bay.count = start_count(mono, counter, energy, unseen_s=unseen_s)

    def observe(
        self, bay_id: str, active: ActiveSession | None, reading: Reading | None, mono: float
    ) -> Observation | None:
        """One poll of the bay's meter; the observation of its running session, if any."""
        bay = self._bays[bay_id]
        if (reading is None) != bay.failing:
            bay.failing = reading is None
            log = _LOGGER.warning if bay.failing else _LOGGER.info
            log("%s: meter %s", bay_id, "stopped answering" if bay.failing else "answers again")
        if reading is not None and valid(reading):
            bay.last = reading
        if active is None or bay.count is None or bay.session != active.session:
            return None
        if active.energy_wh is None:
            outcome = observe_timed(bay.count, reading, mono, full=active.full, limits=bay.limits)
        else:
            outcome = observe(
                bay.count,
                reading,
                mono,
                paid_wh=active.energy_wh,
                full=active.full,
                limits=bay.limits,
            )
        bay.count = outcome.count
        return outcome

    def report_due(self, bay_id: str, active: ActiveSession | None, mono: float) -> bool:
        """Whether the bay's energy or power moved a step since its last state (or 10 s)."""
        bay = self._bays[bay_id]
        return report_due(
            bay.reported,
            self._report(bay, active, mono),
            step_wh=self._steps.report_step_wh,
            step_w=self._steps.report_step_w,
            running=active is not None,
        )

    @staticmethod
    def _energy(bay: BayMetering, active: ActiveSession | None) -> float | None:
        if active is not None:
            return bay.count.energy_wh if bay.count and bay.session == active.session else None
        return bay.ended[1] if bay.ended else None

    def _report(self, bay: BayMetering, active: ActiveSession | None, mono: float) -> Report:
        return Report(
            energy_wh=self._energy(bay, active),
            power_w=bay.last.power_w if bay.last else None,
            at=mono,
        )

    def state_fields(
        self,
        bay_id: str,
        active: ActiveSession | None,
        mono: float,
        refused: Refused | None = None,
    ) -> dict[str, Any]:
        """``power_w`` and ``energy_wh`` of a metered bay's state; notes them as reported.

        When the bay is off after a session, ``session`` names that session. The answer to a
        refused command while off (``refused``) never names another session: an ``on`` resent
        for a session this bay counted and ended (``rejected_ended``) names it with its own
        final energy, any other refusal names none and has no energy. It is not noted as
        reported (the bay's own state is unchanged).
        """
        bay = self._bays.get(bay_id)
        if bay is None:
            return {}
        report = self._report(bay, active, mono)
        if active is None and refused is not None:
            power = {"power_w": _round(report.power_w), "energy_wh": None}
            energy = self._energies.get(refused.session or "")
            if refused.reason is not Reason.REJECTED_ENDED or energy is None or energy[0] != bay_id:
                return power
            return power | {"session": refused.session, "energy_wh": _round(energy[1])}
        bay.reported = report
        fields: dict[str, Any] = {
            "power_w": _round(report.power_w),
            "energy_wh": _round(report.energy_wh),
        }
        if active is None and bay.ended is not None:
            fields["session"] = bay.ended[0]
        return fields
