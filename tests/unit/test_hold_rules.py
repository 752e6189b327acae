"""``holds.HoldGuard``'s rules, in plain Python: unpaid holds in a row and unpaid held time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.qr_charging.holds import (
    LINK_MARGIN_S,
    LINK_WINDOW_S,
    LINKS_PER_CLIENT,
    LINKS_PER_WINDOW,
    MIN_HOLD_S,
    UNPAID_HOLD_S,
    UNPAID_HOLDS,
    UNPAID_WINDOW_S,
    HoldGuard,
)

BAY = "bay-1"
TWENTY = 20 * 60


def _hold(guard: HoldGuard, link_id: str, now: float, hold_s: int = TWENTY) -> float | None:
    """Take a hold if the guard allows; return when its link expires (None: no hold)."""
    granted = guard.hold_seconds(BAY, 0, now, hold_s)
    if granted is None:
        return None
    until = now + granted + LINK_MARGIN_S
    guard.held(BAY, link_id, served=0, now=now, until=until)
    return until


def test_the_first_hold_is_the_bays_hold_time() -> None:
    assert HoldGuard().hold_seconds(BAY, 0, 0.0, TWENTY) == TWENTY


def test_a_long_hold_is_cut_to_the_unpaid_budget() -> None:
    assert HoldGuard().hold_seconds(BAY, 0, 0.0, 60 * 60) == UNPAID_HOLD_S - LINK_MARGIN_S


def test_an_expired_hold_leaves_too_little_for_another_until_it_slides_out() -> None:
    guard = HoldGuard()
    until = _hold(guard, "a", 0.0)
    assert until is not None
    assert guard.hold_seconds(BAY, 0, until, TWENTY) is None
    # Held until `until`; a hold needs MIN_HOLD_S + margin of the budget left in the window.
    slid = until + UNPAID_WINDOW_S - (UNPAID_HOLD_S - MIN_HOLD_S - LINK_MARGIN_S)
    assert guard.hold_seconds(BAY, 0, slid - 1, TWENTY) is None
    assert guard.hold_seconds(BAY, 0, slid, TWENTY) == MIN_HOLD_S


def test_a_served_session_forgives() -> None:
    guard = HoldGuard()
    until = _hold(guard, "a", 0.0)
    assert until is not None
    assert guard.hold_seconds(BAY, 1, until, TWENTY) == TWENTY


def test_a_cancelled_hold_stops_counting() -> None:
    guard = HoldGuard()
    assert _hold(guard, "a", 0.0) is not None
    guard.released("a", 60.0)
    assert guard.hold_seconds(BAY, 0, 60.0, TWENTY) == TWENTY


def test_holds_ended_unpaid_in_a_row_within_a_window_stop_holding() -> None:
    guard = HoldGuard()
    for n in range(UNPAID_HOLDS):
        start = n * 60.0
        assert _hold(guard, str(n), start) is not None
        guard.released(str(n), start + 1)  # cancelled after a second, or left to expire
    assert guard.hold_seconds(BAY, 0, 600.0, TWENTY) is None
    # Until the first of them ended a window ago.
    assert guard.hold_seconds(BAY, 0, UNPAID_WINDOW_S, TWENTY) is None
    assert guard.hold_seconds(BAY, 0, UNPAID_WINDOW_S + 1, TWENTY) == TWENTY


def test_a_running_sessions_own_budget_is_not_the_bays() -> None:
    guard = HoldGuard()
    for _ in range(LINKS_PER_WINDOW):
        guard.spend(BAY, 0.0)
    assert not guard.may_make_link(BAY, 0.0)
    assert guard.may_make_link(BAY, 0.0, "s-1")
    for _ in range(LINKS_PER_WINDOW):
        guard.spend(BAY, 0.0, "s-1")
    assert not guard.may_make_link(BAY, 0.0, "s-1")
    assert guard.may_make_link(BAY, LINK_WINDOW_S, "s-1")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=40 * 60),  # wait before the next tap
            st.sampled_from([15 * 60, TWENTY, 60 * 60]),  # the bay's hold time
            st.one_of(st.none(), st.integers(min_value=0, max_value=60 * 60)),  # cancel after
        ),
        max_size=60,
    )
)
def test_no_hour_is_held_unpaid_longer_than_the_budget(
    taps: list[tuple[int, int, int | None]],
) -> None:
    """Whatever the script's timing, hold times and cancels: any window stays in budget."""
    guard = HoldGuard()
    spans: list[tuple[float, float]] = []
    now = 0.0
    for n, (wait, hold_s, cancel_after) in enumerate(taps):
        now = max(now + wait, spans[-1][1] if spans else 0.0)  # the bay is free again
        until = _hold(guard, str(n), now, hold_s)
        if until is None:
            continue
        if cancel_after is not None and now + cancel_after < until:
            until = now + cancel_after
            guard.released(str(n), until)
        spans.append((now, until))
    for start, _ in spans:  # the worst windows end where a hold ends or begin where one does
        for window in ((start, start + UNPAID_WINDOW_S), (start - UNPAID_WINDOW_S, start)):
            held = sum(max(min(b, window[1]) - max(a, window[0]), 0) for a, b in spans)
            assert held <= UNPAID_HOLD_S
    for _, end in spans:
        window = (end - UNPAID_WINDOW_S, end)
        held = sum(max(min(b, window[1]) - max(a, window[0]), 0) for a, b in spans)
        assert held <= UNPAID_HOLD_S


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["203.0.113.1", "203.0.113.2", "2001:db8::/56", None]),
            st.floats(min_value=0, max_value=60, allow_nan=False),
        ),
        max_size=80,
    )
)
def test_no_client_takes_more_than_its_share_of_a_bays_links(
    taps: list[tuple[str | None, float]],
) -> None:
    """Whatever the clients' taps, in any window a client (an address) asks at most its
    share of the bay's links, and all of them together at most the bay's."""
    guard, now, made = HoldGuard(), 0.0, []
    for client, wait in taps:
        now += wait
        if guard.may_make_link(BAY, now, client=client):
            guard.spend(BAY, now, client=client)
            made.append((client, now))
    for _client, start in made:
        window = [c for c, at in made if start <= at < start + LINK_WINDOW_S]
        assert len(window) <= LINKS_PER_WINDOW
        for client in {c for c in window if c is not None}:
            assert window.count(client) <= LINKS_PER_CLIENT
