"""``Books.read``: what a page shows, read from the database without the books' write lock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from custom_components.qr_charging.books import Books
from custom_components.qr_charging.ledger import Ledger, Wanted
from custom_components.qr_charging.payment_rules import apply_payment
from custom_components.qr_charging.razorpay_events import PaymentNotice
from custom_components.qr_charging.records import LinkRecord, SessionState
from custom_components.qr_charging.session_rules import (
    PaidDecision,
    begin,
    confirm,
    finish,
    settle_paid,
)
from custom_components.qr_charging.site_gate import SiteGate
from custom_components.qr_charging.sites import WEEKDAYS, make_site
from custom_components.qr_charging.store import LedgerStore

NOW = 1_764_000_000.0
# A bound on a wait that must not happen at all: reached only when ``read`` waits for the lock.
NEVER_S = 5


async def _run(job: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(job)


async def _paid_books(path: Path) -> Books:
    """Books with session ``s-1`` paid for by ``pay_1`` through link ``plink_1``."""
    books = Books(LedgerStore(path, _run), clock=lambda: NOW)
    await books.async_open()
    link = LinkRecord("plink_1", "s-1", "bay-1", "p30", 2000, "INR", 1800, 0, NOW, "https://x/1")
    notice = PaymentNotice("pay_1", 2000, "INR", "captured", link_id="plink_1")
    async with books.change() as ledger:
        ledger.add_link(link)
    async with books.change(Wanted.for_payment(notice, "evt_1")) as ledger:
        apply_payment(ledger, notice, "payment_link.paid", NOW)
    return books


def _session_page(session_id: str) -> Wanted:
    return Wanted(reference_ids={session_id}, session_ids={session_id})


async def test_a_read_does_not_wait_for_a_change_and_sees_only_what_is_stored(
    tmp_path: Path,
) -> None:
    """A change under way holds the lock; a read answers meanwhile, with the stored records."""
    books = await _paid_books(tmp_path / "ledger.db")
    written, finish_change = asyncio.Event(), asyncio.Event()

    async def change() -> None:
        async with books.change() as ledger:
            begin(ledger.sessions["s-1"], NOW)
            written.set()
            await finish_change.wait()

    changing = asyncio.create_task(change())
    try:
        await written.wait()
        assert books.lock.locked()

        seen = await asyncio.wait_for(books.read(_session_page("s-1")), NEVER_S)

        # The change's write is not stored yet: the read shows the session as stored, paid.
        assert seen.sessions["s-1"].state is SessionState.PAID
        assert seen.sessions["s-1"] is not books.ledger.sessions["s-1"]
        assert books.ledger.sessions["s-1"].state is SessionState.STARTING
    finally:
        finish_change.set()
        await changing
    stored = await books.read(_session_page("s-1"))
    assert stored.sessions["s-1"].state is SessionState.STARTING


async def test_a_read_of_history_leaves_the_working_set_as_it_was(tmp_path: Path) -> None:
    """An ended session (evicted) is read with its link and payment; memory takes none of it."""
    books = await _paid_books(tmp_path / "ledger.db")
    async with books.change() as ledger:
        session = ledger.sessions["s-1"]
        begin(session, NOW)
        confirm(session, NOW)
        finish(session, NOW + 1800, "deadline")
    assert "s-1" not in books.ledger.sessions
    tables = {t: dict(getattr(books.ledger, t)) for t in ("links", "payments", "sessions")}

    seen = await books.read(_session_page("s-1"))

    link = seen.link_by_reference("s-1")
    assert link is not None
    assert link.payment_id == "pay_1"
    assert seen.payments["pay_1"].session_id == "s-1"
    assert seen.sessions["s-1"].state is SessionState.ENDED
    assert {t: dict(getattr(books.ledger, t)) for t in tables} == tables
    assert books.ledger.link_by_reference("s-1") is None


async def test_a_paid_session_decided_in_its_bays_own_change_finds_its_link(
    tmp_path: Path,
) -> None:
    """Paid at 16:00 (UTC) through a link made at 15:40 (its half hour then ended by the
    site's 16:10 closing) that lives 21 minutes: its half hour now ends 20 minutes after
    closing, the time since its link was made, so it starts, when its bay decides it later
    (``BayRunner.async_handle_paid`` fetches the link, which the working set dropped once
    paid)."""
    books = Books(LedgerStore(tmp_path / "ledger.db", _run), clock=lambda: NOW)
    await books.async_open()
    made = NOW - 1200
    link = LinkRecord(
        "plink_1", "s-1", "bay-1", "p30", 2000, "INR", 1800, int(made) + 1260, made, "https://x/1"
    )
    notice = PaymentNotice("pay_1", 2000, "INR", "captured", link_id="plink_1")
    async with books.change() as ledger:
        ledger.add_link(link)
    async with books.change(Wanted.for_payment(notice, "evt_1")) as ledger:
        apply_payment(ledger, notice, "payment_link.paid", NOW)
    assert books.ledger.link_by_reference("s-1") is None  # paid: not in the working set
    site = make_site("shop", "Shop", time_zone="UTC", hours=dict.fromkeys(WEEKDAYS, "08:00-16:10"))
    gate = SiteGate(site, ZoneInfo("UTC"), {"bay-1": 3300})

    def decide(ledger: Ledger) -> PaidDecision:
        session = ledger.sessions["s-1"]
        return settle_paid(
            ledger, session, online=True, limit_s=4 * 3600, now=NOW, margin_s=22, gate=gate
        ).decision

    async with books.change() as ledger:
        assert decide(ledger) is PaidDecision.REFUSE_TOO_LONG  # no link: as a static QR's
    async with books.change(Wanted(reference_ids={"s-1"})) as ledger:
        assert decide(ledger) is PaidDecision.START
