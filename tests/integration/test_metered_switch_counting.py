"""How HA counts a metered switch bay's energy through a plug's odd readings (review #24).

A zero blip of the energy sensor (finding 4), a plug restart whose first report is more than
a few Wh (finding 6), a counter jump no plug can draw (finding 4's cap) and a slow charge whose
energy sensor reports only on change (finding 7). The plug and its meter are the template
entities of ``conftest.setup_plug`` and ``meter_helpers``; HA's clock is frozen and moved.
"""

from __future__ import annotations

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.qr_charging.const import EVENT_SESSION_ENDED
from devtools.razorpay_standin import RazorpayStandin

from .helpers import PostWebhook, plug_state, refund_amounts, settle, tick
from .meter_helpers import buy_energy, charge, move_meter

pytestmark = pytest.mark.usefixtures("metered_entry")


async def _buy(hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook) -> str:
    """₹30 of energy at bay-1 (2000 Wh at ₹15 a unit), paid; the plug is on."""
    paid = standin.pay_link((await buy_energy(hass, 30))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    assert plug_state(hass) == STATE_ON
    return paid.payment_id


async def test_a_zero_blip_of_the_energy_sensor_does_not_bill_the_whole_counter(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id = await _buy(hass, standin, post_webhook)
    await charge(hass, freezer, power_w=900, energy_kwh=12.1, seconds=400)  # 100 Wh
    # The plug reconnects: its sensor (or a template over it, `| float(0)`) says 0 once,
    # then its real lifetime counter again.
    await move_meter(hass, energy_kwh=0)
    await move_meter(hass, energy_kwh=12.1)

    # Before: 0 was a reset and the return to 12.1 kWh 12,100 Wh drawn: "energy_reached",
    # and the customer's ₹28.50 for 1900 unused Wh kept.
    assert plug_state(hass) == STATE_ON, [e.data for e in ended]
    energy = hass.states.get("sensor.bay_1_session_energy")
    assert energy is not None
    assert energy.state == "0.100"
    assert refund_amounts(standin, payment_id) == []


async def test_a_plug_restart_first_reporting_more_than_10_wh_is_a_reset_not_a_fault(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    await _buy(hass, standin, post_webhook)
    await charge(hass, freezer, power_w=2000, energy_kwh=12.5, seconds=900)  # 500 Wh
    # The plug restarts (its counter since boot, e.g. a Shelly Gen1) and its first report
    # after reconnecting, 30 s later at 2 kW, is 17 Wh: a reset, as 0.002 kWh would be.
    await tick(hass, freezer, 30)
    await move_meter(hass, energy_kwh=0.017)

    # Before: cut as "meter_backwards" (and a meter_fault repair) on a healthy plug.
    assert plug_state(hass) == STATE_ON, [e.data["reason"] for e in ended]
    energy = hass.states.get("sensor.bay_1_session_energy")
    assert energy is not None
    assert energy.state == "0.517"


async def test_a_counter_jump_no_plug_can_draw_is_a_meter_fault_billing_what_was_measured(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id = await _buy(hass, standin, post_webhook)
    await charge(hass, freezer, power_w=900, energy_kwh=12.1, seconds=400)  # 100 Wh
    await tick(hass, freezer, 10)
    # 1900 Wh in 10 s is 684 kW: no plug draws it (at most 7.4 kW: 20.5 Wh, with 10 Wh of
    # the sensor's resolution, 30.5 Wh).
    await move_meter(hass, energy_kwh=14.0)

    # Before: counted, "energy_reached", and the ₹28.50 for the 1900 Wh not drawn kept.
    assert plug_state(hass) == STATE_OFF
    assert [e.data["reason"] for e in ended] == ["meter_invalid"]
    assert refund_amounts(standin, payment_id) == [2850]  # 100 Wh measured of 2000


async def test_a_live_power_sensor_keeps_a_slow_charge_from_being_called_silent(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    await _buy(hass, standin, post_webhook)
    # An e-cycle charging at ~100 W: a 0.01 kWh energy sensor (Zigbee/Tuya plugs, reported
    # on change only) moves once every 6 minutes; the power sensor reports every 20 s.
    for watts in (100, 101, 100, 101):
        await tick(hass, freezer, 20)
        await move_meter(hass, power_w=watts)

    # Before: cut as "meter_silent" (and a meter_fault repair) while the plug is alive and
    # the vehicle is charging.
    assert plug_state(hass) == STATE_ON, [e.data["reason"] for e in ended]
    # When neither sensor reports for a minute, it is silent all the same.
    await tick(hass, freezer, 70)
    assert plug_state(hass) == STATE_OFF
    assert [e.data["reason"] for e in ended] == ["meter_silent"]
