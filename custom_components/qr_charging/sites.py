"""Sites (issue #25): where bays are, when they sell, and the load they share. Plain Python.

A site has opening hours per weekday in its own time zone (wall-clock spans, ``00:00`` to ``24:00``;
a span ending at ``24:00`` that the next day continues from ``00:00`` is one opening across
midnight), closed dates, an optional load cap (W) and whether a sale may run past closing.
Every bay belongs to one site; bays added before sites are in ``DEFAULT_SITE_ID``.

Price bands by time of day (a plan's) are parsed here too: the same wall-clock spans.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from .catalog_errors import ID_PATTERN, CatalogError

DEFAULT_SITE_ID = "default"
DEFAULT_SITE_NAME = "Charging point"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
# How far ahead the next opening or closing is looked for (a site closed longer is "closed").
LOOKAHEAD_DAYS = 400
MIN_BAND_PERCENT = 1
MAX_BAND_PERCENT = 500
MAX_LOAD_CAP_W = 10_000_000
_SPAN = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_BAND = re.compile(r"(.+?)\s+(\d{1,3})\s*%\s*")


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """Minutes from local midnight: ``start`` < ``end`` ≤ 1440 (``24:00``)."""

    start: int
    end: int

    def __contains__(self, minute: float) -> bool:
        return self.start <= minute < self.end

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


@dataclass(frozen=True, slots=True)
class PriceBand:
    """A plan's price between two wall-clock times: ``percent`` of its base price."""

    span: Span
    percent: int

    def __str__(self) -> str:
        return f"{self.span} {self.percent}%"


ALL_DAY = (Span(0, DAY_MINUTES),)


@dataclass(frozen=True, slots=True)
class Site:
    """A place with bays: its hours, its time zone (None: Home Assistant's), its load cap."""

    site_id: str
    name: str
    address: str = ""
    time_zone: str | None = None
    # One tuple of spans per weekday, Monday first; an empty one is a closed day.
    hours: tuple[tuple[Span, ...], ...] = field(default=(ALL_DAY,) * 7)
    closed_dates: tuple[date, ...] = ()
    # The sanctioned load the site's bays share (W); None: no cap.
    load_cap_w: int | None = None
    # Whether a session may be sold that runs past closing time.
    sell_past_closing: bool = False

    def spans_on(self, day: date) -> tuple[Span, ...]:
        """The opening spans of one local date (none on a closed date)."""
        return () if day in self.closed_dates else self.hours[day.weekday()]

    @property
    def always_open(self) -> bool:
        """Open around the clock every day (then no closing or opening is ever announced)."""
        return not self.closed_dates and all(day == ALL_DAY for day in self.hours)


def parse_spans(field_name: str, text: str) -> tuple[Span, ...]:
    """``"08:00-13:00, 14:00-21:00"`` → spans, sorted; empty text → none. Bad input: error."""
    spans = sorted(_span(field_name, part) for part in text.split(",") if part.strip())
    _check_apart(field_name, spans, "hours_overlap")
    return tuple(spans)


def parse_bands(field_name: str, text: str) -> tuple[PriceBand, ...]:
    """``"09:00-16:00 70%, 18:00-22:00 120%"`` → price bands, sorted by start."""
    bands: list[PriceBand] = []
    for part in (p for p in text.split(",") if p.strip()):
        if (match := _BAND.fullmatch(part)) is None:
            raise CatalogError(field_name, "invalid_band")
        percent = int(match.group(2))
        if not MIN_BAND_PERCENT <= percent <= MAX_BAND_PERCENT:
            raise CatalogError(field_name, "invalid_band_percent")
        bands.append(PriceBand(_span(field_name, match.group(1)), percent))
    bands.sort(key=lambda band: band.span)
    _check_apart(field_name, [band.span for band in bands], "bands_overlap")
    return tuple(bands)


def format_spans(spans: Iterable[Span | PriceBand]) -> str:
    """The text a form shows for spans or bands (what ``parse_*`` reads back)."""
    return ", ".join(str(span) for span in spans)


def _span(field_name: str, text: str) -> Span:
    if (match := _SPAN.fullmatch(text)) is None:
        raise CatalogError(field_name, "invalid_hours")
    start_h, start_m, end_h, end_m = (int(group) for group in match.groups())
    start, end = _minute(field_name, start_h, start_m), _minute(field_name, end_h, end_m)
    if start >= end:
        raise CatalogError(field_name, "hours_backwards")
    return Span(start, end)


def _minute(field_name: str, hours: int, minutes: int) -> int:
    if minutes >= 60 or hours * 60 + minutes > DAY_MINUTES:
        raise CatalogError(field_name, "invalid_hours")
    return hours * 60 + minutes


