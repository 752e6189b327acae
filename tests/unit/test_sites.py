"""A site's opening hours through a frozen week (``sites``): plain Python, no clock.

Each moment is passed in, so the week is "frozen" at every instant checked: opening and
closing across midnight, a closed date, and the same wall-clock hours in Asia/Kolkata (no
DST) beside Europe/London on the day its clocks go forward. Also the site form's checks.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.qr_charging.catalog_errors import CatalogError
from custom_components.qr_charging.sites import (
    DEFAULT_SITE_ID,
    WEEKDAYS,
    PriceBand,
    Site,
    Span,
    band_at,
    check_bay_power,
    closes_at,
    default_site,
    is_open,
    load_zones,
    make_site,
    opens_at,
    site_from_data,
    site_to_data,
    time_zones,
)

KOLKATA = ZoneInfo("Asia/Kolkata")
LONDON = ZoneInfo("Europe/London")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
# Clock changes (UTC) of 2026: Berlin springs forward 02:00 -> 03:00 and falls back
# 03:00 -> 02:00 at 01:00 UTC; New York at 02:00 local; Kolkata has none (a plain day).
CLOCK_CHANGES = {
    BERLIN: ("2026-03-29 01:00", "2026-10-25 01:00"),
    NEW_YORK: ("2026-03-08 07:00", "2026-11-01 06:00"),
    KOLKATA: ("2026-03-29 01:00",),
}
# A shop: split hours on weekdays, Saturday open past midnight into Sunday's early hours,
# closed on Independence Day (a Saturday in 2026).
SHOP_HOURS = {
    "mon": "08:00-13:00, 14:00-21:00",
    "tue": "08:00-13:00, 14:00-21:00",
    "wed": "08:00-13:00, 14:00-21:00",
    "thu": "08:00-13:00, 14:00-21:00",
    "fri": "08:00-21:00",
    "sat": "10:00-24:00",
    "sun": "00:00-02:00",
}


def _shop(time_zone: str = "Asia/Kolkata", closed: str = "") -> Site:
    return make_site("shop", "Shop", time_zone=time_zone, hours=SHOP_HOURS, closed_dates=closed)


def _at(tz: ZoneInfo, *when: int) -> float:
    return datetime(*when, tzinfo=tz).timestamp()  # type: ignore[misc]


# The week of Monday 2026-08-03 in Kolkata, moment by moment: (when, open, closes, opens).
WEEK = [
    ((2026, 8, 3, 7, 59), False, None, (2026, 8, 3, 8, 0)),
    ((2026, 8, 3, 8, 0), True, (2026, 8, 3, 13, 0), None),
    ((2026, 8, 3, 13, 0), False, None, (2026, 8, 3, 14, 0)),
    ((2026, 8, 3, 20, 59), True, (2026, 8, 3, 21, 0), None),
    ((2026, 8, 3, 21, 0), False, None, (2026, 8, 4, 8, 0)),
    ((2026, 8, 7, 12, 0), True, (2026, 8, 7, 21, 0), None),  # Friday: no lunch break
    # Friday night: the next opening is Saturday's.
    ((2026, 8, 7, 23, 0), False, None, (2026, 8, 8, 10, 0)),
    # Saturday's opening runs through midnight into Sunday: one opening, closing at 02:00.
    ((2026, 8, 8, 10, 0), True, (2026, 8, 9, 2, 0), None),
    ((2026, 8, 8, 23, 59), True, (2026, 8, 9, 2, 0), None),
    ((2026, 8, 9, 0, 0), True, (2026, 8, 9, 2, 0), None),
    ((2026, 8, 9, 2, 0), False, None, (2026, 8, 10, 8, 0)),
]


@pytest.mark.parametrize(("when", "open_", "closes", "opens"), WEEK)
def test_a_week_of_opening_hours_in_kolkata(
    when: tuple[int, ...],
    open_: bool,
    closes: tuple[int, ...] | None,
    opens: tuple[int, ...] | None,
) -> None:
    site, now = _shop(), _at(KOLKATA, *when)
    assert is_open(site, KOLKATA, now) is open_
    assert closes_at(site, KOLKATA, now) == (None if closes is None else _at(KOLKATA, *closes))
    assert opens_at(site, KOLKATA, now) == (None if opens is None else _at(KOLKATA, *opens))


def test_a_closed_date_skips_that_day_and_cuts_an_opening_at_its_midnight() -> None:
    # Saturday 2026-08-15 closed: Friday night's next opening is Sunday's 00:00.
    site = _shop(closed="2026-08-15")
    assert site.closed_dates == (date(2026, 8, 15),)
    friday_night = _at(KOLKATA, 2026, 8, 14, 22, 0)
    assert opens_at(site, KOLKATA, friday_night) == _at(KOLKATA, 2026, 8, 16, 0, 0)
    assert not is_open(site, KOLKATA, _at(KOLKATA, 2026, 8, 15, 12, 0))
    assert closes_at(site, KOLKATA, _at(KOLKATA, 2026, 8, 16, 1, 0)) == _at(
        KOLKATA, 2026, 8, 16, 2, 0
    )
    # Closed on the Sunday instead: Saturday's opening ends at midnight, not 02:00.
    site = _shop(closed="2026-08-16")
    assert closes_at(site, KOLKATA, _at(KOLKATA, 2026, 8, 15, 20, 0)) == _at(
        KOLKATA, 2026, 8, 16, 0, 0
    )


def test_the_same_hours_in_kolkata_and_in_london_across_its_dst_change() -> None:
    # Sunday 2026-03-29: London's clocks go from 01:00 GMT to 02:00 BST; Kolkata's never move.
    hours = dict.fromkeys(SHOP_HOURS, "08:00-21:00")
    kolkata = make_site("k", "K", time_zone="Asia/Kolkata", hours=hours)
    london = make_site("l", "L", time_zone="Europe/London", hours=hours)
    saturday_noon_utc = _at(ZoneInfo("UTC"), 2026, 3, 28, 12, 0)
    # Saturday (GMT, UTC+0): London closes at 21:00 UTC; Kolkata (UTC+5:30) at 15:30 UTC.
    assert closes_at(london, LONDON, saturday_noon_utc) == _at(ZoneInfo("UTC"), 2026, 3, 28, 21)
    assert closes_at(kolkata, KOLKATA, saturday_noon_utc) == _at(
        ZoneInfo("UTC"), 2026, 3, 28, 15, 30
    )
    # Sunday (BST, UTC+1): London opens at 07:00 UTC and closes at 20:00 UTC, 12 h later
    # by the wall clock and by the clock alike.
    saturday_night = _at(ZoneInfo("UTC"), 2026, 3, 28, 22, 0)
    assert opens_at(london, LONDON, saturday_night) == _at(ZoneInfo("UTC"), 2026, 3, 29, 7)
    assert closes_at(london, LONDON, _at(ZoneInfo("UTC"), 2026, 3, 29, 7)) == _at(
        ZoneInfo("UTC"), 2026, 3, 29, 20
    )
    # Kolkata's opening on that Sunday is the same 13 hours, 02:30 to 15:30 UTC.
    assert opens_at(kolkata, KOLKATA, saturday_night) == _at(ZoneInfo("UTC"), 2026, 3, 29, 2, 30)


@settings(max_examples=300, deadline=None)
@given(
    minute=st.integers(0, 14 * 24 * 60 - 1),
    tz=st.sampled_from([KOLKATA, LONDON]),
)
def test_opening_and_closing_agree_with_is_open(minute: int, tz: ZoneInfo) -> None:
    """Around a fortnight spanning London's clock change: the moments found are the edges."""
    site = _shop(time_zone=str(tz), closed="2026-03-31")
    now = _at(tz, 2026, 3, 23) + minute * 60
    if is_open(site, tz, now):
        closing = closes_at(site, tz, now)
        assert closing is not None
        assert closing > now
        assert is_open(site, tz, closing - 60)
        assert not is_open(site, tz, closing)
        assert opens_at(site, tz, now) is None
    else:
        opening = opens_at(site, tz, now)
        assert opening is not None
        assert opening > now
        assert is_open(site, tz, opening)
        assert not is_open(site, tz, opening - 60)
        assert closes_at(site, tz, now) is None


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _daily(hours: str, tz: ZoneInfo = BERLIN) -> Site:
    return make_site("x", "X", time_zone=str(tz), hours=dict.fromkeys(WEEKDAYS, hours))


