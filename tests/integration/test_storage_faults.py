"""When the ledger cannot be stored: nothing changes, nothing powers a bay, and it is retried.

A full or failing disk cannot be made here, so the failure is injected at the store's
boundary (``LedgerStore._write``, the one place a change is written, raising SQLite's own
error); everything else is real: HA, the webhook over HTTP, a real switch as the bay's plug,
the Razorpay stand-in.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import aiohttp
import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.storage import STORAGE_DIR
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.qr_charging.backup import async_post_backup, async_pre_backup
from custom_components.qr_charging.bay_runner import BayRunner
from custom_components.qr_charging.const import DEFAULT_ACK_TIMEOUT_S, DOMAIN
from custom_components.qr_charging.ledger import Changes
from custom_components.qr_charging.records import PaymentRecord, SessionRecord, SessionState
from custom_components.qr_charging.store import LedgerStore
from custom_components.qr_charging.timers import STORAGE_RETRY_S
from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_PRICE, WEBHOOK_ID, WEBHOOK_SECRET
from .helpers import (
    PostWebhook,
    create_link,
    export_sessions,
    pay,
    plug_state,
    refund_amounts,
    settle,
    setup_plug,
    tick,
)
from .storage_helpers import failing_writes

PLAN_S = 30 * 60
LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy_ledger"


def _confirms(changes: Changes) -> bool:
    """The change that records the bay's acknowledgement (a session becoming active)."""
    return any(
        isinstance(r, SessionRecord) and r.state is SessionState.ACTIVE for _, r in changes.upserts
    )


