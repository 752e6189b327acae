"""What a bay's site allows a paid session when it is decided. Plain Python.

Decided in the change of the books that would power the bay (``session_rules.settle_paid``),
so of two payments for the last free power at a site exactly one starts: the second change
sees the first one's session starting.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from .catalog import Bay
from .ledger import Ledger
from .records import LinkRecord, SessionRecord, SessionState
from .sites import Site, Zones, closes_at, fits_under_cap, is_open, opens_at

# What a site's load counts: bays that are given power or are powered.
POWERED_STATES = frozenset({SessionState.STARTING, SessionState.ACTIVE})
REFUSE_CLOSED = "closed"
REFUSE_LOAD_CAP = "load_cap"


@dataclass(frozen=True, slots=True)
class SiteGate:
    """A bay's site, its time zone, and the rated power (W) of each of the site's bays."""

    site: Site
    tz: ZoneInfo
    rated_w: Mapping[str, int]

    def is_open(self, now: float) -> bool:
        """Whether the site sells now."""
        return is_open(self.site, self.tz, now)

    def closes_at(self, now: float) -> float | None:
        """When the present opening ends (None: closed now, or open around the clock)."""
        return closes_at(self.site, self.tz, now)

    def opens_at(self, now: float) -> float | None:
        """When the site opens next (None: open now, or closed for good)."""
        return opens_at(self.site, self.tz, now)

    def sale_limit_s(self, limit_s: int, now: float, *, grace_s: float = 0) -> int:
        """The longest session sold now: to closing (plus ``grace_s``), unless allowed past."""
        if self.site.sell_past_closing or (closing := self.closes_at(now)) is None:
            return limit_s
        return max(0, min(limit_s, math.floor(closing + grace_s - now)))

    def powered(self, ledger: Ledger, *, besides: str | None = None) -> list[str]:
        """The site's bays that are powered or being powered."""
        on = {session.bay_id for session in _powered(ledger)}
        return [bay_id for bay_id in self.rated_w if bay_id != besides and bay_id in on]

    def powered_w(self, ledger: Ledger, *, besides: str | None = None) -> int:
        """The rated power of the site's bays that are powered or being powered."""
        return sum(self.rated_w[bay_id] for bay_id in self.powered(ledger, besides=besides))

    def fits(self, ledger: Ledger, bay_id: str) -> bool:
        """Whether ``bay_id`` may be powered beside the site's other powered bays."""
        if self.site.load_cap_w is None:
            return True
        powered = self.powered_w(ledger, besides=bay_id)
        return fits_under_cap(self.site, powered, self.rated_w.get(bay_id, 0))

    def next_edge(self, now: float) -> float | None:
        """The site's next opening or closing after ``now`` (None: open around the clock)."""
        return self.closes_at(now) if self.is_open(now) else self.opens_at(now)

    def next_free_s(self, ledger: Ledger, now: float, bay_id: str) -> float | None:
        """Seconds until enough of the site's powered bays are due to end for ``bay_id`` to fit.

        The running sessions are walked by deadline, each end freeing its bay's rated power,
        until the waiting bay fits under the cap (0: it fits now; None: it never does, or a
        session it waits for has no deadline).
        """
        if self.site.load_cap_w is None:
            return 0.0
        ends = {
            s.bay_id: math.inf if s.until is None else s.until
            for s in _powered(ledger)
            if s.bay_id in self.rated_w and s.bay_id != bay_id
        }
        powered, want = sum(self.rated_w[b] for b in ends), self.rated_w.get(bay_id, 0)
        for end, freed in [(now, 0), *sorted((u, self.rated_w[b]) for b, u in ends.items())]:
            powered -= freed
            if fits_under_cap(self.site, powered, want):
                return None if end == math.inf else max(end - now, 0.0)
        return None


def _powered(ledger: Ledger) -> Iterator[SessionRecord]:
    """The sessions that power a bay or are being given power (the working set: running)."""
    return (s for s in ledger.sessions.values() if s.state in POWERED_STATES)


def refusal(
    gate: SiteGate | None, ledger: Ledger, session: SessionRecord, now: float, *, starting: bool
) -> str | None:
    """Why a site refuses a new session (a start, or a top-up of its bay's running one)."""
    return bay_refusal(gate, ledger, session.bay_id, now, starting=starting, owner=session.owner)


def bay_refusal(
    gate: SiteGate | None,
    ledger: Ledger,
    bay_id: str,
    now: float,
    *,
    starting: bool,
    owner: bool = False,
) -> str | None:
    """Why a site sells a bay nothing now; None: allowed.

    Closed (not for the owner's own sessions), or a start over its load cap: the one check of
    the money rule (``refusal``) and of the pages and the action (``pages_site.sale_refusal``).
    """
    if gate is None:
        return None
    if not owner and not gate.is_open(now):
        return REFUSE_CLOSED
    return None if not starting or gate.fits(ledger, bay_id) else REFUSE_LOAD_CAP


def paid_grace_s(session: SessionRecord, link: LinkRecord | None, now: float) -> float | None:
    """How long past closing a paid session decided at ``now`` may run (None: unlimited).

    The owner's own sessions are never cut. The page and the action sell a link only what
    ends by closing when the link is made, so started at ``now`` it ends at most the time since
    then past closing: a link paid in its last second and decided later (a late webhook, a
    retry, a restart, reconcile) still starts. A static QR payment has no link: its amount is
    the customer's, so nothing past closing.
    """
    if session.owner:
        return None
    return 0.0 if link is None else max(now - link.created_at, 0.0)


def gates_by_site(
    sites: Mapping[str, Site], bays: Mapping[str, Bay], zones: Zones
) -> dict[str, SiteGate]:
    """Each site's gate (its zone from ``zones``, loaded beforehand), a site without bays too."""
    return {
        site.site_id: SiteGate(
            site,
            zones.of(site),
            {b.bay_id: b.rated_w for b in bays.values() if b.site_id == site.site_id},
        )
        for site in sites.values()
    }


def bay_gates(by_site: Mapping[str, SiteGate]) -> dict[str, SiteGate]:
    """Each bay's gate, from each site's; none for a bay whose site is gone."""
    return {bay_id: gate for gate in by_site.values() for bay_id in gate.rated_w}