def _check_apart(field_name: str, spans: Sequence[Span], key: str) -> None:
    for before, after in itertools.pairwise(spans):
        if after.start < before.end:
            raise CatalogError(field_name, key)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_dates(field_name: str, text: str) -> tuple[date, ...]:
    """``"2026-08-15, 2026-10-20"`` → closed dates, sorted and unique."""
    try:
        days = {date.fromisoformat(part.strip()) for part in text.split(",") if part.strip()}
    except ValueError as err:
        raise CatalogError(field_name, "invalid_date") from err
    return tuple(sorted(days))


# Names ``available_timezones`` may list that are no place's IANA zone: the system's own
# setting, the placeholder zone, the POSIX rules file (and its ``posix/``, ``right/`` copies).
_NOT_IANA = frozenset({"localtime", "Factory", "posixrules"})


@functools.cache
def time_zones() -> tuple[str, ...]:
    """The IANA time zone names, sorted; read from disk once (call it first off the loop)."""
    return tuple(
        sorted(
            name
            for name in available_timezones()
            if name not in _NOT_IANA and not name.startswith(("posix/", "right/"))
        )
    )


def check_time_zone(field_name: str, name: str | None) -> str | None:
    """A time zone's IANA name, or None (Home Assistant's)."""
    if not name:
        return None
    if name not in time_zones():
        raise CatalogError(field_name, "invalid_time_zone")
    return name


def make_site(
    site_id: str,
    name: str,
    *,
    address: str = "",
    time_zone: str | None = None,
    hours: Mapping[str, str] | None = None,
    closed_dates: str = "",
    load_cap_w: int | None = None,
    sell_past_closing: bool = False,
    rated_w: Iterable[int] = (),
) -> Site:
    """Validate and build a site from a form's text; ``rated_w``: its bays' rated powers.

    Fields are named as the form's: ``site_id``, ``time_zone``, each weekday (``mon``...),
    ``closed_dates``, ``load_cap_kw`` (a cap below one of its bays' rated power is refused).
    """
    if not ID_PATTERN.fullmatch(site_id):
        raise CatalogError("site_id", "invalid_id")
    week = hours or {}
    site = Site(
        site_id=site_id,
        name=name.strip() or site_id,
        address=address.strip(),
        time_zone=check_time_zone("time_zone", time_zone),
        hours=tuple(parse_spans(day, week.get(day, "00:00-24:00")) for day in WEEKDAYS),
        closed_dates=parse_dates("closed_dates", closed_dates),
        load_cap_w=load_cap_w,
        sell_past_closing=sell_past_closing,
    )
    if load_cap_w is not None and not 0 < load_cap_w <= MAX_LOAD_CAP_W:
        raise CatalogError("load_cap_kw", "invalid_load_cap")
    if load_cap_w is not None and any(watts > load_cap_w for watts in rated_w):
        raise CatalogError("load_cap_kw", "cap_below_bay")
    return site


def site_to_data(site: Site) -> dict[str, Any]:
    """A site as stored in its config subentry (times as the form's text)."""
    return {
        "site_id": site.site_id,
        "name": site.name,
        "address": site.address,
        "time_zone": site.time_zone,
        "hours": {day: format_spans(site.hours[i]) for i, day in enumerate(WEEKDAYS)},
        "closed_dates": [day.isoformat() for day in site.closed_dates],
        "load_cap_w": site.load_cap_w,
        "sell_past_closing": site.sell_past_closing,
    }


def site_from_data(data: Mapping[str, Any]) -> Site:
    """A site from its config subentry (written by ``site_to_data``)."""
    hours = data.get("hours") or {}
    return Site(
        site_id=data["site_id"],
        name=data["name"],
        address=data.get("address", ""),
        time_zone=data.get("time_zone"),
        hours=tuple(parse_spans(day, hours.get(day, "00:00-24:00")) for day in WEEKDAYS),
        closed_dates=tuple(date.fromisoformat(day) for day in data.get("closed_dates", ())),
        load_cap_w=data.get("load_cap_w"),
        sell_past_closing=bool(data.get("sell_past_closing", False)),
    )


def default_site(name: str = DEFAULT_SITE_NAME) -> Site:
    """The site an account's bays start in: open always, no cap, HA's time zone.

    Its name is shown to customers: not the account's title (its Razorpay key id).
    """
    return Site(site_id=DEFAULT_SITE_ID, name=name)


@dataclass(frozen=True, slots=True)
class Zones:
    """The sites' time zones and Home Assistant's, loaded once (``load_zones``).

    A site runs on Home Assistant's zone (``home``) when it names none, or one that no longer
    loads (``lost``).
    """

    home: ZoneInfo
    loaded: Mapping[str, ZoneInfo]

    def of(self, site: Site) -> ZoneInfo:
        """The site's time zone, else Home Assistant's."""
        return self.loaded.get(site.time_zone or "", self.home)

    def lost(self, site: Site) -> bool:
        """Whether the site names a time zone that did not load (tzdata without it)."""
        return site.time_zone is not None and site.time_zone not in self.loaded

    def on_home(self, site: Site) -> bool:
        """Whether the site runs on Home Assistant's time zone (none of its own, or one lost)."""
        return site.time_zone is None or self.lost(site)


