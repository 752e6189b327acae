"""Who holds a bay while paying: the rule, derived from the open payment links.

Plain Python, no Home Assistant imports; time is passed in. When a customer taps Pay on a
free bay, the link made for them (intent ``HOLD``) holds the bay until it is paid, expires
(``expire_by``, the bay's hold time) or is cancelled. Nothing else is stored: the ledger keeps
open links in its working set and in the database, so a hold survives a restart with its link.

A hold costs nothing to take, so it is rationed (``HoldGuard``): after a few holds in a row
end unpaid, the bay's page sells without holding (the first payment starts, a later one is
refunded) until the bay serves a session or an hour passes; and a bay's page makes only so
many links in a while, whatever they are for.

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

# Holds in a row that may end unpaid (cancelled, expired) before a bay stops holding.
UNPAID_HOLDS = 3
UNPAID_WINDOW_S = 3600
# Links a bay's page may make in ``LINK_WINDOW_S`` (each is a call to Razorpay's API).
LINKS_PER_WINDOW = 10
LINK_WINDOW_S = 600


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
    count of sessions served, which only a payment (or the owner) moves.
    """

    def __init__(self) -> None:
        self._holds: dict[str, deque[tuple[float, int]]] = {}
        self._links: dict[str, deque[float]] = {}

    def may_hold(self, bay_id: str, served: int, now: float) -> bool:
        """Whether a new link may hold the bay: not after ``UNPAID_HOLDS`` unpaid in a row."""
        holds = self._holds.get(bay_id, deque())
        unpaid = [at for at, count in holds if count == served and now - at < UNPAID_WINDOW_S]
        return len(unpaid) < UNPAID_HOLDS

    def may_make_link(self, bay_id: str, now: float) -> bool:
        """Whether the bay's page may make another link now."""
        made = self._links.get(bay_id, deque())
        while made and now - made[0] >= LINK_WINDOW_S:
            made.popleft()
        return len(made) < LINKS_PER_WINDOW

    def made_link(self, bay_id: str, *, held: bool, served: int, now: float) -> None:
        """A page made a link for the bay (holding it, or not)."""
        self._links.setdefault(bay_id, deque()).append(now)
        if held:
            holds = self._holds.setdefault(bay_id, deque(maxlen=UNPAID_HOLDS))
            holds.append((now, served))
