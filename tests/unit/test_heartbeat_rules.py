"""An agent's heartbeat and its liveness deadline (``heartbeat_rules``): plain Python."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.qr_charging.heartbeat_rules import (
    EVERY_RANGE,
    MISSED,
    Heartbeat,
    alive_until,
    parse_heartbeat,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("payload", "beat"),
    [
        ('{"at": 1800000000.5, "every": 30}', Heartbeat(1_800_000_000.5, 30)),
        ('{"at": 0, "every": 1}', Heartbeat(0.0, 1)),
        ('{"at": 5, "every": 3600, "other": "ignored"}', Heartbeat(5.0, 3600)),
    ],
)
def test_a_heartbeat_is_read(payload: str, beat: Heartbeat) -> None:
    assert parse_heartbeat(payload) == beat


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "online",
        "[]",
        "30",
        '{"every": 30}',
        '{"at": 1800000000}',
        '{"at": -1, "every": 30}',
        '{"at": NaN, "every": 30}',
        '{"at": Infinity, "every": 30}',
        '{"at": "1800000000", "every": 30}',
        '{"at": true, "every": 30}',
        '{"at": 1e400, "every": 30}',
        '{"at": 1800000000, "every": 0}',
        '{"at": 1800000000, "every": -30}',
        '{"at": 1800000000, "every": 3601}',
        '{"at": 1800000000, "every": 30.5}',
        '{"at": 1800000000, "every": 30.0}',
        '{"at": 1800000000, "every": true}',
        '{"at": 1800000000, "every": "30"}',
        b"\xff\xfe",
    ],
)
def test_anything_else_is_no_heartbeat(payload: str | bytes) -> None:
    assert parse_heartbeat(payload) is None


def test_a_live_heartbeat_counts_from_its_arrival() -> None:
    """The agent's clock may be off: a heartbeat delivered live counts from HA's receipt."""
    beat = Heartbeat(at=NOW - 500, every=30)
    assert alive_until(beat, received=NOW, retained=False) == NOW + MISSED * 30


def test_a_retained_heartbeat_counts_from_when_the_agent_sent_it() -> None:
    stale = Heartbeat(at=NOW - 500, every=30)
    assert alive_until(stale, received=NOW, retained=True) == NOW - 500 + 90
    assert alive_until(stale, received=NOW, retained=True) < NOW  # missed at once
    # One from an agent whose clock runs ahead counts from now, never later.
    ahead = Heartbeat(at=NOW + 500, every=30)
    assert alive_until(ahead, received=NOW, retained=True) == NOW + 90


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["at", "every", "x"]), inner, max_size=3)
        ),
        max_leaves=6,
    )
)
def test_any_json_is_a_valid_heartbeat_or_none(value: object) -> None:
    """Fuzzed: never an error, and whatever is read is finite and in range."""
    try:
        payload = json.dumps(value)
    except ValueError:
        return
    beat = parse_heartbeat(payload)
    if beat is not None:
        assert math.isfinite(beat.at)
        assert beat.at >= 0
        assert beat.every in EVERY_RANGE
