"""A paid session decided against its bay's site: closed, past closing, over the load cap."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.qr_charging.ledger import Ledger
from custom_components.qr_charging.records import LinkRecord, SessionRecord, SessionState
from custom_components.qr_charging.session_rules import PaidDecision, settle_paid
from custom_components.qr_charging.site_gate import SiteGate
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


def _link(ledger: Ledger, session: SessionRecord, lifetime_s: int) -> None:
    """The payment link that sold ``session``, made ``lifetime_s`` before it expires."""
    made = EVENING - 600
    ledger.add_link(
        LinkRecord(
            link_id=f"plink_{session.session_id}",
            reference_id=session.session_id,
            bay_id=session.bay_id,
            plan_code="p30",
            amount=session.paid_paise,
            currency="INR",
            seconds=session.seconds,
            expire_by=int(made) + lifetime_s,
            created_at=made,
            short_url="https://rzp.io/x",
            status="paid",
        )
    )


@pytest.mark.parametrize(
    ("seconds", "link_s", "past_closing", "expected"),
    [
        (1800, None, False, PaidDecision.START),  # ends 21:00, at closing
        (1860, None, False, PaidDecision.REFUSE_TOO_LONG),  # a static QR's: nothing past
        # A link made at 20:20 sold what ended by closing: up to 40 minutes. Started at 20:30
        # it ends at most the 10 minutes since then past closing, whatever the link's lifetime.
        (1800 + 600, 1260, False, PaidDecision.START),
        (1800 + 600 + 1, 1260, False, PaidDecision.REFUSE_TOO_LONG),
        (1800 + 600, 3660, False, PaidDecision.START),  # a 60-min hold's link (61 min)
        (3 * 3600, None, True, PaidDecision.START),  # the owner allows selling past closing
    ],
)
def test_a_sale_past_closing_is_refused_beyond_the_time_since_its_link(
    seconds: int, link_s: int | None, past_closing: bool, expected: PaidDecision
) -> None:
    ledger = Ledger()
    session = _paid(ledger, "bay-1", seconds)
    if link_s is not None:
        _link(ledger, session, link_s)

    assert _settle(ledger, session, _gate(past_closing=past_closing), EVENING) is expected


@pytest.mark.parametrize("late_s", [0, 4, 241])
def test_a_link_paid_in_its_last_second_and_decided_later_starts(late_s: int) -> None:
    """Made at 20:20 for 40 minutes (ends by 21:00), its link lives 21 minutes: paid at
    20:40:59 and decided ``late_s`` later (a late webhook, a retry, reconcile), still open."""
    ledger = Ledger()
    session = _paid(ledger, "bay-1", 2400)
    _link(ledger, session, 1260)
    decided = EVENING + 600 + 59 + late_s

    assert _settle(ledger, session, _gate(), decided) is PaidDecision.START


def test_a_link_paid_after_closing_is_refused_closed() -> None:
    ledger = Ledger()
    session = _paid(ledger, "bay-1", 600)
    _link(ledger, session, 3660)

    assert _settle(ledger, session, _gate(), EVENING + 31 * 60) is PaidDecision.REFUSE_CLOSED


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
    _link(ledger, top_up, 1260)  # bought through a link: may run its lifetime past closing
    assert _settle(ledger, top_up, gate, EVENING) is PaidDecision.TOP_UP
    assert _settle(ledger, waiting, gate, EVENING) is PaidDecision.REFUSE_LOAD_CAP
    assert gate.next_free_s(ledger, EVENING, "bay-2") == pytest.approx(1800 + 600)


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


def _running(ledger: Ledger, bay_id: str, until: float | None) -> None:
    ledger.sessions[f"s-{bay_id}"] = SessionRecord(
        f"s-{bay_id}", bay_id, SessionState.ACTIVE, created_at=0, seconds=3600, until=until
    )


def test_next_free_waits_for_the_end_that_frees_enough_power() -> None:
    """5 kW: a 1 kW bay ending in 5 min frees too little for 3.3 kW beside a 3.3 kW bay."""
    gate = _gate(cap_w=5000, rated={"small": 1000, "big": 3300, "want": 3300, "tiny": 500})
    ledger = Ledger()
    _running(ledger, "small", EVENING + 300)
    _running(ledger, "big", EVENING + 3600)

    assert gate.next_free_s(ledger, EVENING, "want") == pytest.approx(3600)
    assert gate.next_free_s(ledger, EVENING, "tiny") == 0  # it fits now
    _running(ledger, "big", None)  # no deadline (the owner's): never frees
    assert gate.next_free_s(ledger, EVENING, "want") is None


@settings(max_examples=200, deadline=None)
@given(
    sessions=st.lists(
        st.tuples(st.integers(100, 3000), st.integers(0, 7200)), min_size=1, max_size=8
    ),
    want=st.integers(100, 3000),
    cap_w=st.integers(100, 12_000),
)
def test_next_free_is_the_first_end_after_which_the_bay_fits(
    sessions: list[tuple[int, int]], want: int, cap_w: int
) -> None:
    rated = {f"bay-{i}": watts for i, (watts, _) in enumerate(sessions)} | {"want": want}
    gate = _gate(cap_w=cap_w, rated=rated)
    ledger = Ledger()
    for i, (_, left) in enumerate(sessions):
        _running(ledger, f"bay-{i}", EVENING + left)

    free = gate.next_free_s(ledger, EVENING, "want")

    def load_at(t: float) -> int:
        return sum(w for i, (w, left) in enumerate(sessions) if EVENING + left > t)

    if want > cap_w:
        assert free is None
        return
    assert free is not None
    assert load_at(EVENING + free) + want <= cap_w
    earlier = [left for _, left in sessions if left < free] + [0]
    assert all(load_at(EVENING + t) + want > cap_w for t in earlier if t < free)
