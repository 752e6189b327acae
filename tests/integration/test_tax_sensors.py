"""The month's tax totals as sensors on the account's tax device (an owner with a GSTIN)."""

from __future__ import annotations

from datetime import UTC, datetime

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.sensor import ATTR_LAST_RESET, ATTR_STATE_CLASS
from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.tax import parse_recipient
from devtools.razorpay_standin import RazorpayStandin

from .helpers import PostWebhook, pay, registry_snapshot, tick
from .tax_export_helpers import export_tax, set_up
from .tax_helpers import MAHARASHTRA_CUSTOMER

SENSORS = {
    "taxable": "sensor.rzp_test_standin_tax_taxable_value_this_month",
    "cgst": "sensor.rzp_test_standin_tax_cgst_this_month",
    "sgst": "sensor.rzp_test_standin_tax_sgst_this_month",
    "igst": "sensor.rzp_test_standin_tax_igst_this_month",
}
# 1 November 2026, 00:00 in India.
NOVEMBER = datetime(2026, 10, 31, 18, 30, tzinfo=UTC).isoformat()


def _values(hass: HomeAssistant) -> dict[str, str]:
    values = {}
    for name, entity_id in SENSORS.items():
        state = hass.states.get(entity_id)
        assert state is not None, entity_id
        values[name] = state.state
    return values


def _tax_devices(hass: HomeAssistant, entry: MockConfigEntry) -> list[dr.DeviceEntry]:
    # By the entry's devices: both HA lines answer this alike.
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return [d for d in devices if (DOMAIN, f"{entry.entry_id}/tax") in d.identifiers]


async def test_the_month_s_totals_follow_a_payment_and_a_refund(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    await set_up(hass, config_entry, freezer)
    assert _values(hass) == dict.fromkeys(SENSORS, "0.00")
    state = hass.states.get(SENSORS["taxable"])
    assert state is not None
    assert state.attributes[ATTR_STATE_CLASS] == "total"
    assert state.attributes[ATTR_UNIT_OF_MEASUREMENT] == "INR"
    assert state.attributes[ATTR_LAST_RESET] == NOVEMBER

    paid = await pay(hass, standin, post_webhook)
    await hass.async_block_till_done(wait_background_tasks=True)  # the totals read again
    # ₹20 at 18 %: 16.95 taxable, 3.05 tax split 1.52 + 1.53.
    assert _values(hass) == {"taxable": "16.95", "cgst": "1.52", "sgst": "1.53", "igst": "0.00"}

    await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": paid.payment_id, "amount": 10}, blocking=True
    )
    await hass.async_block_till_done(wait_background_tasks=True)  # the totals read again
    # Less a ₹10 credit note (8.47 + 0.76 + 0.77): the same figures as the month's export.
    assert _values(hass) == {"taxable": "8.48", "cgst": "0.76", "sgst": "0.76", "igst": "0.00"}
    assert (await export_tax(hass))["totals"] == _values(hass)


async def test_the_totals_start_again_at_the_month_s_turn(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    await set_up(hass, config_entry, freezer)
    await pay(hass, standin, post_webhook)
    await hass.async_block_till_done(wait_background_tasks=True)  # the totals read again

    # 30 November, 23:59 in India: still November's.
    freezer.move_to("2026-11-30 18:29:00+00:00")
    await tick(hass, freezer, 0)
    assert _values(hass)["taxable"] == "16.95"

    await tick(hass, freezer, 60)  # 1 December, 00:00 IST
    await hass.async_block_till_done(wait_background_tasks=True)  # the totals read again
    assert _values(hass) == dict.fromkeys(SENSORS, "0.00")
    state = hass.states.get(SENSORS["taxable"])
    assert state is not None
    assert state.attributes[ATTR_LAST_RESET] == "2026-11-30T18:30:00+00:00"

    await pay(hass, standin, post_webhook)
    await hass.async_block_till_done(wait_background_tasks=True)  # the totals read again
    assert _values(hass)["taxable"] == "16.95"


async def test_the_tax_device_is_a_service_of_the_account(
    hass: HomeAssistant, config_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    await set_up(hass, config_entry, freezer)

    (device,) = _tax_devices(hass, config_entry)
    assert device.entry_type is dr.DeviceEntryType.SERVICE
    assert device.name == f"{config_entry.title} tax"


async def test_an_owner_without_gstin_has_no_tax_sensors(
    hass: HomeAssistant, config_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    await set_up(hass, config_entry, freezer, tax={})

    entities = er.async_entries_for_config_entry(er.async_get(hass), config_entry.entry_id)
    assert not [e for e in entities if "/tax_" in e.unique_id]
    assert _tax_devices(hass, config_entry) == []


async def test_a_business_customer_s_invoice_to_another_state_moves_the_tax_to_igst(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The B2B request (the receipt page's form calls ``Books.async_b2b``) refreshes them too."""
    await set_up(hass, config_entry, freezer)
    paid = await pay(hass, standin, post_webhook)
    await hass.async_block_till_done(wait_background_tasks=True)  # the totals read again
    hub = config_entry.runtime_data

    await hub.books.async_b2b(
        paid.payment_id, parse_recipient(MAHARASHTRA_CUSTOMER, "Fleet Movers LLP", "Pune"), hub.tax
    )
    await hass.async_block_till_done(wait_background_tasks=True)  # the totals read again

    # The ₹20 invoice credited whole and issued again to Maharashtra: IGST, not CGST + SGST.
    assert _values(hass) == {"taxable": "16.95", "cgst": "0.00", "sgst": "0.00", "igst": "3.05"}


async def test_the_tax_sensors_as_registered(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    snapshot: SnapshotAssertion,
) -> None:
    """Their registry entries and states, as HA core snapshots a platform's."""
    await set_up(hass, config_entry, freezer)
    registry = er.async_get(hass)
    shot = registry_snapshot(snapshot)

    for entity_id in SENSORS.values():
        assert registry.async_get(entity_id) == shot(name=f"{entity_id}-entry")
        assert hass.states.get(entity_id) == shot(name=f"{entity_id}-state")