@pytest.mark.usefixtures("loaded_entry")
async def test_a_payment_that_cannot_be_stored_is_redelivered(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    paid = standin.pay_link((await create_link(hass))["id"])
    delivery = paid.payment_link_paid()

    with failing_writes():
        response = await post_webhook(delivery)
        await settle(hass)
    assert response.status == 503
    assert (await response.json())["outcome"] == "not_stored"
    assert plug_state(hass) == STATE_OFF
    assert await export_sessions(hass) == []

    # Razorpay delivers the same event again once the disk works.
    response = await post_webhook(delivery)
    await settle(hass)
    assert (await response.json())["outcome"] == "new_session"
    assert plug_state(hass) == STATE_ON
    (row,) = await export_sessions(hass)
    assert row["state"] == "active"


@pytest.mark.usefixtures("loaded_entry")
async def test_an_acknowledgement_that_cannot_be_stored_never_leaves_power_on(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    with failing_writes(_confirms):
        paid = await pay(hass, standin, post_webhook)
        # The plug went on, but the session could not be marked active.
        assert plug_state(hass) == STATE_ON
        (row,) = await export_sessions(hass)
        assert row["state"] == "starting"
        # Unconfirmed at the acknowledgement time: the bay is switched off and refunded.
        await tick(hass, freezer, DEFAULT_ACK_TIMEOUT_S + 1)
    assert plug_state(hass) == STATE_OFF
    (row,) = await export_sessions(hass)
    assert (row["state"], row["end_reason"]) == ("refunded", "no_acknowledgement")
    assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]


@pytest.mark.usefixtures("loaded_entry")
async def test_an_end_that_cannot_be_stored_still_switches_off_and_is_stored_later(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    await pay(hass, standin, post_webhook)
    assert plug_state(hass) == STATE_ON

    with failing_writes():
        await tick(hass, freezer, PLAN_S + 1)
        assert plug_state(hass) == STATE_OFF
        (row,) = await export_sessions(hass)
        assert row["state"] == "active"
        # Still failing at the first retry: still off, still to be stored.
        await tick(hass, freezer, STORAGE_RETRY_S + 1)
        assert plug_state(hass) == STATE_OFF
    await tick(hass, freezer, STORAGE_RETRY_S + 1)
    (row,) = await export_sessions(hass)
    assert (row["state"], row["end_reason"]) == ("ended", "deadline")
    assert plug_state(hass) == STATE_OFF


@pytest.mark.usefixtures("loaded_entry")
async def test_a_refund_that_cannot_be_stored_is_not_sent(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    paid = await pay(hass, standin, post_webhook)

    with failing_writes(), pytest.raises(HomeAssistantError) as raised:
        await hass.services.async_call(
            DOMAIN, "refund", {"payment_id": paid.payment_id}, blocking=True, return_response=True
        )
    assert raised.value.translation_key == "storage_failed"
    assert refund_amounts(standin, paid.payment_id) == []

    response = await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": paid.payment_id}, blocking=True, return_response=True
    )
    assert response is not None
    assert response["amount"] == PLAN_PRICE
    assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]


def _place_legacy_ledger(storage: Path, entry_id: str) -> dict[str, Path]:
    """Put the JSON version's ledger and archive where it kept them for this entry."""
    storage.mkdir()
    names = {}
    for suffix in ("ledger", "archive.jsonl"):
        names[suffix] = storage / f"{DOMAIN}.{entry_id}.{suffix}"
        shutil.copy(LEGACY / f"{DOMAIN}.legacy-entry.{suffix}", names[suffix])
    return names


async def test_a_json_ledger_is_migrated_at_setup(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """The ledger written by the JSON version, with its archive, read by this one."""
    await setup_plug(hass)
    config_entry.add_to_hass(hass)
    names = _place_legacy_ledger(Path(hass.config.path(STORAGE_DIR)), config_entry.entry_id)

    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await settle(hass)

    revenue = hass.states.get("sensor.bay_1_revenue")
    sessions = hass.states.get("sensor.bay_1_sessions")
    assert revenue is not None
    assert sessions is not None
    # Two archived sessions (₹35) and one live one (₹20 less a pending ₹13.33 refund).
    assert (revenue.state, sessions.state) == ("41.67", "3")
    rows = await export_sessions(hass)
    assert [r["session_id"] for r in rows] == [f"s-legacy000{n}" for n in (1, 2, 3, 4)]
    assert all(path.with_name(path.name + ".migrated").exists() for path in names.values())
    assert not any(path.exists() for path in names.values())


@pytest.mark.usefixtures("loaded_entry")
async def test_a_backup_holds_writes_and_copies_a_whole_ledger(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    loaded_entry: MockConfigEntry,
    tmp_path: Path,
) -> None:
    """A burst of payments while HA backs up: the copy is consistent, none is lost."""
    first = await pay(hass, standin, post_webhook)
    burst = [standin.pay_link((await create_link(hass, "bay-1"))["id"]) for _ in range(5)]
    database = Path(hass.config.path(STORAGE_DIR, f"{DOMAIN}.{loaded_entry.entry_id}.db"))

    await async_pre_backup(hass)
    deliveries = [hass.async_create_task(post_webhook(paid.payment_link_paid())) for paid in burst]
    # Give them time to arrive (not block_till_done: they wait for the hold to end).
    await asyncio.sleep(0.2)
    # Held: no delivery is answered while HA copies the folder (the WAL is in the file).
    assert not any(task.done() for task in deliveries)
    copy = tmp_path / "backup.db"
    shutil.copy(database, copy)
    await async_post_backup(hass)
    answers: list[Any] = [await task for task in deliveries]
    await settle(hass)

    assert [a.status for a in answers] == [200] * 5
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (paid_ids,) = conn.execute("SELECT group_concat(payment_id) FROM payments").fetchone()
        totals = conn.execute("SELECT revenue_paise, sessions FROM bay_totals").fetchall()
    # The copy holds the ledger as it was before the burst, whole.
    assert paid_ids == first.payment_id
    assert totals == [(PLAN_PRICE, 1)]
    # And the live ledger took every payment of the burst (topping the session up).
    (row,) = await export_sessions(hass)
    assert len(row["payment_ids"].split()) == 6


@pytest.mark.usefixtures("loaded_entry")
async def test_a_delivery_razorpay_gave_up_on_is_handled_whole(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """A slow disk, Razorpay hangs up: the delivery still runs to its end, once."""
    client = await hass_client_no_auth()
    paid = standin.pay_link((await create_link(hass))["id"])
    delivery = paid.payment_link_paid()
    real = LedgerStore._write

    def slow(store: LedgerStore, changes: Changes) -> None:
        if _opens_a_session(changes):
            time.sleep(0.5)  # an fsync on a slow SD card
        real(store, changes)

    with patch.object(LedgerStore, "_write", autospec=True, side_effect=slow):
        with pytest.raises(TimeoutError):
            await client.post(
                f"/api/webhook/{WEBHOOK_ID}",
                data=delivery.body,
                headers=delivery.headers(WEBHOOK_SECRET),
                timeout=aiohttp.ClientTimeout(total=0.1),
            )
        await hass.async_add_executor_job(time.sleep, 0.6)
        await settle(hass)

    # Stored and handed to the bay, as if Razorpay had waited.
    assert plug_state(hass) == STATE_ON
    (row,) = await export_sessions(hass)
    assert row["state"] == "active"
    again = await client.post(
        f"/api/webhook/{WEBHOOK_ID}", data=delivery.body, headers=delivery.headers(WEBHOOK_SECRET)
    )
    assert (await again.json())["outcome"] == "duplicate_delivery"


def _opens_a_session(changes: Changes) -> bool:
    """The delivery's change: it stores the payment (and the session it opens, starting)."""
    return any(isinstance(r, PaymentRecord) for _, r in changes.upserts)


@pytest.mark.usefixtures("loaded_entry")
async def test_a_deadline_during_a_backup_still_switches_off(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    await pay(hass, standin, post_webhook)
    await async_pre_backup(hass)  # copying the media folder may take many minutes
    freezer.tick(timedelta(seconds=PLAN_S + 1))
    async_fire_time_changed(hass)
    # Not block_till_done (the end's change waits for the backup) nor timed sleeps (the clock
    # is frozen): let the switch's service calls run, hop by hop.
    for _ in range(50):
        await asyncio.sleep(0)
    assert plug_state(hass) == STATE_OFF

    await async_post_backup(hass)
    await settle(hass)
    (row,) = await export_sessions(hass)
    assert (row["state"], row["end_reason"]) == ("ended", "deadline")


def _decides(changes: Changes) -> bool:
    """A change where a bay decides about a paid session (start it, or fail it)."""
    return any(
        isinstance(r, SessionRecord)
        and r.state in (SessionState.STARTING, SessionState.FAILED, SessionState.REFUNDED)
        for _, r in changes.upserts
    )


@pytest.mark.usefixtures("loaded_entry")
async def test_each_decision_that_could_not_be_stored_is_tried_again(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Seed 5 of the schedules: two payments whose decisions could not be stored at once.

    The bay kept one retry timer: the second failure replaced the first payment's retry, and
    that payment stayed paid for good, with no power and no refund.

    A start is now decided in the webhook's own change when the bay can take it (a failure
    there is a 503, redelivered); here both payments take the bay's own decision, as they do
    while its availability is not known yet after a restart.
    """
    with failing_writes(_decides), patch.object(BayRunner, "power_now", return_value=None):
        first = await pay(hass, standin, post_webhook)
        second = await pay(hass, standin, post_webhook)
        assert plug_state(hass) == STATE_OFF
    await tick(hass, freezer, STORAGE_RETRY_S + 1)
    await tick(hass, freezer, STORAGE_RETRY_S + 1)

    rows = {row["payment_ids"]: row for row in await export_sessions(hass)}
    # Each payment was decided: it powers the bay, or it is refunded in full. None is left paid.
    for paid in (first, second):
        row = rows[paid.payment_id]
        if row["state"] == "active":
            assert refund_amounts(standin, paid.payment_id) == []
        else:
            assert (row["state"], row["end_reason"]) == ("refunded", "bay_busy")
            assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]
    active = [row for row in rows.values() if row["state"] == "active"]
    assert plug_state(hass) == (STATE_ON if active else STATE_OFF)
    assert len(active) <= 1
