"""Durable memory of the agent: active sessions and recently finished session ids.

The finished entry of every session a metered bay counted also keeps its bay and final energy
(``"bay"``, ``"energy_wh"``): the OFF after a restart still names the bay's last one with its
energy, and an ``on`` resent for any of them is refused ``rejected_ended`` with its own energy.
``"stopped": true`` marks a file written by a clean stop (every relay off).

Written with write-to-temporary, fsync, atomic rename and a directory fsync, so after a
power cut the file is either the old or the new version, never half of each. A session
is stored *before* its relay is switched on (see :mod:`pi_mqtt_relay.agent`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .commands import FullRule
from .sessions import Counted, Finish, StoredSession

_LOGGER = logging.getLogger(__name__)
FORMAT_VERSION = 1
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


@dataclass
class SavedState:
    """The file's content: sessions by bay id, finished ids with (kind, wall time).

    ``energies`` maps each session a metered bay counted to (bay id, final energy), ``ended``
    a bay id to its last one (both stored in the sessions' finished entries, ``"last"``
    marking the latter: one that is not in ``finished`` is not kept); ``stopped`` that the
    agent stopped cleanly (its relays off) when it wrote the file.
    """

    sessions: dict[str, StoredSession] = field(default_factory=dict)
    finished: dict[str, tuple[Finish, float]] = field(default_factory=dict)
    ended: dict[str, tuple[str, float]] = field(default_factory=dict)
    energies: dict[str, tuple[str, float]] = field(default_factory=dict)
    stopped: bool = False


SYNCED_FLAG = Path("/run/systemd/timesync/synchronized")


def wall_clock_synced() -> bool:
    """Whether systemd-timesyncd has set the clock since boot (a Pi has no RTC of its own)."""
    return SYNCED_FLAG.exists()


def current_boot_id() -> str | None:
    """Linux's id of this boot: equal ids mean the monotonic clock kept counting."""
    try:
        return BOOT_ID_PATH.read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def _to_json(state: SavedState) -> dict[str, Any]:
    ended = _ended_to_json(state)
    return {
        "version": FORMAT_VERSION,
        **({"stopped": True} if state.stopped else {}),
        "sessions": {
            bay: {
                "session": s.session,
                "until": s.until,
                "deadline_mono": s.deadline_mono,
                "deadline_wall": s.deadline_wall,
                "remaining": s.remaining,
                "boot_id": s.boot_id,
                **_metered_to_json(s),
            }
            for bay, s in state.sessions.items()
        },
        "finished": {
            session: {"kind": kind.value, "at": at, **ended.get(session, {})}
            for session, (kind, at) in state.finished.items()
        },
    }


def _ended_to_json(state: SavedState) -> dict[str, dict[str, Any]]:
    """The extra keys of the finished entries of the sessions metered bays counted."""
    last = {session for session, _ in state.ended.values()}
    energies = {session: (bay, energy) for bay, (session, energy) in state.ended.items()}
    return {
        session: {"bay": bay, "energy_wh": energy, "last": session in last}
        for session, (bay, energy) in (state.energies | energies).items()
    }


def _energies_from_json(finished: dict[str, Any]) -> dict[str, tuple[str, float]]:
    """The counted sessions' bays and energies, from the finished entries that name a bay."""
    return {
        str(session): (str(f["bay"]), float(f["energy_wh"]))
        for session, f in finished.items()
        if f.get("bay") is not None and f.get("energy_wh") is not None
    }


def _ended_from_json(finished: dict[str, Any]) -> dict[str, tuple[str, float]]:
    """Each bay's last counted session (files before ``"last"`` kept only that one)."""
    ended: dict[str, tuple[str, float, float]] = {}
    for session, (bay, energy) in _energies_from_json(finished).items():
        at = float(finished[session]["at"])
        if finished[session].get("last", True) and (bay not in ended or ended[bay][2] < at):
            ended[bay] = (session, energy, at)
    return {bay: (session, energy) for bay, (session, energy, _) in ended.items()}


def _metered_to_json(s: StoredSession) -> dict[str, Any]:
    """A session's metering keys, each only when it has it.

    A timed session at a bay without a meter is stored exactly as before; at a metered bay it
    keeps its full rule and count as a metered session does.
    """
    data: dict[str, Any] = {} if s.energy_wh is None else {"energy_wh": s.energy_wh}
    if s.full is not None:
        data["full"] = {
            "below_w": s.full.below_w,
            "settle_s": s.full.settle_s,
            "grace_s": s.full.grace_s,
        }
    if s.counted is not None:
        data["counted_wh"] = s.counted.energy_wh
        data["counter_wh"] = s.counted.counter_wh
    return data


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _metered_from_json(s: dict[str, Any]) -> dict[str, Any]:
    """The metered keys of a stored session.

    Files of timed sessions (and of agents before metering) have none: they load as timed
    sessions, unchanged.
    """
    full = s.get("full")
    counted = s.get("counted_wh")
    return {
        "energy_wh": _optional_float(s.get("energy_wh")),
        "full": None
        if full is None
        else FullRule(
            below_w=float(full["below_w"]),
            settle_s=float(full["settle_s"]),
            grace_s=float(full["grace_s"]),
        ),
        "counted": None
        if counted is None
        else Counted(energy_wh=float(counted), counter_wh=_optional_float(s.get("counter_wh"))),
    }


def _from_json(data: Any) -> SavedState:
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise ValueError("unknown state file format")
    sessions = {
        str(bay): StoredSession(
            session=str(s["session"]),
            until=float(s["until"]),
            deadline_mono=float(s["deadline_mono"]),
            deadline_wall=float(s["deadline_wall"]),
            remaining=float(s["remaining"]),
            boot_id=None if s.get("boot_id") is None else str(s["boot_id"]),
            **_metered_from_json(s),
        )
        for bay, s in data.get("sessions", {}).items()
    }
    finished_json = data.get("finished", {})
    finished = {
        str(session): (Finish(f["kind"]), float(f["at"])) for session, f in finished_json.items()
    }
    return SavedState(
        sessions=sessions,
        finished=finished,
        ended=_ended_from_json(finished_json),
        energies=_energies_from_json(finished_json),
        stopped=data.get("stopped") is True,
    )


class StateFile:
    """Load and atomically save :class:`SavedState` at one path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> SavedState:
        """Read the file; a missing file is an empty state.

        An unreadable or corrupt file is logged and treated as empty: every relay stays
        off, which is the safe side; the integration then sees the sessions were lost.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return SavedState()
        except OSError:
            _LOGGER.exception("cannot read state file %s; starting empty", self.path)
            return SavedState()
        try:
            return _from_json(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError):
            _LOGGER.exception("state file %s is corrupt; starting empty", self.path)
            return SavedState()

    def save(self, state: SavedState) -> None:
        """Replace the file atomically and durably; raises OSError on failure."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        data = json.dumps(_to_json(state), indent=1, sort_keys=True).encode("utf-8")
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
