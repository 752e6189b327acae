"""The agent's state reports as the integration parses them (plain Python)."""

from __future__ import annotations

from custom_components.qr_charging.drivers.mqtt_agent import parse_state


def test_a_state_with_a_number_too_large_for_a_float_is_no_report() -> None:
    """Found by fuzzing the state reports: ``until`` of 10**400 raised OverflowError."""
    huge = "1" + "0" * 400
    assert parse_state(f'{{"state": "ON", "session": "s-1", "until": {huge}}}') is None
    assert parse_state(f'{{"state": "OFF", "session": null, "remaining": {huge}}}') is None