def test_a_closing_in_the_skipped_hour_is_when_the_clock_skips_it() -> None:
    # 2026-03-29 in Berlin: 02:30 never happens; the site stops at 03:00 CEST (01:00 UTC).
    site = _daily("00:00-02:30")
    now = _utc("2026-03-29 00:50")  # 01:50 CET: open
    assert is_open(site, BERLIN, now)
    assert not is_open(site, BERLIN, _utc("2026-03-29 01:00"))
    assert closes_at(site, BERLIN, now) == _utc("2026-03-29 01:00")


def test_an_opening_in_the_skipped_hour_is_when_the_clock_skips_it() -> None:
    site = _daily("02:30-20:00")
    now = _utc("2026-03-29 00:30")  # 01:30 CET: closed
    assert is_open(site, BERLIN, _utc("2026-03-29 01:00"))  # 03:00 CEST
    assert opens_at(site, BERLIN, now) == _utc("2026-03-29 01:00")


def test_a_closing_in_the_repeated_hour_is_its_first_showing() -> None:
    # 2026-10-25 in Berlin: 02:00-03:00 is shown twice; 02:30 is 02:30 CEST (00:30 UTC),
    # and the second 02:00-02:30 (CET) does not reopen the site.
    site = _daily("00:00-02:30")
    assert closes_at(site, BERLIN, _utc("2026-10-25 00:10")) == _utc("2026-10-25 00:30")
    again = _utc("2026-10-25 01:10")  # 02:10 CET, the second time round
    assert not is_open(site, BERLIN, again)
    assert closes_at(site, BERLIN, again) is None
    assert opens_at(site, BERLIN, _utc("2026-10-25 00:40")) == _utc("2026-10-25 23:00")


