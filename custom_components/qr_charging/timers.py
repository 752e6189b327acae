"""A bay's timers: the acknowledgement, the deadline, one storage retry per session.

The runner passes in what each timer does when it fires, so this module knows nothing of it.
Every timer is dropped when HA stops (deadlines live on in the ledger and the agents) and
none is armed after the bay is unloaded (the next setup resumes from the ledger).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later, async_track_point_in_utc_time

from .const import LOGGER
from .records import SessionRecord

# A decision that could not be stored is tried again this much later.
STORAGE_RETRY_S = 10.0


def stop_at_shutdown(action: Callable[[datetime], None], what: str) -> HassJob[[datetime], None]:
    """A timer job HA drops when it stops: deadlines live on in the ledger and the agents."""
    return HassJob(action, f"qr_charging {what}", cancel_on_shutdown=True)


class BayTimers:
    """The timers of one bay's session, and the retries of its decisions."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        bay_id: str,
        ack_timeout_s: float,
        on_ack_expired: Callable[[SessionRecord], None],
        on_deadline: Callable[[SessionRecord], None],
    ) -> None:
        self.hass = hass
        self.bay_id = bay_id
        self.ack_timeout_s = ack_timeout_s
        self._on_ack_expired = on_ack_expired
        self._on_deadline = on_deadline
        self._ack: CALLBACK_TYPE | None = None
        self._deadline: CALLBACK_TYPE | None = None
        # The session the ack and deadline timers are for: a refused second payment must not
        # touch them.
        self._session_id: str | None = None
        # One retry timer per session whose decision could not be stored.
        self._retries: dict[str, CALLBACK_TYPE] = {}
        # Set at unload: nothing is armed any more.
        self.stopped = False

    def ack(self, session: SessionRecord) -> None:
        """Wait for the bay's acknowledgement of a starting session."""
        if self.stopped:
            return
        self.ack_done()

        @callback
        def _expired(_now: datetime) -> None:
            self._ack = None
            self._on_ack_expired(session)

        self._session_id = session.session_id
        self._ack = async_call_later(
            self.hass, self.ack_timeout_s, stop_at_shutdown(_expired, "acknowledgement")
        )

    def ack_done(self) -> None:
        """The acknowledgement came (or is waited for anew)."""
        if self._ack is not None:
            self._ack()
            self._ack = None

    def deadline(self, session: SessionRecord) -> None:
        """(Re)arm the deadline of an active session at its ``until``."""
        if self.stopped:
            return
        if self._deadline is not None:
            self._deadline()
        assert session.until is not None

        @callback
        def _fired(_now: datetime) -> None:
            self._deadline = None
            self._on_deadline(session)

        self._session_id = session.session_id
        self._deadline = async_track_point_in_utc_time(
            self.hass,
            stop_at_shutdown(_fired, "deadline"),
            datetime.fromtimestamp(session.until, UTC),
        )

    def retry(self, session_id: str, again: Callable[[], None]) -> None:
        """A change of the session could not be stored: run ``again`` a little later.

        Its own timer: retrying one session's decision never drops another's timers.
        """
        LOGGER.error(
            "Bay %s: could not store a change of session %s; trying again in %.0f s",
            self.bay_id,
            session_id,
            STORAGE_RETRY_S,
        )
        if self.stopped:
            return
        if (pending := self._retries.pop(session_id, None)) is not None:
            pending()

        @callback
        def _again(_now: datetime) -> None:
            self._retries.pop(session_id, None)
            again()

        self._retries[session_id] = async_call_later(
            self.hass, STORAGE_RETRY_S, stop_at_shutdown(_again, "retry")
        )

    def cancel(self, session_id: str | None = None) -> None:
        """Drop pending timers, all or one session's (the ledger keeps the deadlines)."""
        for key in [k for k in self._retries if session_id in (None, k)]:
            self._retries.pop(key)()
        if session_id is None or self._session_id == session_id:
            self.ack_done()
            if self._deadline is not None:
                self._deadline()
            self._deadline = None

    def stop(self) -> None:
        """The bay unloads: drop every timer and arm none any more."""
        self.stopped = True
        self.cancel()
