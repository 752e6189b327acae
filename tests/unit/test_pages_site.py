"""``pages_site``: what a bay page says of its site, in plain Python (time passed in)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from custom_components.qr_charging.ledger import Ledger
from custom_components.qr_charging.pages_site import CLOSED, FULL, sale_refusal, site_view
from custom_components.qr_charging.records import SessionRecord, SessionState
from custom_components.qr_charging.site_gate import SiteGate
from custom_components.qr_charging.sites import WEEKDAYS, make_site

KOLKATA = ZoneInfo("Asia/Kolkata")
SHOP = make_site(
    "shop",
    "Shop",
    time_zone="Asia/Kolkata",
    hours=dict.fromkeys(WEEKDAYS, "08:00-21:00") | {"sun": ""},
    closed_dates="2026-12-25",
    load_cap_w=5000,
)
GATE = SiteGate(SHOP, KOLKATA, {"bay-1": 3300, "bay-2": 1000, "bay-3": 3300})


def _at(local: str) -> float:
    return datetime.fromisoformat(local).replace(tzinfo=KOLKATA).timestamp()


def _powered(*bays: str, until: float) -> Ledger:
    ledger = Ledger()
    for bay in bays:
        ledger.sessions[f"s-{bay}"] = SessionRecord(
            f"s-{bay}", bay, SessionState.ACTIVE, created_at=0, seconds=1800, until=until
        )
    return ledger


@pytest.mark.parametrize(
    ("now", "opens"),
    [
        ("2026-12-07 07:59:59", ("08:00", None)),  # Monday before opening: today
        ("2026-12-07 21:00:00", ("08:00", "08/12")),  # closing time: tomorrow
        ("2026-12-05 23:30:00", ("08:00", "07/12")),  # Saturday night: Sunday is closed
        ("2026-12-24 21:30:00", ("08:00", "26/12")),  # a closed date is skipped
    ],
)
def test_closed_says_when_it_opens(now: str, opens: tuple[str, str | None]) -> None:
    view = site_view(GATE, Ledger(), "bay-1", _at(now))
    assert (view.closed, view.opens) == (True, opens)
    assert sale_refusal(GATE, Ledger(), "bay-1", _at(now), starting=False) == CLOSED


def test_open_says_the_closing_its_sales_are_cut_to() -> None:
    view = site_view(GATE, Ledger(), "bay-1", _at("2026-12-07 20:00:00"))
    assert (view.closed, view.full, view.closes, view.in_use_kw, view.cap_kw) == (
        False,
        False,
        ("21:00", None),
        "0",
        "5",
    )


def test_a_closing_days_away_names_its_date() -> None:
    """Open around the clock Monday to Friday: on Monday the closing is Saturday's 00:00."""
    week = dict.fromkeys(WEEKDAYS, "00:00-24:00") | {"sat": "", "sun": ""}
    site = make_site("x", "X", time_zone="Asia/Kolkata", hours=week)
    gate = SiteGate(site, KOLKATA, {"bay-1": 3300})
    view = site_view(gate, Ledger(), "bay-1", _at("2026-12-07 12:00:00"))
    assert view.closes == ("00:00", "12/12")  # not "00:00", read as tonight


def test_full_says_when_power_is_free_rounded_up() -> None:
    now = _at("2026-12-07 12:00:00")
    ledger = _powered("bay-1", until=now + 61)
    view = site_view(GATE, ledger, "bay-3", now)
    assert (view.full, view.free_min, view.in_use_kw, view.measured) == (True, 2, "3.3", False)
    assert sale_refusal(GATE, ledger, "bay-3", now, starting=True) == FULL
    # A top-up adds no load; the small bay still fits.
    assert sale_refusal(GATE, ledger, "bay-3", now, starting=False) is None
    assert not site_view(GATE, ledger, "bay-2", now).full


def test_measured_only_when_every_powered_bay_reports() -> None:
    now = _at("2026-12-07 12:00:00")
    ledger = _powered("bay-1", "bay-2", until=now + 600)
    # bay-2 is not metered: the rated powers are shown, not bay-1's reading alone.
    view = site_view(GATE, ledger, "bay-3", now, {"bay-1": 2750.0})
    assert (view.in_use_kw, view.measured) == ("4.3", False)
    view = site_view(GATE, ledger, "bay-3", now, {"bay-1": 2750.0, "bay-2": 640.0})
    assert (view.in_use_kw, view.measured) == ("3.4", True)
    view = site_view(GATE, ledger, "bay-3", now, {"bay-1": None, "bay-2": 640.0})
    assert view.measured is False  # a meter not heard from yet


def test_full_page_names_the_end_that_frees_enough_power() -> None:
    """A 1 kW bay ending in 5 min frees too little for bay-3 (3.3 kW) beside bay-1 (3.3 kW)."""
    now = _at("2026-12-07 12:00")
    ledger = _powered("bay-1", until=now + 3600)
    ledger.sessions["s-bay-2"] = SessionRecord(
        "s-bay-2", "bay-2", SessionState.ACTIVE, created_at=0, seconds=600, until=now + 300
    )

    view = site_view(GATE, ledger, "bay-3", now)

    assert view.full
    assert view.free_min == 60


def test_an_overdue_end_is_said_as_at_least_a_minute() -> None:
    """bay-1 still powered past its end (its off not yet confirmed): "about 1 minute", not 0."""
    now = _at("2026-12-07 12:00:00")
    view = site_view(GATE, _powered("bay-1", until=now - 5), "bay-3", now)
    assert (view.full, view.free_min) == (True, 1)


@pytest.mark.parametrize(("ends", "free_min"), [("20:59:00", 59), ("21:00:00", None)])
def test_no_next_free_time_from_the_closing_on(ends: str, free_min: int | None) -> None:
    """Power free only at or after closing (21:00) frees nothing to sell: nothing is said."""
    now = _at("2026-12-07 20:00:00")
    view = site_view(GATE, _powered("bay-1", until=_at(f"2026-12-07 {ends}")), "bay-3", now)
    assert (view.full, view.free_min) == (True, free_min)
