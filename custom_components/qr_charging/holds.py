"""Who holds a bay while paying: the rule, derived from the open payment links.

Plain Python, no Home Assistant imports; time is passed in. When a customer taps Pay on a
free bay, the link made for them holds the bay until it is paid, expires (``expire_by``,
the bay's hold time) or is cancelled. Nothing else is stored: the ledger keeps open links
in its working set and in the database, so a hold survives a restart with its link.

While a bay is held, other customers' pages sell nothing ("someone is paying"), and a
payment for the bay that is not the holder's (a static UPI QR code, an owner's link, a link
cancelled or expired before someone else took the hold) is refused as ``bay_busy``, as a
payment while another session runs is (``session_rules.decide_paid``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .intents import START
from .ledger import LinkRecord


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
        and link.intent == START
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
    """Whether someone other than the payer of ``session_id`` holds the bay now.

    A payer whose own link still holds the bay is never refused for another open hold (two
    holds at once exist only from links made before 0.3, when pages reused a bay's links):
    the first of them to pay starts, the next finds the bay charging.
    """
    held = {link.reference_id for link in _holding(links, bay_id, now)}
    return bool(held) and session_id not in held