def test_a_price_band_follows_the_same_rule_as_the_hours() -> None:
    band = PriceBand(Span(2 * 60, 2 * 60 + 30), 70)  # 02:00-02:30
    assert band_at([band], BERLIN, _utc("2026-10-25 00:10")) == band  # 02:10 CEST
    assert band_at([band], BERLIN, _utc("2026-10-25 01:10")) is None  # 02:10 CET
    assert band_at([band], BERLIN, _utc("2026-03-29 00:59")) is None  # 01:59 CET, no 02:xx


_QUARTERS = st.integers(0, 24 * 4).map(lambda quarter: quarter * 15)


@st.composite
def _hours(draw: st.DrawFn) -> str:
    """One or two spans a day, their ends on the quarter hours (many in 01:00-03:00)."""
    edges = sorted(draw(st.sets(_QUARTERS | st.sampled_from([60, 120, 150, 180]), max_size=4)))
    spans = [Span(a, b) for a, b in zip(edges[::2], edges[1::2], strict=False) if a < b]
    return ", ".join(str(span) for span in spans)


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    tz=st.sampled_from(list(CLOCK_CHANGES)),
    hours=_hours(),
    offset_s=st.integers(-36 * 3600, 36 * 3600),
)
def test_around_clock_changes_the_edges_agree_with_is_open(
    data: st.DataObject, tz: ZoneInfo, hours: str, offset_s: int
) -> None:
    """Any hours, any moment within a day and a half of a clock change: a closing is after
    now and the site is open until it and not at it; an opening likewise."""
    site = _daily(hours, tz)
    now = _utc(data.draw(st.sampled_from(CLOCK_CHANGES[tz]))) + offset_s
    if is_open(site, tz, now):
        assert opens_at(site, tz, now) is None
        closing = closes_at(site, tz, now)
        if closing is not None:  # None: open around the clock
            assert closing > now
            assert is_open(site, tz, max(now, closing - 1))
            assert not is_open(site, tz, closing)
    else:
        assert closes_at(site, tz, now) is None
        opening = opens_at(site, tz, now)
        if opening is not None:  # None: never open
            assert opening > now
            assert is_open(site, tz, opening)
            assert not is_open(site, tz, max(now, opening - 1))


