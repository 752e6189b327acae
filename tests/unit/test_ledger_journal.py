"""What a change wrote, found from the records it wrote to (not by comparing the working set).

The ledger's records journal their old values at the first write inside a change, lists
changed in place included, and eviction after a change looks at what it touched; a change then
costs what it touches, whatever the working set holds (``benchmarks/ledger_growth.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, replace

from custom_components.qr_charging import session_rules as rules
from custom_components.qr_charging.ledger import Ledger
from custom_components.qr_charging.payment_rules import add_refund
from custom_components.qr_charging.records import (
    LinkRecord,
    PaymentRecord,
    PaymentState,
    RefundRecord,
    RefundState,
    SessionRecord,
    SessionState,
)


def _link(index: int) -> LinkRecord:
    return LinkRecord(
        link_id=f"plink_{index}",
        reference_id=f"s-{index}",
        bay_id=f"bay-{index % 8}",
        plan_code="p30",
        amount=2000,
        currency="INR",
        seconds=1800,
        expire_by=2_000,
        created_at=1_000,
        short_url="https://rzp.io/x",
    )


def _active(ledger: Ledger, session_id: str, bay: str, payment_ids: list[str]) -> SessionRecord:
    session = SessionRecord(
        session_id, bay, SessionState.ACTIVE, 1, 1800 * len(payment_ids), 2000, payment_ids
    )
    session.until = 10_000.0
    ledger.sessions[session_id] = session
    for payment_id in payment_ids:
        ledger.payments[payment_id] = PaymentRecord(
            payment_id, 2000, "INR", 1, PaymentState.SESSION, ["payment.captured"], bay_id=bay
        )
    return session


def test_only_the_records_written_to_are_stored() -> None:
    ledger = Ledger()
    for index in range(500):
        ledger.add_link(_link(index))
    session = _active(ledger, "s-live", "bay-1", ["pay_a"])
    checkpoint = ledger.checkpoint()
    ledger.links["plink_7"].status = "expired"
    session.end_reason = None  # written with the value it had: not a change
    changes = ledger.changes_since(checkpoint)
    assert [(kind.table, record) for kind, record in changes.upserts] == [
        ("links", ledger.links["plink_7"])
    ]
    assert not changes.deletes


def test_lists_changed_in_place_are_found_and_undone() -> None:
    ledger = Ledger()
    running = _active(ledger, "s-live", "bay-1", ["pay_a"])
    paid = SessionRecord("s-new", "bay-1", SessionState.PAID, 2, 1800, 2000, ["pay_b"])
    ledger.sessions["s-new"] = paid
    ledger.payments["pay_b"] = PaymentRecord("pay_b", 2000, "INR", 2, PaymentState.SESSION)
    checkpoint = ledger.checkpoint()
    rules.top_up(ledger, running, paid, 100)  # extends running.payment_ids, drops s-new
    ledger.payments["pay_a"].events += ["payment_link.paid"]
    ledger.payments["pay_b"].events[0:0] = ["order.paid"]
    changes = ledger.changes_since(checkpoint)
    upserted = {(kind.table, getattr(record, kind.key)) for kind, record in changes.upserts}
    assert upserted == {("sessions", "s-live"), ("payments", "pay_a"), ("payments", "pay_b")}
    assert [(kind.table, key) for kind, key in changes.deletes] == [("sessions", "s-new")]

    ledger.restore(checkpoint)

    assert ledger.sessions == {"s-live": running, "s-new": paid}
    assert running.payment_ids == ["pay_a"]
    assert (running.seconds, running.until) == (1800, 10_000.0)
    assert ledger.payments["pay_a"].events == ["payment.captured"]
    assert ledger.payments["pay_b"].events == []
    assert ledger.payments["pay_b"].session_id is None
    assert not ledger.changes_since(ledger.checkpoint())


def test_a_record_put_in_place_of_another_counts_as_both() -> None:
    ledger = Ledger()
    _active(ledger, "s-1", "bay-1", ["pay_a"])
    checkpoint = ledger.checkpoint()
    replacement = PaymentRecord("pay_a", 500, "INR", 1, PaymentState.SESSION, bay_id="bay-1")
    ledger.payments["pay_a"] = replacement
    changes = ledger.changes_since(checkpoint)
    assert [record for _, record in changes.upserts] == [replacement]
    # The bay's revenue moves from the old payment's 2000 to the new one's 500.
    assert changes.totals["bay-1"].revenue_paise == -1500


def test_two_accounts_changing_at_once_each_find_their_own_writes() -> None:
    """Each task journals its own change (a context variable): two ledgers, two changes open."""
    ledgers = [Ledger(), Ledger()]
    sessions = [
        _active(ledgers[0], "s-1", "bay-1", ["pay_a"]),
        _active(ledgers[1], "s-2", "bay-2", ["pay_b"]),
    ]

    async def change(
        ledger: Ledger, session: SessionRecord, ready: asyncio.Event, go: asyncio.Event
    ) -> int:
        checkpoint = ledger.checkpoint()
        ready.set()
        await go.wait()  # both changes are open before either writes
        session.state = SessionState.ENDED
        await asyncio.sleep(0)
        return len(ledger.changes_since(checkpoint).upserts)

    async def both() -> list[int]:
        ready, go = [asyncio.Event(), asyncio.Event()], asyncio.Event()
        tasks = [
            asyncio.create_task(change(ledger, session, event, go))
            for ledger, session, event in zip(ledgers, sessions, ready, strict=True)
        ]
        for event in ready:
            await event.wait()
        go.set()
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(both()) == [1, 1]


def _working_set(ledger: Ledger) -> dict[str, set[str]]:
    return {
        "links": set(ledger.links),
        "payments": set(ledger.payments),
        "sessions": set(ledger.sessions),
        "refunds": set(ledger.refunds),
        "references": set(ledger._links_by_reference),
    }


def _both_ways(
    build: Callable[[Ledger], None], change: Callable[[Ledger], None], now: float
) -> None:
    """After ``change``, evicting what it touched leaves what evicting everything leaves."""
    results = []
    for touched_only in (True, False):
        ledger = Ledger()
        build(ledger)
        ledger.evict(now - 1)
        checkpoint = ledger.checkpoint()
        change(ledger)
        ledger.changes_since(checkpoint)
        if touched_only:
            ledger.evict_touched(now)
        else:
            ledger.evict(now)
        results.append(_working_set(ledger))
    assert results[0] == results[1]


def _two_bays(ledger: Ledger) -> None:
    for index in range(4):
        ledger.add_link(_link(index))
    _active(ledger, "s-live", "bay-1", ["pay_a", "pay_b"])
    _active(ledger, "s-other", "bay-2", ["pay_c"])


def test_evicting_what_a_change_touched_is_evicting_everything() -> None:
    def pay_a_link(ledger: Ledger) -> None:
        ledger.links["plink_1"].status = "paid"

    def end_a_session(ledger: Ledger) -> None:
        rules.finish(ledger.sessions["s-live"], 20, "deadline")

    def end_with_a_refund_pending(ledger: Ledger) -> None:
        rules.finish(ledger.sessions["s-live"], 20, "power_cut")
        add_refund(
            ledger,
            RefundRecord("r-1", "pay_b", 500, 20, RefundState.REQUESTED, "power_cut", "s-live"),
        )

    def settle_a_refund(ledger: Ledger) -> None:
        end_with_a_refund_pending(ledger)
        ledger.refunds["r-1"].state = RefundState.PROCESSED

    def top_up(ledger: Ledger) -> None:
        paid = SessionRecord("s-new", "bay-1", SessionState.PAID, 2, 1800, 2000, ["pay_d"])
        ledger.sessions["s-new"] = paid
        ledger.payments["pay_d"] = PaymentRecord("pay_d", 2000, "INR", 2, PaymentState.SESSION)
        rules.top_up(ledger, ledger.sessions["s-live"], paid, 30)

    def fetched_history(ledger: Ledger) -> None:
        ended = SessionRecord("s-old", "bay-3", SessionState.ENDED, 0, 1800, 2000, ["pay_o"])
        old = PaymentRecord("pay_o", 2000, "INR", 0, PaymentState.SESSION, session_id="s-old")
        ledger.merge([ended, old, _link(99)], {})
        ledger.links["plink_99"].status = "paid"

    def unmatched_payment(ledger: Ledger) -> None:
        ledger.payments["pay_x"] = PaymentRecord("pay_x", 100, "INR", 5, PaymentState.UNMATCHED)

    for change in (
        pay_a_link,
        end_a_session,
        end_with_a_refund_pending,
        settle_a_refund,
        top_up,
        fetched_history,
        unmatched_payment,
    ):
        _both_ways(_two_bays, change, now=1_000)
    # Open links come of age after a day: then everything is looked at.
    _both_ways(_two_bays, lambda ledger: None, now=1_000 + 24 * 3600)


def test_a_change_of_another_ledger_inside_one_leaves_both_journals_whole() -> None:
    """Two accounts: a change of B made inside a change of A (both undone or stored apart)."""
    outer, inner = Ledger(), Ledger()
    mine = _active(outer, "s-a", "bay-1", ["pay_a"])
    theirs = _active(inner, "s-b", "bay-1", ["pay_b"])
    outer_checkpoint = outer.checkpoint()
    inner_checkpoint = inner.checkpoint()
    theirs.until = 11_000.0
    inner_changes = inner.changes_since(inner_checkpoint)
    mine.until = 12_000.0  # after the inner change ended: still the outer change's
    outer_changes = outer.changes_since(outer_checkpoint)
    assert [record.session_id for _, record in inner_changes.upserts] == ["s-b"]  # type: ignore[union-attr]
    assert [record.session_id for _, record in outer_changes.upserts] == ["s-a"]  # type: ignore[union-attr]

    # Undone the other way round: the outer undo leaves the inner ledger's stored change alone.
    outer_checkpoint = outer.checkpoint()
    inner_checkpoint = inner.checkpoint()
    theirs.until = 13_000.0
    inner.changes_since(inner_checkpoint)
    mine.until = 14_000.0
    outer.restore(outer_checkpoint)
    assert mine.until == 12_000.0
    assert theirs.until == 13_000.0


def test_a_records_lists_are_its_own() -> None:
    """A list taken from another record, or a copy's, journals the record that holds it."""
    ledger = Ledger()
    first = _active(ledger, "s-1", "bay-1", ["pay_a"])
    second = _active(ledger, "s-2", "bay-2", ["pay_b"])
    second.payment_ids = first.payment_ids
    checkpoint = ledger.checkpoint()
    second.payment_ids.append("pay_c")
    changes = ledger.changes_since(checkpoint)
    assert [record.session_id for _, record in changes.upserts] == ["s-2"]  # type: ignore[union-attr]
    assert first.payment_ids == ["pay_a"]
    # What dataclasses make of a record keeps its lists.
    assert asdict(first)["payment_ids"] == ["pay_a"]
    assert replace(first).payment_ids == ["pay_a"]


async def test_a_task_started_in_a_change_writes_nothing_into_it_later() -> None:
    ledger = Ledger()
    session = _active(ledger, "s-1", "bay-1", ["pay_a"])
    written = asyncio.Event()

    async def later() -> None:
        await written.wait()
        session.until = 20_000.0

    checkpoint = ledger.checkpoint()
    task = asyncio.create_task(later())  # inherits the open journal
    changes = ledger.changes_since(checkpoint)
    written.set()
    await task
    assert not changes
    assert id(session) not in checkpoint.journal
