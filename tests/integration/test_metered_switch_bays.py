"""Metered switch bays (issue #24): HA counts energy from the plug's sensors and cuts power.

The plug is the template switch of ``conftest.setup_plug``; its meter template sensors (W and
kWh) over input_numbers the test moves (``meter_helpers``). HA's clock is frozen and moved
(``freezer``); the refunds are read from the Razorpay stand-in's call log.
"""

from __future__ import annotations

from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.qr_charging.const import DOMAIN, EVENT_SESSION_ENDED
from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_SUBENTRY
from .helpers import PostWebhook, pay, plug_state, refund_amounts, settle, tick
from .meter_helpers import ENERGY_PLAN_SUBENTRY, buy_energy, charge, meter_reports, move_meter

AMOUNT = 3000  # ₹30 at ₹15 a unit: 2000 Wh


async def _buy(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook, rupees: float = 30
) -> str:
    paid = standin.pay_link((await buy_energy(hass, rupees))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    assert plug_state(hass) == STATE_ON
    return paid.payment_id


def _cut(hass: HomeAssistant, ended: list[Event], reason: str) -> None:
    """The plug is off and the session ended once, for ``reason``."""
    assert plug_state(hass) == STATE_OFF
    assert [e.data["reason"] for e in ended] == [reason]


async def _runs(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: int) -> None:
    """Time passes with the meter reporting every 20 s."""
    for _ in range(seconds // 20):
        await tick(hass, freezer, 20)
        await meter_reports(hass)


@pytest.mark.usefixtures("metered_entry")
async def test_the_plug_is_cut_at_the_energy_paid_for(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id = await _buy(hass, standin, post_webhook)
    await charge(hass, freezer, power_w=6000, energy_kwh=12.5, seconds=300)
    assert plug_state(hass) == STATE_ON
    await charge(hass, freezer, energy_kwh=14.0, seconds=900)  # 2000 Wh since the start

    _cut(hass, ended, "energy_reached")
    assert refund_amounts(standin, payment_id) == []


@pytest.mark.usefixtures("metered_entry")
async def test_vehicle_full_cuts_after_grace_and_settle_and_refunds_unused_energy(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id = await _buy(hass, standin, post_webhook)
    # Slow to draw at first: below 10 W during the 2 minutes of grace is no "full".
    await move_meter(hass, power_w=2)
    await _runs(hass, freezer, 100)
    await charge(hass, freezer, power_w=6000, energy_kwh=12.3, seconds=180)
    await move_meter(hass, power_w=4)  # tapered off: full once it stays so for 3 minutes
    await _runs(hass, freezer, 160)
    assert plug_state(hass) == STATE_ON
    await _runs(hass, freezer, 40)

    _cut(hass, ended, "vehicle_full")
    # 300 Wh of 2000 used: ₹30 * 1700 / 2000.
    assert refund_amounts(standin, payment_id) == [2550]


@pytest.mark.usefixtures("metered_entry")
async def test_a_silent_meter_cuts_bills_what_was_measured_and_names_the_meter(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id = await _buy(hass, standin, post_webhook)
    await charge(hass, freezer, power_w=900, energy_kwh=12.1, seconds=400)
    await tick(hass, freezer, 50)
    assert plug_state(hass) == STATE_ON
    await tick(hass, freezer, 20)  # 70 s without a report while on

    _cut(hass, ended, "meter_silent")
    assert refund_amounts(standin, payment_id) == [2850]  # 100 Wh measured
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "meter_fault_bay-1")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["meter"] == "sensor.plug_energy"


@pytest.mark.usefixtures("metered_entry")
async def test_a_counter_reset_keeps_counting_and_running_backwards_is_a_fault(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id = await _buy(hass, standin, post_webhook)
    await charge(hass, freezer, power_w=3000, energy_kwh=12.5, seconds=600)  # 500 Wh
    await move_meter(hass, energy_kwh=0.002)  # the plug restarted: +2 Wh
    await charge(hass, freezer, energy_kwh=0.302, seconds=360)  # +300 Wh
    assert plug_state(hass) == STATE_ON
    # Backwards, to more than it could have counted since a reset (200 Wh in no time).
    await move_meter(hass, energy_kwh=0.2)

    _cut(hass, ended, "meter_backwards")
    # 802 Wh measured of 2000: ₹30 * 1198 / 2000 = 1797 paise.
    assert refund_amounts(standin, payment_id) == [1797]


@pytest.mark.usefixtures("metered_entry")
async def test_a_time_plan_on_a_metered_bay_gets_its_unused_minutes_when_full(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    paid = await pay(hass, standin, post_webhook)  # 30 minutes for ₹20
    await move_meter(hass, power_w=3)
    await _runs(hass, freezer, 300)  # 2 minutes of grace, then 3 below 10 W

    _cut(hass, ended, "vehicle_full")
    # 25 of 30 minutes unused: ₹20 * 1500 / 1800, rounded down.
    assert refund_amounts(standin, paid.payment_id) == [1666]


async def test_energy_is_not_sold_at_a_plug_without_a_meter(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, bay_plans: list[dict[str, Any]]
) -> None:
    assert not loaded_entry.runtime_data.bays.runners["bay-1"].driver.metered


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """For the plug without a meter (``loaded_entry``): the energy plan on offer too."""
    return [PLAN_SUBENTRY, ENERGY_PLAN_SUBENTRY]


@pytest.mark.usefixtures("metered_entry")
async def test_the_bays_power_and_session_energy_follow_the_plug(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    await _buy(hass, standin, post_webhook)
    await charge(hass, freezer, power_w=750, energy_kwh=12.25, seconds=1200)
    power = hass.states.get("sensor.bay_1_power")
    energy = hass.states.get("sensor.bay_1_session_energy")
    assert power is not None
    assert energy is not None
    assert (power.state, energy.state) == ("750.0", "0.250")
