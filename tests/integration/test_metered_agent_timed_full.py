"""Vehicle full for a session sold by time at a metered agent bay (issue #24).

HA's MQTT integration on a real Mosquitto, the scripted agent of ``mqtt_helpers`` (its config
naming a meter), Razorpay's stand-in for the refunds, and HA's clock moved by ``freezer``. An
old agent's bay (no meter) gets no ``full``: ``test_metered_agent_bays``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.qr_charging.const import DOMAIN, EVENT_SESSION_ENDED, EVENT_SESSION_STARTED
from devtools.razorpay_standin import RazorpayStandin

from .const import RATE_PLAN_SUBENTRY
from .helpers import PostWebhook, export_sessions, refund_amounts, settle
from .meter_helpers import FULL_RULE, metered_state
from .mqtt_helpers import ScriptedAgent, frozen_wait, wait_until

# 30 minutes at ₹0.50 a minute.
MINUTES = 30
PAID = 1500


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """bay-1 sells by the minute."""
    return [RATE_PLAN_SUBENTRY]


async def _buy_minutes(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook, agent: ScriptedAgent
) -> tuple[str, dict[str, Any]]:
    """Pay for 30 minutes and wait for the session to start: the payment and its ``on``."""
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    link = await hass.services.async_call(
        DOMAIN,
        "create_payment_link",
        {"bay": "bay-1", "plan": "pm", "minutes": MINUTES},
        blocking=True,
        return_response=True,
    )
    assert isinstance(link, dict)
    paid = standin.pay_link(link["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    on = await agent.wait_command(1)
    assert isinstance(on, dict)
    await wait_until(hass, lambda: len(started) == 1)
    return paid.payment_id, on


@pytest.mark.usefixtures("metered")
async def test_a_minute_sale_is_sent_with_full_and_ends_full_with_the_unused_minutes_back(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    request: pytest.FixtureRequest,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id, on = await _buy_minutes(hass, standin, post_webhook, agent)
    assert on["full"] == FULL_RULE
    assert "energy_wh" not in on
    assert on["duration"] == MINUTES * 60

    # HA's clock frozen only now: the broker's round trips above need the loop's own timers.
    freezer: FrozenDateTimeFactory = request.getfixturevalue("freezer")
    runner = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.bays.runners["bay-1"]
    assert runner.session is not None
    assert runner.session.until is not None
    # Full 9 min 59 s into the 30 minutes (a whole second off float error at the edge).
    freezer.move_to(datetime.fromtimestamp(runner.session.until - 20 * 60 - 1, UTC))
    # 512 Wh in 10 minutes: within what its 3680 W meter can count (812 Wh would not be).
    metered_state(
        agent, on["session"], on=False, reason="vehicle_full", power_w=2.0, energy_wh=512.0
    )
    await frozen_wait(hass, lambda: len(ended) == 1)

    assert ended[0].data["reason"] == "vehicle_full"
    # 1201 s of the 1800 s were not used: ₹15 * 1201 / 1800 = 1000.8 paise, rounded down.
    assert refund_amounts(standin, payment_id) == [1000]
    assert await agent.wait_command(2) == {"action": "off", "session": on["session"]}
    (row,) = await export_sessions(hass)
    assert row["energy_wh"] == "512.0"


@pytest.mark.usefixtures("metered")
async def test_rejected_ended_with_energy_is_the_agents_own_end_of_a_minute_sale(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    request: pytest.FixtureRequest,
) -> None:
    """The agent ended it (vehicle full, then restarted) and answers ``rejected_ended``.

    Before: it ended as ``power_cut``, as if someone had cut the power.
    """
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id, on = await _buy_minutes(hass, standin, post_webhook, agent)
    freezer: FrozenDateTimeFactory = request.getfixturevalue("freezer")
    runner = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.bays.runners["bay-1"]
    assert runner.session is not None
    assert runner.session.until is not None
    freezer.move_to(datetime.fromtimestamp(runner.session.until - 20 * 60 - 1, UTC))
    metered_state(
        agent, on["session"], on=False, reason="rejected_ended", power_w=0.0, energy_wh=512.0
    )
    await frozen_wait(hass, lambda: len(ended) == 1)

    assert (ended[0].data["reason"], ended[0].data["energy_wh"]) == ("agent_ended", 512.0)
    # The bay's Refund unused minutes (default on): ₹15 * 1201 / 1800, rounded down.
    assert refund_amounts(standin, payment_id) == [1000]
