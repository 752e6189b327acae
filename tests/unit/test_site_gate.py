"""A paid session decided against its bay's site: closed, past closing, over the load cap."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.qr_charging.ledger import Ledger
from custom_components.qr_charging.records import SessionRecord, SessionState
from custom_components.qr_charging.session_rules import PaidDecision, settle_paid
from custom_components.qr_charging.site_gate import CLOSING_GRACE_S, SiteGate
from custom_components.qr_charging.sites import WEEKDAYS, make_site

KOLKATA = ZoneInfo("Asia/Kolkata")
# Monday 7 December 2026, 20:30 in Kolkata: half an hour before the shop closes.
EVENING = datetime(2026, 12, 7, 20, 30, tzinfo=KOLKATA).timestamp()
LIMIT_S = 4 * 3600


def _gate(
    *, cap_w: int | None = None, past_closing: bool = False, rated: dict[str, int] | None = None
) -> SiteGate:
    site = make_site(
        "shop",
        "Shop",
        hours=dict.fromkeys(WEEKDAYS, "08:00-21:00"),
        load_cap_w=cap_w,
        sell_past_closing=past_closing,
    )
    return SiteGate(site, KOLKATA, rated or {"bay-1": 800})


def _paid(
    ledger: Ledger, bay_id: str, seconds: int = 1800, *, owner: bool = False
) -> SessionRecord:
    session = SessionRecord(
        session_id=f"s-{bay_id}-{len(ledger.sessions)}",
        bay_id=bay_id,
        state=SessionState.PAID,
        created_at=EVENING - 60,
        seconds=seconds,
        paid_paise=0 if owner else 2000,
        owner=owner,
    )
    ledger.sessions[session.session_id] = session
    return session


def _settle(ledger: Ledger, session: SessionRecord, gate: SiteGate, now: float) -> PaidDecision:
    outcome = settle_paid(
        ledger, session, online=True, limit_s=LIMIT_S, now=now, margin_s=22, gate=gate
    )
    return outcome.decision


@pytest.mark.parametrize(("owner", "expected"), [(False, "closed"), (True, "start")])
def test_a_closed_site_sells_nothing_but_the_owner_may_start(owner: bool, expected: str) -> None:
    ledger = Ledger()
    session = _paid(ledger, "bay-1", owner=owner)
    night = EVENING + 2 * 3600  # 22:30

    assert _settle(ledger, session, _gate(), night) == expected
    # A refusal changes nothing: the caller fails and refunds the session.
    assert session.state is (SessionState.STARTING if owner else SessionState.PAID)


@pytest.mark.parametrize(
    ("seconds", "past_closing", "expected"),
    [
        (1800, False, PaidDecision.START),  # ends 21:00, at closing
        (1800 + CLOSING_GRACE_S, False, PaidDecision.START),  # a link paid late: within grace
        (1800 + CLOSING_GRACE_S + 60, False, PaidDecision.REFUSE_TOO_LONG),
        (3 * 3600, True, PaidDecision.START),  # the owner allows selling past closing
    ],
)
def test_a_sale_past_closing_is_refused_unless_allowed(
    seconds: int, past_closing: bool, expected: PaidDecision
) -> None:
    ledger = Ledger()
    session = _paid(ledger, "bay-1", seconds)

    assert _settle(ledger, session, _gate(past_closing=past_closing), EVENING) is expected


def test_the_owners_session_runs_past_closing() -> None:
    ledger = Ledger()
    session = _paid(ledger, "bay-1", 3 * 3600, owner=True)

    assert _settle(ledger, session, _gate(), EVENING) is PaidDecision.START


@pytest.mark.parametrize("owner", [False, True])
def test_a_start_over_the_load_cap_is_refused_even_for_the_owner(owner: bool) -> None:
    gate = _gate(cap_w=2000, rated={"bay-1": 800, "bay-2": 800, "bay-3": 800})
    ledger = Ledger()
    assert _settle(ledger, _paid(ledger, "bay-1"), gate, EVENING) is PaidDecision.START
    assert _settle(ledger, _paid(ledger, "bay-2"), gate, EVENING) is PaidDecision.START

    third = _paid(ledger, "bay-3", owner=owner)

    assert _settle(ledger, third, gate, EVENING) is PaidDecision.REFUSE_LOAD_CAP
    assert third.state is SessionState.PAID
    assert gate.powered_w(ledger) == 1600


def test_sessions_only_paid_are_no_load_and_a_top_up_adds_none() -> None:
    gate = _gate(cap_w=1000, rated={"bay-1": 800, "bay-2": 800})
    ledger = Ledger()
    waiting = _paid(ledger, "bay-2")  # paid, not decided yet: powers nothing
    first = _paid(ledger, "bay-1")
    assert _settle(ledger, first, gate, EVENING) is PaidDecision.START
    first.state = SessionState.ACTIVE

    # The cap is full with bay-1 on; its own top-up adds no load.
    top_up = _paid(ledger, "bay-1", 600)
    assert _settle(ledger, top_up, gate, EVENING) is PaidDecision.TOP_UP
    assert _settle(ledger, waiting, gate, EVENING) is PaidDecision.REFUSE_LOAD_CAP
    assert gate.next_free_s(ledger, EVENING) == pytest.approx(1800 + 600)


@settings(max_examples=200, deadline=None)
@given(
    rated=st.lists(st.integers(100, 3000), min_size=1, max_size=12),
    cap_w=st.integers(100, 12_000),
    order=st.randoms(use_true_random=False),
)
def test_whatever_the_order_the_powered_bays_never_exceed_the_cap(
    rated: list[int], cap_w: int, order: object
) -> None:
    """Payments decided one change at a time (as the books do): the cap always holds, and a
    refused bay really did not fit beside those already powered."""
    bays = {f"bay-{i}": watts for i, watts in enumerate(rated)}
    gate = _gate(cap_w=cap_w, rated=bays)
    ledger = Ledger()
    ids = list(bays)
    order.shuffle(ids)  # type: ignore[attr-defined]
    for bay_id in ids:
        before = gate.powered_w(ledger)
        decision = _settle(ledger, _paid(ledger, bay_id), gate, EVENING)
        if decision is PaidDecision.START:
            assert before + bays[bay_id] <= cap_w
        else:
            assert decision is PaidDecision.REFUSE_LOAD_CAP
            assert before + bays[bay_id] > cap_w
        assert gate.powered_w(ledger) <= cap_w
