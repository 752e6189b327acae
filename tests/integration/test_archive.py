"""Settled history leaves the live ledger; totals, exports and restarts keep it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.qr_charging.archive import drop_archived, select_archivable
from custom_components.qr_charging.ledger import (
    Ledger,
    LinkRecord,
    RefundRecord,
    RefundState,
    SessionState,
)
from custom_components.qr_charging.razorpay_events import PaymentNotice
from custom_components.qr_charging.session_rules import revenue_paise, sessions_served
from devtools.razorpay_standin import RazorpayStandin

from .conftest import PLAN_PRICE, PostWebhook
from .helpers import create_link, export_sessions

DAY = 24 * 3600


def _paid_session(ledger: Ledger, i: int, *, ended_at: float) -> None:
    ledger.add_link(
        LinkRecord(f"plink_{i}", f"s-{i}", "bay-1", "p30", 2000, "INR", 1800, 0, 0.0, "u")
    )
    result = ledger.apply_payment(
        PaymentNotice(f"pay_{i}", 2000, "INR", "captured", link_id=f"plink_{i}"), "e", 0.0
    )
    assert result.session is not None
    result.session.state = SessionState.ENDED
    result.session.ended_at = ended_at


def test_only_settled_old_history_leaves_and_totals_stay() -> None:
    ledger = Ledger()
    _paid_session(ledger, 1, ended_at=0.0)  # old, settled
    _paid_session(ledger, 2, ended_at=0.0)  # old, but an owner's refund is still pending
    ledger.add_refund(RefundRecord("r-2", "pay_2", 500, 0.0, RefundState.PENDING, "owner"))
    _paid_session(ledger, 3, ended_at=40 * DAY)  # recent
    revenue, served = revenue_paise(ledger, "bay-1"), sessions_served(ledger, "bay-1")

    batch = select_archivable(ledger, cutoff=30 * DAY)
    assert batch is not None
    assert len(ledger.sessions) == 3  # selecting changes nothing
    drop_archived(ledger, batch)

    assert [s.session_id for s in batch["sessions"]] == ["s-1"]
    assert [p.payment_id for p in batch["payments"]] == ["pay_1"]
    assert [link.link_id for link in batch["links"]] == ["plink_1"]
    assert set(ledger.sessions) == {"s-2", "s-3"}
    assert (revenue_paise(ledger, "bay-1"), sessions_served(ledger, "bay-1")) == (revenue, served)
    # The totals survive the ledger's own round trip.
    again = Ledger.from_dict(json.loads(json.dumps(ledger.as_dict())))
    assert revenue_paise(again, "bay-1") == revenue
    assert select_archivable(ledger, cutoff=30 * DAY) is None


async def _session_that_ran(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A paid 30-minute session on bay-1, run to its end."""
    paid = standin.pay_link((await create_link(hass))["id"])
    await post_webhook(paid.payment_link_paid())
    for _ in range(3):
        await hass.async_block_till_done()
    freezer.tick(timedelta(minutes=31))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def test_month_old_sessions_are_archived_and_still_exported(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
) -> None:
    await _session_that_ran(hass, standin, post_webhook, freezer)
    before = await export_sessions(hass)
    assert [r["state"] for r in before] == ["ended"]
    revenue = hass.states.get("sensor.bay_1_revenue")
    assert revenue is not None

    freezer.tick(timedelta(days=31))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)

    hub = loaded_entry.runtime_data
    assert hub.ledger.sessions == {}
    ledger_path = Path(hass.config.path(".storage", f"qr_charging.{loaded_entry.entry_id}.ledger"))
    live = json.loads(await hass.async_add_executor_job(ledger_path.read_text))
    assert live["data"]["sessions"] == []
    assert await export_sessions(hass) == before
    hub.runners["bay-1"].async_write()
    await hass.async_block_till_done()
    after = hass.states.get("sensor.bay_1_revenue")
    assert after is not None
    assert after.state == revenue.state == f"{PLAN_PRICE / 100:.2f}"
    sessions = hass.states.get("sensor.bay_1_sessions")
    assert sessions is not None
    assert sessions.state == "1"

    # And after a restart.
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert await export_sessions(hass) == before
    reloaded = hass.states.get("sensor.bay_1_revenue")
    assert reloaded is not None
    assert reloaded.state == revenue.state


async def test_archive_that_cannot_be_written_keeps_everything_live(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
) -> None:
    await _session_that_ran(hass, standin, post_webhook, freezer)
    # The archive's place is taken by a folder: appending to it fails.
    archive = Path(
        hass.config.path(".storage", f"qr_charging.{loaded_entry.entry_id}.archive.jsonl")
    )
    await hass.async_add_executor_job(archive.mkdir, 0o755, True, True)

    freezer.tick(timedelta(days=31))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert len(loaded_entry.runtime_data.ledger.sessions) == 1
    await hass.async_add_executor_job(archive.rmdir)
    assert [r["state"] for r in await export_sessions(hass)] == ["ended"]
