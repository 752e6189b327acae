"""Fuzzing the bay's state reports into HA (hypothesis): ``parse_state``, then the runner.

Whoever may publish on a bay's ``state`` topic can say anything. Whatever they say:

- ``drivers/mqtt_agent.parse_state`` gives nothing, or a whole report (finite, plausible
  ``until``; a powered report always has one);
- through the broker into the running integration (real Mosquitto, a scripted agent, a third
  client publishing the reports): a session is never given more time than was paid; a starting
  session becomes active only on a report of power for it that asks no more time than paid; a
  report about another session never ends the bay's; when a report ends the session before its
  time, ``off`` goes to the bay before any refund, and nothing more than what was paid goes
  back; nothing raises.

Example counts are modest by default, larger with ``--soak N`` (``tests/soak.py``).
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt import client as paho
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.drivers.mqtt_agent import (
    EARLIEST_UNTIL,
    LATEST_UNTIL,
    parse_state,
)
from custom_components.qr_charging.records import SessionState
from devtools.razorpay_standin import RazorpayStandin
from tests.soak import examples

from .const import PLAN_PRICE
from .helpers import PostWebhook, create_link, refund_amounts
from .mqtt_helpers import STATE, ScriptedAgent, wait_until

SESSION = "SESSION"  # replaced by the bay's session id
UNTIL = "UNTIL"  # replaced by the paid deadline (plus an offset)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, EARLIEST_UNTIL - 1, LATEST_UNTIL + 1, 0, -5]),
    st.booleans(),
    st.text(max_size=4),
    st.none(),
)
reasons = (
    st.sampled_from(
        [
            "command",
            "deadline",
            "off_command",
            "boot",
            "shutdown",
            "resumed",
            "top_up",
            "rejected_busy",
            "rejected_too_long",
            "rejected_malformed",
            "whatever",
        ]
    )
    | st.none()
    | st.integers()
)
sessions = st.sampled_from([SESSION, SESSION, "s-other", None, "", "manual-1"]) | st.integers()
untils = st.one_of(
    numbers,
    st.tuples(st.just(UNTIL), st.sampled_from([-600.0, -5.0, -1.0, 0.0, 1.5, 2.5, 60.0, 1e6])),
)


@st.composite
def reports(draw: st.DrawFn) -> tuple[Any, bool]:
    """(a state payload, whether it is published retained)."""
    if draw(st.integers(0, 9)) == 0:
        payload: Any = draw(st.binary(max_size=60) | st.text(max_size=60))
    else:
        payload = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "state": st.sampled_from(["ON", "OFF", "on", "", None]) | st.integers(),
                    "session": sessions,
                    "until": untils,
                    "remaining": numbers,
                    "reason": reasons,
                },
            )
        )
    return payload, draw(st.booleans())


def _render(payload: Any, session: str, until: float) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogatepass")
    data = dict(payload)
    if data.get("session") == SESSION:
        data["session"] = session
    if isinstance(data.get("until"), tuple):
        data["until"] = until + data["until"][1]
    return json.dumps(data).encode()


# -- the parser -------------------------------------------------------------------------------


@examples(300)
@given(reports())
def test_a_state_message_is_read_whole_or_not_at_all(report: tuple[Any, bool]) -> None:
    parsed = parse_state(_render(report[0], "s-1", 1_800_000_000.0))
    if parsed is None:
        return
    if parsed.until is not None:
        assert math.isfinite(parsed.until)
        assert EARLIEST_UNTIL <= parsed.until <= LATEST_UNTIL
    if parsed.powered:
        assert parsed.until is not None
    assert parsed.session_id is None or isinstance(parsed.session_id, str)


# -- into the running integration -------------------------------------------------------------


SENTINELS = itertools.count()


@examples(25)
@given(starting=st.booleans(), fuzz=st.lists(reports(), min_size=1, max_size=5))
@pytest.mark.parametrize("ack_timeout", [60])
async def test_state_reports_never_change_a_session_wrongly(  # noqa: PLR0915
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    intruder: paho.Client,
    starting: bool,
    fuzz: list[tuple[Any, bool]],
) -> None:
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    # A fresh session for each example: started (acknowledged) or still starting.
    if runner.session is not None:
        await hass.services.async_call(
            DOMAIN, "stop_session", {"bay": "bay-1"}, blocking=True, return_response=True
        )
    agent.answer = not starting
    sent = len(agent.commands)
    paid = standin.pay_link((await create_link(hass))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    on = await agent.wait_command(sent + 1)
    assert isinstance(on, dict)
    wanted = SessionState.STARTING if starting else SessionState.ACTIVE
    await wait_until(hass, lambda: runner.session is not None and runner.session.state is wanted)
    session = runner.session
    paid_until = float(on["until"])
    log: list[tuple[str, str]] = []
    real_off, real_send = runner.driver.async_turn_off, runner.endings.refunds.async_send

    async def turn_off(session_id: str | None) -> None:
        log.append(("off", str(session_id)))
        await real_off(session_id)

    async def send(refund: Any) -> None:
        log.append(("refund", refund.session_id))
        await real_send(refund)

    seen: list[str | None] = []  # the sessions of the reports HA read, in order
    real_report = runner.driver._on_report

    def report(parsed: Any) -> None:
        seen.append(parsed.session_id)
        real_report(parsed)

    runner.driver.async_turn_off, runner.endings.refunds.async_send = turn_off, send
    runner.driver._on_report = report
    try:
        for payload, retain in fuzz:
            body = _render(payload, session.session_id, paid_until)
            intruder.publish(STATE, body, qos=1, retain=retain).wait_for_publish(5)
        # A last, well-formed report about nobody's session: once HA has it, it has the rest.
        sentinel = f"sentinel-{next(SENTINELS)}"
        off = {"state": "OFF", "session": sentinel, "until": None, "remaining": 0}
        intruder.publish(STATE, json.dumps(off), qos=1).wait_for_publish(5)
        await wait_until(hass, lambda: sentinel in seen)
        await hass.async_block_till_done()
    finally:
        runner.driver.async_turn_off, runner.endings.refunds.async_send = real_off, real_send
        runner.driver._on_report = real_report

    parsed = [(parse_state(_render(p, session.session_id, paid_until)), r) for p, r in fuzz]
    mine = [(p, r) for p, r in parsed if p is not None and p.session_id == session.session_id]
    # Never more time than was paid.
    assert session.until is not None
    assert session.until <= paid_until + 1e-6
    if starting and session.state is SessionState.ACTIVE:
        assert any(
            p.powered and p.until is not None and p.until <= paid_until + 2 for p, _ in mine
        ), "confirmed without a report of power for it within what was paid"
    if starting and session.state in (SessionState.FAILED, SessionState.REFUNDED):
        assert any(
            p is not None
            and not p.powered
            and (p.reason or "").startswith("rejected")
            and p.session_id in (None, session.session_id)
            for p, r in parsed
        ), "failed without a fresh refusal from the bay"
    if not starting and session.state is SessionState.ENDED:
        # Only an "off" about this session (or none) ends it.
        assert any(
            p is not None and not p.powered and p.session_id in (None, session.session_id)
            for p, _ in parsed
        )
    refunds = [entry for entry in log if entry[0] == "refund"]
    if refunds:
        assert not session.running
        # The bay is told off before any money goes back.
        assert log.index(("off", session.session_id)) < log.index(refunds[0])
    assert sum(refund_amounts(standin, paid.payment_id)) <= PLAN_PRICE
    if session.running:
        assert refund_amounts(standin, paid.payment_id) == []
