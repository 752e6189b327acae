"""A running metered session's energy, kept in the ledger as it grows (review #24, 1 and 2).

Plain Python (asyncio), no Home Assistant imports. The bay's meter (a switch bay's count, an
agent's reports) says how much a session has drawn so far; that figure is stored on the
session (``energy_used_wh``, with a switch bay's counter reading in ``meter_wh``), each time
in its own small change of the books, at most once per ``KEEP_EVERY_WH`` or ``KEEP_EVERY_S``
(``energy_rules.keep_due``). So a restart of HA neither sells a switch bay's energy again (it
counts on from the stored count and reading) nor bills an agent session's end it missed as
0 Wh (an end bills at least the figure stored, ``ending_rules.apply_ending``).

A store that fails changes nothing and stops nothing: the session runs on, and the next
reading that is due stores the figure then. Nothing is lost by that: a switch bay's count and
counter reading are stored as one pair, so the energy after it is counted again from the
reading; an agent keeps its own count and reports it with the session's end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from .books import Books
from .const import LOGGER
from .energy_rules import keep_due
from .records import SessionRecord, SessionState
from .store import StorageError


class Meter(Protocol):
    """What the bay's driver says of a session's energy (``drivers.base.BayDriver``)."""

    def energy_for(self, session_id: str) -> float | None:
        """The energy counted for the session so far (Wh)."""

    def meter_wh_for(self, session_id: str) -> float | None:
        """The meter's counter reading that count goes with (Wh), if HA counts it."""


class RunningEnergy:
    """Stores one bay's running session's energy, throttled."""

    def __init__(
        self,
        books: Books,
        meter: Meter,
        run: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self.books, self.meter, self._run = books, meter, run
        # The session whose energy was last stored (or seen first), the figure and when.
        self._kept: tuple[str, float, float] | None = None

    def note(self, session: SessionRecord | None) -> None:
        """The meter has news: store the running session's energy if it is due."""
        if session is None or session.state is not SessionState.ACTIVE:
            return
        sid = session.session_id
        counted = self.meter.energy_for(sid)
        if counted is None:
            return
        now = time.time()
        if self._kept is None or self._kept[0] != sid:
            self._kept = (sid, session.energy_used_wh, now)
        if not keep_due(self._kept[1], self._kept[2], counted, now):
            return
        # Throttled by the attempt: a failing disk gets one try per step, not one per reading.
        self._kept = (sid, counted, now)
        self._run(self._store(session, counted, self.meter.meter_wh_for(sid)))

    async def _store(self, session: SessionRecord, counted: float, meter_wh: float | None) -> None:
        try:
            async with self.books.change():
                # Only ever more, and only while it runs: its end stores the final figure.
                if session.state is SessionState.ACTIVE and counted > session.energy_used_wh:
                    session.energy_used_wh, session.meter_wh = counted, meter_wh
        except StorageError:
            LOGGER.debug("Session %s: its energy so far was not stored", session.session_id)
