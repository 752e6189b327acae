"""Who holds a bay while paying: the rule, derived from the open payment links.

Plain Python, no Home Assistant imports; time is passed in. When a customer taps Pay on a
free bay, the link made for them (intent ``HOLD``) holds the bay until it is paid, expires
(``expire_by``, the bay's hold time) or is cancelled. Nothing else is stored: the ledger keeps
open links in its working set and in the database, so a hold survives a restart with its link.

A hold costs nothing to take, so it is rationed (``HoldGuard``): a bay is held unpaid at most
``UNPAID_HOLD_S`` of any ``UNPAID_WINDOW_S`` (a hold is cut to what is left), and after a few
holds in a row end unpaid within a window, the bay's page sells without holding (the first
payment starts, a later one is refunded) until the bay serves a session or the window has
passed; and a bay's pages ask Razorpay for only so many links in a while, whatever they are
for (a running session's own page has a budget of its own).

While a bay is held, other customers' pages sell nothing ("someone is paying"), and a
payment for the bay that is not the holder's (a static UPI QR code, an owner's link, a link
cancelled or expired before someone else took the hold) is refused as ``bay_busy``, as a
payment while another session runs is (``session_rules.decide_paid``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from .intents import HOLD
from .records import LinkRecord

# Holds in a row that may end unpaid (cancelled, expired) within the window before a bay
# stops holding: until it serves a session, or fewer than these ended within the window.
UNPAID_HOLDS = 3
UNPAID_WINDOW_S = 3600
# Of any window, a bay is held unpaid at most this long (however many holds, however long
# each): a hold is cut to what is left, and none is taken when less than the shortest is.
UNPAID_HOLD_S = 30 * 60
# What a link lives beyond its hold; and the shortest hold, as Razorpay's shortest link
# (15 minutes after the request reaches it) allows.
LINK_MARGIN_S = 60
MIN_HOLD_S = 15 * 60
# Links a bay's page may make in ``LINK_WINDOW_S`` (each is a call to Razorpay's API).
LINKS_PER_WINDOW = 10
LINK_WINDOW_S = 600
# Of those, what one client (``pages_budget.client_of``: an address or an IPv6 /56) may ask
# for one bay: a script from one address cannot spend the bay's whole budget. The cloudhook's
# requests have no client to tell apart: they spend only the bay's budget.
LINKS_PER_CLIENT = 3


@dataclass(frozen=True, slots=True)
class Hold:
    """A bay held for the customer of one link."""

    link_id: str
    session_id: str
    until: int


def _holding(links: Iterable[LinkRecord], bay_id: str, now: float) -> list[LinkRecord]:
    """Open links made by a bay page that said "free", oldest first."""
    held = [
        link
        for link in links
        if link.bay_id == bay_id
        and link.intent == HOLD
        and link.status == "created"
        and link.payment_id is None
        and link.expire_by > now
    ]
    return sorted(held, key=lambda link: link.created_at)


def hold_of(links: Iterable[LinkRecord], bay_id: str, now: float) -> Hold | None:
    """The hold on a bay now, if any."""
    held = _holding(links, bay_id, now)
    if not held:
        return None
    return Hold(held[0].link_id, held[0].reference_id, held[0].expire_by)


def held_for_another(links: Iterable[LinkRecord], bay_id: str, session_id: str, now: float) -> bool:
    """Whether someone other than the payer of ``session_id`` holds the bay now."""
    return any(link.reference_id != session_id for link in _holding(links, bay_id, now))


class HoldGuard:
    """Rations holds and links per bay; kept in memory (a restart forgives).

    A hold counts as unpaid until the bay serves a session after it: ``served`` is the bay's
    count of sessions served, which only a payment (or the owner) moves. Unpaid holds are
    rationed twice: by their number in a row (``UNPAID_HOLDS``) and by the time they held the
    bay (``UNPAID_HOLD_S`` of any ``UNPAID_WINDOW_S``), so that neither quick cancels nor
    links left to expire keep a bay "someone is paying" for long.
    """

    def __init__(self) -> None:
        self._holds: dict[str, list[_HeldSpan]] = {}
        self._links: dict[str, deque[float]] = {}

    def _unpaid(self, bay_id: str, served: int, now: float) -> list[_HeldSpan]:
        """The bay's unpaid holds that ended (or end) less than a window ago."""
        spans = [s for s in self._holds.get(bay_id, []) if now - s.until < UNPAID_WINDOW_S]
        self._holds[bay_id] = spans
        return [s for s in spans if s.served == served]

    def hold_seconds(self, bay_id: str, served: int, now: float, hold_s: int) -> int | None:
        """How long a new link may hold the bay (``hold_s`` or less), or None: not at all.

        Not after ``UNPAID_HOLDS`` unpaid in a row; otherwise cut to what is left of the
        bay's unpaid time in the last window (the link lives ``LINK_MARGIN_S`` longer than
        its hold). Whatever is held now then keeps every window within ``UNPAID_HOLD_S``:
        the time held in the window before now, plus the new hold, is within it.
        """
        unpaid = self._unpaid(bay_id, served, now)
        if len(unpaid) >= UNPAID_HOLDS:
            return None
        held = sum(s.overlap(now - UNPAID_WINDOW_S, now) for s in unpaid)
        left = int(UNPAID_HOLD_S - held) - LINK_MARGIN_S
        return min(hold_s, left) if left >= MIN_HOLD_S else None

    def held(self, bay_id: str, link_id: str, *, served: int, now: float, until: float) -> None:
        """A link holds the bay from ``now`` until ``until`` (its expiry)."""
        self._holds.setdefault(bay_id, []).append(_HeldSpan(link_id, now, until, served))

    def released(self, link_id: str, now: float) -> None:
        """A hold ended before its link expired (cancelled): its time stops counting."""
        for spans in self._holds.values():
            for span in spans:
                if span.link_id == link_id and span.until > now:
                    span.until = now

    def may_make_link(
        self, bay_id: str, now: float, session_id: str | None = None, client: str | None = None
    ) -> bool:
        """Whether a link may be made now: the bay's budget (and ``client``'s), or a session's.

        A running session's own page (``session_id``) never spends the bay's budget, so a
        script tapping the bay's page cannot keep its customer from adding time; it has a
        budget of the same size of its own, which its cancelled links count against. A client
        known by its address (``client``) may ask ``LINKS_PER_CLIENT`` of the bay's.
        """
        return all(
            len(self._recent(key, now)) < most for key, most in _budgets(bay_id, session_id, client)
        )

    def spend(
        self, bay_id: str, now: float, session_id: str | None = None, client: str | None = None
    ) -> None:
        """A link is asked of Razorpay: counted whether Razorpay makes it or not."""
        # Clients seen no more within the window are forgotten (one key per address otherwise).
        for key in [k for k in self._links if not self._recent(k, now)]:
            del self._links[key]
        for key, _most in _budgets(bay_id, session_id, client):
            self._links.setdefault(key, deque()).append(now)

    def _recent(self, key: str, now: float) -> deque[float]:
        """The links asked within the window under one budget ``key``."""
        made = self._links.get(key, deque())
        while made and now - made[0] >= LINK_WINDOW_S:
            made.popleft()
        return made


def _budgets(bay_id: str, session_id: str | None, client: str | None) -> list[tuple[str, int]]:
    """The budgets a link spends, and their sizes: a session's own, or the bay's and a client's."""
    if session_id:
        return [(f"{bay_id}\n{session_id}", LINKS_PER_WINDOW)]
    if client is None:
        return [(bay_id, LINKS_PER_WINDOW)]
    return [(bay_id, LINKS_PER_WINDOW), (f"{bay_id}\nclient:{client}", LINKS_PER_CLIENT)]


@dataclass(slots=True)
class _HeldSpan:
    """The time one link held a bay, and the bay's sessions served when it began."""

    link_id: str
    since: float
    until: float
    served: int

    def overlap(self, start: float, end: float) -> float:
        """Seconds of this hold between ``start`` and ``end``."""
        return max(min(self.until, end) - max(self.since, start), 0.0)
