"""Parse a ``set`` payload into a typed command, or say precisely why it is unusable.

Pure: no clock, no I/O. Whether a command is expired, too long or refused by the bay's
current session is decided later by :mod:`pi_mqtt_relay.sessions`; here only the shape is
checked, so that nothing malformed ever reaches the rules that switch relays.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

# A real command is about 120 bytes; anything far larger is refused before decoding.
MAX_PAYLOAD_BYTES = 4096
MAX_SESSION_ID_LENGTH = 128


class MalformedCommand(ValueError):
    """The payload is not a usable command; the message says what is wrong with it."""


@dataclass(frozen=True)
class FullRule:
    """When a vehicle is full: a draw under ``below_w`` for ``settle_s``.

    The low draw is counted from ``grace_s`` after the start, so a charger slow to begin
    drawing is not cut.
    """

    below_w: float
    settle_s: float
    grace_s: float


@dataclass(frozen=True)
class OnCommand:
    """Power the bay for a paid session until ``until`` (sender's clock).

    ``energy_wh`` (metered sessions only) is the energy paid for so far; ``until`` is then
    the time cap. ``full`` (a bay with a meter only) ends the session, metered or timed,
    when the vehicle is full.
    """

    session: str
    until: float
    duration: float
    sent: float
    energy_wh: float | None = None
    full: FullRule | None = None


@dataclass(frozen=True)
class OffCommand:
    """End (or cancel in advance) one session."""

    session: str


@dataclass(frozen=True)
class PlainOn:
    """An HA MQTT switch's ``ON``: power the bay for its default time."""


@dataclass(frozen=True)
class PlainOff:
    """An HA MQTT switch's ``OFF``: end whatever runs on the bay."""


Command = OnCommand | OffCommand | PlainOn | PlainOff


def _session_id(data: dict[str, Any]) -> str:
    value = data.get("session")
    if not isinstance(value, str) or not value.strip():
        raise MalformedCommand("'session' must be a non-empty string")
    if len(value) > MAX_SESSION_ID_LENGTH:
        raise MalformedCommand(f"'session' is longer than {MAX_SESSION_ID_LENGTH} characters")
    return value


def _number(data: dict[str, Any], key: str) -> float:
    """A finite JSON number; booleans (a subclass of int in Python) are refused."""
    if key not in data:
        raise MalformedCommand(f"'{key}' is missing")
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedCommand(f"'{key}' must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError as err:  # an integer of hundreds of digits
        raise MalformedCommand(f"'{key}' is out of range") from err
    if not math.isfinite(number):
        raise MalformedCommand(f"'{key}' must be a finite number")
    return number


def _full_rule(data: dict[str, Any]) -> FullRule | None:
    """The optional ``full`` object of an ``on``: three non-negative numbers."""
    if "full" not in data:
        return None
    full = data["full"]
    if not isinstance(full, dict):
        raise MalformedCommand("'full' must be an object")
    values = {key: _number(full, key) for key in ("below_w", "settle_s", "grace_s")}
    if any(value < 0 for value in values.values()):
        raise MalformedCommand("'full' values must be at least 0")
    return FullRule(**values)


def _energy(data: dict[str, Any]) -> tuple[float | None, FullRule | None]:
    """``energy_wh`` (> 0, a metered session) and ``full``, each optional.

    ``full`` without ``energy_wh`` is a timed session with the vehicle-full rule; whether the
    bay has a meter for either is the session rules' business (``rejected_no_meter``).
    """
    energy = None
    if "energy_wh" in data:
        energy = _number(data, "energy_wh")
        if energy <= 0:
            raise MalformedCommand("'energy_wh' must be greater than 0")
    return energy, _full_rule(data)


def parse_command(payload: bytes) -> Command:
    """Turn the bytes of a ``set`` message into a command.

    Raises :class:`MalformedCommand` for anything that is not exactly one of the forms of
    the MQTT contract: plain ``ON``/``OFF``, or the JSON ``on``/``off`` objects.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MalformedCommand(f"payload of {len(payload)} bytes (limit {MAX_PAYLOAD_BYTES})")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise MalformedCommand("payload is not UTF-8 text") from None
    if text == "ON":
        return PlainOn()
    if text == "OFF":
        return PlainOff()
    try:
        # Python's json accepts NaN and Infinity; they are refused by _number below.
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedCommand("payload is neither JSON nor plain ON/OFF") from None
    if not isinstance(data, dict):
        raise MalformedCommand("JSON payload must be an object")
    action = data.get("action")
    if action == "off":
        return OffCommand(session=_session_id(data))
    if action != "on":
        raise MalformedCommand('\'action\' must be "on" or "off"')
    session = _session_id(data)
    until = _number(data, "until")
    duration = _number(data, "duration")
    sent = _number(data, "sent")
    if duration <= 0:
        raise MalformedCommand("'duration' must be greater than 0")
    if until <= 0 or sent <= 0:
        raise MalformedCommand("'until' and 'sent' must be epoch seconds")
    if until <= sent:
        raise MalformedCommand("'until' must be later than 'sent'")
    energy, full = _energy(data)
    return OnCommand(
        session=session, until=until, duration=duration, sent=sent, energy_wh=energy, full=full
    )
