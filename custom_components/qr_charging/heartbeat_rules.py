"""An agent's heartbeat and what it says of the agent's liveness (issue #27): plain Python.

No broker publishes the will of a client whose cluster node died, so a retained ``online``
may outlive its agent: an agent that sends heartbeats is alive only while they keep coming.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

# An agent is offline once this many heartbeats in a row have not come.
MISSED = 3
# The interval a heartbeat may announce (s); anything else is not the agent's.
EVERY_RANGE = range(1, 3601)


def finite_number(value: object) -> float | None:
    """A JSON number as float; None for anything else (booleans, strings, NaN, infinities)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """``{"at": <agent's epoch seconds>, "every": <seconds>}``."""

    at: float
    every: int


def parse_heartbeat(payload: str | bytes | bytearray) -> Heartbeat | None:
    """Read a heartbeat; None when it is not one (then it changes nothing)."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    at = finite_number(data.get("at"))
    every = data.get("every")
    if at is None or at < 0 or isinstance(every, bool) or not isinstance(every, int):
        return None
    return Heartbeat(at, every) if every in EVERY_RANGE else None


def alive_until(beat: Heartbeat, *, received: float, retained: bool) -> float:
    """Until when (HA's epoch seconds) the agent counts as alive after this heartbeat.

    ``received``: HA's time of receipt. A retained heartbeat, replayed by the broker on
    subscribing, counts from when the agent sent it (never later than now): one long stale
    at HA's start counts as missed at once.
    """
    last = min(received, beat.at) if retained else received
    return last + MISSED * beat.every
