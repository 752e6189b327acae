"""What the customer's pages say of a bay's site: closed, its load cap full, sales to closing.

Plain Python, no Home Assistant imports; time is passed in. The page never sells what the
money rule (``site_gate.refusal``, ``session_rules.settle_paid``) would refund: nothing while
the site is closed or its load cap has no room for the bay, and only sessions that end by
closing (no grace on the page: the grace is for a link paid late).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from .catalog import Plan
from .ledger import Ledger
from .site_gate import POWERED_STATES, REFUSE_CLOSED, REFUSE_LOAD_CAP, SiteGate, bay_refusal

# Why a page sells nothing at a bay of its site (``pages_model.BayState`` has the same values).
CLOSED = REFUSE_CLOSED
FULL = "full"


@dataclass(frozen=True, slots=True)
class SiteView:
    """The bay's site as its page shows it now.

    ``opens``: when a closed site opens next (local ``HH:MM``, and ``dd/mm`` when not today;
    None: closed for good). ``closes``: the closing a sale is cut to, in the same shape (a
    closing days away names its date; None: open around the clock, or sales allowed past
    closing). ``free_min``: minutes until enough of the site's powered bays are due to end
    for this bay to fit, rounded up, at least 1 (full only; ``SiteGate.next_free_s``; None
    when that is at or after the site's closing, or never). ``in_use_kw``:
    the power in use (measured where every powered bay is metered, else rated), ``cap_kw`` the
    cap, as the page shows them ("3.2", "5").
    """

    closed: bool = False
    full: bool = False
    opens: tuple[str, str | None] | None = None
    closes: tuple[str, str | None] | None = None
    free_min: int | None = None
    in_use_kw: str = "0"
    cap_kw: str | None = None
    measured: bool = False


def site_view(
    gate: SiteGate,
    ledger: Ledger,
    bay_id: str,
    now: float,
    measured_w: dict[str, float | None] | None = None,
) -> SiteView:
    """What the bay's page says of its site now; ``measured_w``: each metered bay's power."""
    tz = gate.tz
    why = sale_refusal(gate, ledger, bay_id, now, starting=True)
    if why == CLOSED:
        return SiteView(closed=True, opens=_when(gate.opens_at(now), now, tz))
    closes = None if gate.site.sell_past_closing else _when(gate.closes_at(now), now, tz)
    if gate.site.load_cap_w is None:
        return SiteView(closes=closes)
    readings = measured_w or {}
    powered = [
        bay
        for bay in gate.rated_w
        if (running := ledger.running_session(bay)) is not None and running.state in POWERED_STATES
    ]
    # Measured only when every powered bay's meter reports: else the rated powers.
    measured = bool(powered) and all(readings.get(bay) is not None for bay in powered)
    in_use = sum(readings[b] or 0.0 for b in powered) if measured else gate.powered_w(ledger)
    full = why == FULL
    free = gate.next_free_s(ledger, now, bay_id) if full else None
    if free is not None and (closing := gate.closes_at(now)) is not None and now + free >= closing:
        free = None  # nothing is sold from the closing on: no time rather than a wrong one
    return SiteView(
        full=full,
        closes=closes,
        # An overdue end (its off not yet confirmed) is still at least a minute away.
        free_min=max(math.ceil(free / 60), 1) if free is not None else None,
        in_use_kw=kw(in_use),
        cap_kw=kw(gate.site.load_cap_w),
        measured=measured,
    )


def _when(moment: float | None, now: float, tz: tzinfo) -> tuple[str, str | None] | None:
    """A moment as the page shows it: local ``HH:MM``, and ``dd/mm`` when not today."""
    if moment is None:
        return None
    at, today = datetime.fromtimestamp(moment, tz), datetime.fromtimestamp(now, tz)
    return at.strftime("%H:%M"), None if at.date() == today.date() else at.strftime("%d/%m")


def sale_refusal(
    gate: SiteGate | None, ledger: Ledger, bay_id: str, now: float, *, starting: bool
) -> str | None:
    """Why nothing is sold at the bay now: ``CLOSED``, or ``FULL`` for a start; None: sold.

    The money rule's (``site_gate.refusal``) for a sale: the owner's sessions never come here.
    """
    why = bay_refusal(gate, ledger, bay_id, now, starting=starting)
    return FULL if why == REFUSE_LOAD_CAP else why


def kw(watts: float) -> str:
    """Watts as the page shows kilowatts: one decimal, none when whole ("3.2", "5")."""
    text = f"{watts / 1000:.1f}"
    return text.removesuffix(".0")


def sale_limit_s(gate: SiteGate | None, limit_s: int, now: float) -> int:
    """The longest session a page sells now: to closing (no grace), unless allowed past."""
    return limit_s if gate is None else gate.sale_limit_s(limit_s, now)


def offered(plans: Iterable[Plan], limit_s: int) -> list[Plan]:
    """The plans that still sell something within ``limit_s``.

    A fixed plan too long is not offered; a rate plan while its shortest fits (its longest is
    cut on the page); a per-kWh plan while a minute fits (its time cap is cut to ``limit_s``).
    """
    return [
        plan
        for plan in plans
        if (plan.is_energy and limit_s >= 60)
        or (plan.is_rate and plan.min_minutes * 60 <= limit_s)
        or (not plan.is_energy and not plan.is_rate and plan.seconds <= limit_s)
    ]
