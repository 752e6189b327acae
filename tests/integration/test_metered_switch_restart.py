"""A metered switch bay's running count in the ledger, across HA restarts (review #24, 1).

HA counts a switch bay's energy itself, so what it counted must outlive HA: the count and the
plug's counter reading are stored on the session as it runs, at most once per 10 Wh or 30 s,
and a restart counts on from them. The plug and its meter are ``conftest.metered_entry``'s
(meter at 12 kWh); HA's clock is frozen and moved; refunds are read from the stand-in's log.
"""

from __future__ import annotations

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.qr_charging.const import EVENT_SESSION_ENDED
from custom_components.qr_charging.records import SessionRecord, SessionState
from devtools.razorpay_standin import RazorpayStandin

from .helpers import PostWebhook, export_sessions, plug_state, refund_amounts, settle, tick
from .meter_helpers import buy_energy, charge, move_meter
from .storage_helpers import Written, failing_writes, recorded_writes


async def _buy(hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook) -> str:
    """₹30 at ₹15 a unit: 2000 Wh, the plug on; the payment's id."""
    paid = standin.pay_link((await buy_energy(hass, 30))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    assert plug_state(hass) == STATE_ON
    return paid.payment_id


def _running_counts(written: Written) -> list[tuple[float, float | None]]:
    """Each stored change of a running session's count: (count, counter reading)."""
    return [
        (record.energy_used_wh, record.meter_wh)
        for change in written
        for record in change
        if isinstance(record, SessionRecord) and record.state is SessionState.ACTIVE
        if record.energy_used_wh
    ]


async def test_restart_mid_session_does_not_sell_the_energy_twice(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    metered_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Before: after the reload the session counted from 0 and was sold another 2000 Wh."""
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id = await _buy(hass, standin, post_webhook)
    await charge(hass, freezer, power_w=5700, energy_kwh=13.9, seconds=1200)  # 1900 of 2000 Wh

    assert await hass.config_entries.async_reload(metered_entry.entry_id)
    await hass.async_block_till_done()
    assert plug_state(hass) == STATE_ON

    await charge(hass, freezer, energy_kwh=14.0, seconds=60)  # 2000 Wh in all: what was paid
    assert plug_state(hass) == STATE_OFF, "the plug stays on past the energy paid for"
    assert [e.data["reason"] for e in ended] == ["energy_reached"]
    assert refund_amounts(standin, payment_id) == []


async def test_energy_drawn_while_ha_was_down_counts_from_the_stored_reading(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    metered_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """HA stops (the plug stays on and draws), comes back minutes later: all of it counts.

    Before: the count began again at the reading after the restart; the 1200 Wh drawn while
    HA was down (and the 500 before) were never billed, and the plug ran 1700 Wh over.
    """
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id = await _buy(hass, standin, post_webhook)
    await charge(hass, freezer, power_w=6000, energy_kwh=12.5, seconds=300)  # 500 Wh, stored
    assert await hass.config_entries.async_unload(metered_entry.entry_id)  # HA stops
    await tick(hass, freezer, 600)
    await move_meter(hass, energy_kwh=13.7)  # drawn while HA was down
    assert await hass.config_entries.async_setup(metered_entry.entry_id)  # HA is back
    await settle(hass)
    assert plug_state(hass) == STATE_ON
    assert float(hass.states.get("sensor.bay_1_session_energy").state) == 1.7  # kWh

    await charge(hass, freezer, energy_kwh=14.0, seconds=180)
    assert plug_state(hass) == STATE_OFF
    assert [(e.data["reason"], e.data["energy_wh"]) for e in ended] == [("energy_reached", 2000)]
    assert refund_amounts(standin, payment_id) == []


async def test_the_running_count_is_stored_at_most_once_per_10_wh_or_30_s(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    metered_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Readings 3 Wh apart store the count at 12 and 24 Wh; one 1 Wh on, after 30 s, too."""
    await _buy(hass, standin, post_webhook)
    with recorded_writes() as written:
        for wh in range(3, 28, 3):  # 3 .. 27 Wh, the clock frozen
            await move_meter(hass, energy_kwh=12 + wh / 1000)
        assert _running_counts(written) == [(12.0, 12012.0), (24.0, 12024.0)]
        await tick(hass, freezer, 29)
        await move_meter(hass, energy_kwh=12.028)  # 4 Wh on, 29 s on: not yet
        assert len(_running_counts(written)) == 2
        await tick(hass, freezer, 1)
        await move_meter(hass, energy_kwh=12.029)  # 30 s since the last store
        assert _running_counts(written)[2:] == [(29.0, 12029.0)]
    (row,) = await export_sessions(hass)
    assert float(row["energy_wh"]) == 29.0


async def test_a_count_that_cannot_be_stored_stops_nothing_and_loses_nothing(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    metered_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A full disk while the count grows: the session runs on, the count is stored later."""
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id = await _buy(hass, standin, post_webhook)
    with failing_writes():
        await charge(hass, freezer, power_w=3600, energy_kwh=12.3, seconds=300)
        await charge(hass, freezer, energy_kwh=12.6, seconds=300)
    assert plug_state(hass) == STATE_ON
    (row,) = await export_sessions(hass)
    assert (row["state"], float(row["energy_wh"])) == ("active", 0.0)

    await charge(hass, freezer, energy_kwh=12.7, seconds=60)  # the disk is back: stored
    (row,) = await export_sessions(hass)
    assert float(row["energy_wh"]) == 700.0
    await charge(hass, freezer, energy_kwh=13.5, seconds=600)  # 1500 Wh of 2000
    assert plug_state(hass) == STATE_ON
    assert not ended
    assert refund_amounts(standin, payment_id) == []