def load_zones(sites: Iterable[Site], home: str) -> Zones:
    """Load each site's time zone and Home Assistant's (``home``; else UTC).

    It reads tzdata files: Home Assistant runs it in the executor, not on the event loop.
    """
    names = {site.time_zone for site in sites if site.time_zone}
    loaded = {name: tz for name in names if (tz := _load(name)) is not None}
    return Zones(_load(home) or ZoneInfo("UTC"), loaded)


def _load(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _local(tz: tzinfo, now: float) -> date:
    """The local date at ``now``."""
    return datetime.fromtimestamp(now, tz).date()


def _at(tz: tzinfo, day: date, minute: int) -> float:
    """The moment of a wall-clock minute of a local date (``24:00``: the next midnight).

    A wall time the clock skips (DST starts) is the first real moment after it: the change.
    A wall time the clock shows twice (DST ends) is its first showing. One rule for opening
    hours and price bands alike, so every answer here agrees with ``is_open``.
    """
    wall = datetime.combine(day, time(), tzinfo=tz) + timedelta(minutes=minute)
    first = wall.replace(fold=0).timestamp()
    if datetime.fromtimestamp(first, tz).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return first
    # Skipped: the change lies between the wall time read with the offset after it and the
    # one read with the offset before it; find it to the second.
    low, high = math.floor(wall.replace(fold=1).timestamp()), math.ceil(first)
    offset = datetime.fromtimestamp(high, tz).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == offset:
            high = middle
        else:
            low = middle
    return float(high)


def _moments(tz: tzinfo, day: date, span: Span) -> tuple[float, float]:
    """A span of a local date as moments (empty when it lies wholly in a skipped hour)."""
    return _at(tz, day, span.start), _at(tz, day, span.end)


def _openings(site: Site, tz: tzinfo, now: float) -> tuple[float, float | None] | None:
    """The opening ``now`` is in, else the next one: (start, end) moments; None: none ahead.

    Spans that meet (``…-24:00`` then ``00:00-…`` the next day) are one opening; its end is
    None when it runs past ``LOOKAHEAD_DAYS``. Every question about the hours asks this.
    """
    if site.always_open:
        return (now, None)
    day = _local(tz, now) - timedelta(days=1)
    start: float | None = None
    # The opening's end so far as a wall time (date, minute): its moment is found when needed,
    # so a week open around the clock costs no time zone arithmetic per day.
    end = (day, 0)
    for _ in range(LOOKAHEAD_DAYS):
        for span in site.spans_on(day):
            if start is None or span.start != 0 or end != (day, 0):
                begins, ends = _moments(tz, day, span)
                if begins >= ends:
                    continue
                if start is not None and begins > (until := _at(tz, *end)):
                    if until > now:
                        return start, until
                    start = None
                if start is None:
                    start = begins
            end = (day + timedelta(days=span.end // DAY_MINUTES), span.end % DAY_MINUTES)
        day += timedelta(days=1)
    if start is None or (until := _at(tz, *end)) <= now:
        return None
    return start, None if end >= (day, 0) else until


def is_open(site: Site, tz: tzinfo, now: float) -> bool:
    """Whether the site sells at ``now``."""
    opening = _openings(site, tz, now)
    return opening is not None and opening[0] <= now


def closes_at(site: Site, tz: tzinfo, now: float) -> float | None:
    """When the opening the site is in at ``now`` ends (after it); None: closed, or never.

    Spans that meet (``…-24:00`` then ``00:00-…`` the next day) are one opening.
    """
    opening = _openings(site, tz, now)
    return opening[1] if opening is not None and opening[0] <= now else None


def opens_at(site: Site, tz: tzinfo, now: float) -> float | None:
    """When the site next opens (after ``now``); None: open now, or closed for good."""
    opening = _openings(site, tz, now)
    return opening[0] if opening is not None and opening[0] > now else None


def band_at(bands: Iterable[PriceBand], tz: tzinfo, now: float) -> PriceBand | None:
    """The price band a sale at ``now`` falls in (its local date's wall clock, as hours)."""
    day = _local(tz, now)
    return next(
        (band for band in bands if (m := _moments(tz, day, band.span))[0] <= now < m[1]), None
    )


def banded_paise(paise: int, band: PriceBand | None) -> int:
    """A base price in a band: whole paise, half a paisa rounded up."""
    return paise if band is None else (paise * band.percent + 50) // 100


def check_bay_power(site: Site, rated_w: int) -> None:
    """A bay of ``rated_w`` may be on ``site`` only when it alone fits under the site's cap."""
    if site.load_cap_w is not None and rated_w > site.load_cap_w:
        raise CatalogError("rated_w", "above_site_cap")


def fits_under_cap(site: Site, powered_w: int, rated_w: int) -> bool:
    """Whether a bay of ``rated_w`` may be powered beside ``powered_w`` already on."""
    return site.load_cap_w is None or powered_w + rated_w <= site.load_cap_w