@pytest.mark.parametrize(
    ("changes", "field", "key"),
    [
        ({"site_id": "a site"}, "site_id", "invalid_id"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "invalid_time_zone"),
        # Not places: the system's own setting, and tzdata's placeholder zone.
        ({"time_zone": "localtime"}, "time_zone", "invalid_time_zone"),
        ({"time_zone": "Factory"}, "time_zone", "invalid_time_zone"),
        ({"hours": {"mon": "8-13"}}, "mon", "invalid_hours"),
        ({"hours": {"tue": "21:00-08:00"}}, "tue", "hours_backwards"),
        ({"hours": {"wed": "08:00-13:00, 12:00-14:00"}}, "wed", "hours_overlap"),
        ({"hours": {"sun": "00:00-24:01"}}, "sun", "invalid_hours"),
        ({"closed_dates": "2026-02-30"}, "closed_dates", "invalid_date"),
        ({"load_cap_w": 0}, "load_cap_kw", "invalid_load_cap"),
        ({"load_cap_w": 5000, "rated_w": [3300, 7400]}, "load_cap_kw", "cap_below_bay"),
    ],
)
def test_bad_site_input_names_its_field(changes: dict[str, object], field: str, key: str) -> None:
    args: dict[str, object] = {"site_id": "shop", "name": "Shop"} | changes
    with pytest.raises(CatalogError) as caught:
        make_site(**args)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.key) == (field, key)


def test_a_bay_above_the_site_cap_is_refused() -> None:
    site = make_site("shop", "Shop", load_cap_w=5000)
    check_bay_power(site, 5000)
    check_bay_power(default_site("Account"), 22000)  # no cap
    with pytest.raises(CatalogError) as caught:
        check_bay_power(site, 5001)
    assert (caught.value.field, caught.value.key) == ("rated_w", "above_site_cap")


def test_a_site_is_stored_as_the_form_s_text_and_read_back() -> None:
    site = make_site(
        "shop",
        "Shop",
        address="MG Road",
        time_zone="Asia/Kolkata",
        hours=SHOP_HOURS | {"sun": ""},
        closed_dates="2026-10-20, 2026-08-15",
        load_cap_w=5000,
        sell_past_closing=True,
    )
    data = site_to_data(site)
    assert data["hours"]["mon"] == "08:00-13:00, 14:00-21:00"
    assert data["hours"]["sun"] == ""
    assert data["closed_dates"] == ["2026-08-15", "2026-10-20"]
    assert site_from_data(data) == site
    assert site_to_data(default_site("Account")) == {
        "site_id": DEFAULT_SITE_ID,
        "name": "Account",
        "address": "",
        "time_zone": None,
        "hours": dict.fromkeys(SHOP_HOURS, "00:00-24:00"),
        "closed_dates": [],
        "load_cap_w": None,
        "sell_past_closing": False,
    }


def test_the_time_zones_offered_are_places_only() -> None:
    offered = time_zones()
    assert {"Asia/Kolkata", "Europe/Berlin", "UTC"} <= set(offered)
    assert not {"localtime", "Factory", "posixrules"} & set(offered)
    assert not [name for name in offered if name.startswith(("posix/", "right/"))]


def test_a_stored_zone_that_no_longer_loads_runs_on_home_assistant_s() -> None:
    lost = Site("shop", "Shop", time_zone="Atlantis/Poseidonia")
    own = Site("shop", "Shop", time_zone="Europe/Berlin")
    zones = load_zones([lost, own], "Asia/Kolkata")
    assert zones.lost(lost)
    assert zones.of(lost) == KOLKATA  # not UTC
    assert zones.on_home(lost)
    assert not zones.lost(Site("shop", "Shop"))  # none of its own: HA's, nothing lost
    assert zones.of(own) == BERLIN
    assert not zones.on_home(own)
    assert load_zones([], "Atlantis/Poseidonia").home == ZoneInfo("UTC")
