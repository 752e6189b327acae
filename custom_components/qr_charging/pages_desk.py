"""The Pay decision of the customer's pages: which link a tap gets, or why none.

Plain Python, no Home Assistant imports; the clock is passed in. One decision at a time per
bay (of a crowd tapping Pay on a free bay, one gets the hold); a free bay is held by the link
made for its first tap (``holds``), rationed by the ``HoldGuard``; an open link for the same
purchase is reused (reuse is also the rate limit), within each bay's link budgets. The desk
remembers which page made each open link (its ticket's nonce, or ``session:<id>`` for a
running session's own page): only that page is given the link's session page and cancel key.
The pages (``pages.py``) turn what it decides into HTTP answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from .books import Books
from .const import LOGGER
from .holds import HoldGuard, hold_of
from .intents import HOLD, START
from .pages_model import Purchase, reusable_link, too_many_open
from .pages_site import CLOSED, FULL, sale_refusal
from .records import LinkRecord
from .site_gate import SiteGate

# Why a tap gets no link (the bay page's ``error_<key>`` texts).
HELD = "held"  # another customer's page holds the bay
TRY_LATER = "try_later"  # Razorpay is being left alone after failing
BUSY = "busy"  # the bay's (or the session's) link budget is spent
SITE_REFUSALS = (CLOSED, FULL)  # the bay's site is closed, or its load cap has no room


def _wall_clock() -> float:
    """``time.time`` looked up at each call (not bound once): a frozen clock is the desk's too."""
    return time.time()


class Refused(Exception):
    """No link for a Pay tap; ``key`` says why (``HELD``, ``TRY_LATER``, ``BUSY``, a site's)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class Paid(Exception):
    """The asking page's earlier link was paid meanwhile: show its session (``session_id``)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(session_id)
        self.session_id = session_id


class _Created(Protocol):
    @property
    def link(self) -> LinkRecord: ...


class LinkMaker(Protocol):
    """What makes and closes the account's payment links (``payments.Payments``)."""

    async def async_create_link(  # noqa: D102 - as Payments.async_create_link
        self,
        bay_id: str,
        plan_code: str | None,
        *,
        minutes: int | None = None,
        paise: int | None = None,
        intent: str | None = None,
        callback: Callable[[str], str] | None = None,
        hold_s: int | None = None,
        site_checked: bool = False,
    ) -> _Created: ...

    async def async_cancel_link(self, link: LinkRecord) -> str:  # noqa: D102 - as Payments'
        ...


@dataclass(frozen=True, slots=True)
class PayTap:
    """A Pay button tapped: for what, on which bay, by which page.

    ``intent`` is what the page told the customer (``intents``), ``served`` the bay's count of
    sessions served, ``hold_s`` the bay's hold time, ``maker`` the asking page (None: a page
    that cannot be told apart), ``own`` the running session's id when its own page asks, and
    ``client`` who asks (``pages_budget.client_of``; None through the cloudhook), ``gate``
    the bay's site (None: no site).
    """

    bay_id: str
    intent: str
    purchase: Purchase
    served: int
    hold_s: int
    maker: str | None = None
    own: str | None = None
    client: str | None = None
    gate: SiteGate | None = None


class PayDesk:
    """The Pay decisions of one account's pages; kept in memory (a restart forgets makers)."""

    def __init__(
        self,
        books: Books,
        maker: LinkMaker,
        *,
        waiting: Callable[[], float],
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.books = books
        self.maker = maker
        self._waiting = waiting  # how long Razorpay is left alone (``Reachability.waiting``)
        self._clock = clock or _wall_clock
        # One link decision at a time per bay: of a crowd tapping Pay, one gets the hold.
        self._bay_locks: dict[str, asyncio.Lock] = {}
        # The page that made each open link: a second tap of the page that holds a bay goes to
        # the same link. Lost at a restart; the session page keeps the link.
        self._makers: dict[str, str] = {}
        # Links being closed now: one call to Razorpay per link, none handed out meanwhile.
        self._closing: set[str] = set()
        self.guard = HoldGuard()

    def held_for_another_page(self, bay_id: str, maker: str | None, now: float) -> bool:
        """Whether the bay is held for a customer other than the asking page (``maker``)."""
        hold = hold_of(self.books.ledger.links.values(), bay_id, now)
        return hold is not None and not self.made_by(hold.link_id, maker)

    def made_by(self, link_id: str, maker: str | None) -> bool:
        """Whether the asking page (``maker``) made this link."""
        return maker is not None and self._makers.get(link_id) == maker

    async def async_link(self, tap: PayTap, callback: Callable[[str], str]) -> LinkRecord:
        """The link for a tap (``Refused`` if none, ``Paid`` if the page's own was paid).

        Decided under the bay's lock: of two pages tapping at once, one gets the hold. A link
        is reused only for the page that made it (``maker``): handed to another, its maker
        would keep the stranger's session page and the key to cancel what they pay.
        ``callback`` gives the page Razorpay sends the payer back to, for a new link's session.
        """
        async with self._bay_locks.setdefault(tap.bay_id, asyncio.Lock()):
            return await self._async_decide(tap, callback)

    async def _async_decide(self, tap: PayTap, callback: Callable[[str], str]) -> LinkRecord:
        bay_id, maker, own, now = tap.bay_id, tap.maker, tap.own, self._clock()
        # Decided now, not when the page was drawn (or the tap queued behind another): a start
        # is what the ledger says (a session ended since the page offered added time).
        starting = self.books.ledger.running_session(bay_id) is None
        if why := sale_refusal(tap.gate, self.books.ledger, bay_id, now, starting=starting):
            raise Refused(why)
        # A link being cancelled is handed to no one.
        links = [
            link for link in self.books.ledger.links.values() if link.link_id not in self._closing
        ]
        wanted = tap.purchase
        reuse = partial(
            reusable_link, bay_id=bay_id, plan_code=wanted.plan.code, quote=wanted.quote, now=now
        )
        intent = tap.intent
        hold_s: int | None = None
        if intent == START:
            hold = hold_of(links, bay_id, now)
            if hold is not None and not self.made_by(hold.link_id, maker):
                raise Refused(HELD)
            if hold is not None:
                # The holder taps again: their link, or, for another choice, a new one.
                theirs = self.books.ledger.links[hold.link_id]
                if (link := reuse([theirs], intent=HOLD)) is not None:
                    return link
                if await self.async_close(theirs) == "paid":
                    raise Paid(theirs.reference_id)
            hold_s = self.guard.hold_seconds(bay_id, tap.served, now, tap.hold_s)
            if hold_s is not None:
                intent = HOLD
        mine = [link for link in links if self.made_by(link.link_id, maker)]
        if intent != HOLD and (link := reuse(mine, intent=intent)) is not None:
            return link
        if (wait := self._waiting()) > 0:
            LOGGER.debug("No link made at bay %s: Razorpay left alone for %.0f s", bay_id, wait)
            raise Refused(TRY_LATER)
        # The running session's own page spends a budget of its own, never the bay's.
        # A client known by its address may spend only a few of the bay's (``HoldGuard``).
        if (own is None and too_many_open(links, bay_id, now)) or not self.guard.may_make_link(
            bay_id, now, own, tap.client
        ):
            raise Refused(BUSY)
        # Counted before the call: a refused or failed call costs the budget too.
        self.guard.spend(bay_id, now, own, tap.client)
        created = await self.maker.async_create_link(
            bay_id,
            wanted.plan.code,
            minutes=wanted.quote.minutes if wanted.plan.is_rate else None,
            paise=wanted.quote.price_paise if wanted.plan.is_energy else None,
            intent=intent,
            callback=callback,
            hold_s=hold_s,
            site_checked=True,
        )
        link = created.link
        if intent == HOLD:
            self.guard.held(bay_id, link.link_id, served=tap.served, now=now, until=link.expire_by)
        if maker is not None:
            self._remember(maker, link.link_id)
        return link

    def holding(self, bay_id: str) -> set[str]:
        """The pages (ticket nonces) whose link of the bay is open: their tickets stay valid."""
        links, now = self.books.ledger.links, self._clock()
        return {
            maker
            for link_id, maker in self._makers.items()
            if (link := links.get(link_id)) is not None
            and link.bay_id == bay_id
            and link.status == "created"
            and link.payment_id is None
            and link.expire_by > now
        }

    def forget(self, link: LinkRecord) -> None:
        """The page that made a link lets go of it (a link that holds nothing is not closed)."""
        self._makers.pop(link.link_id, None)

    def _remember(self, maker: str, link_id: str) -> None:
        """Which page made a link (links no longer open are forgotten)."""
        open_links = self.books.ledger.links
        self._makers = {i: m for i, m in self._makers.items() if i in open_links}
        self._makers[link_id] = maker

    def open_link(self, session_id: str) -> LinkRecord | None:
        """The unpaid open link that would pay for ``session_id``, if any."""
        link = self.books.ledger.link_by_reference(session_id)
        if link is not None and link.status == "created" and link.payment_id is None:
            return link
        return None

    async def async_close(self, link: LinkRecord) -> str | None:
        """Close an unpaid link (``LinkMaker.async_cancel_link``), one close of it at a time.

        Returns the status it ended with (``paid`` if Razorpay refused: it was paid), or None
        when it is being closed already. Raises what the close raised (Razorpay unreachable,
        the ledger not stored). A customer's cancel calls it off the bay's lock: a Pay tap
        never waits for it.
        """
        if link.link_id in self._closing:
            return None
        self._closing.add(link.link_id)
        try:
            status = await self.maker.async_cancel_link(link)
        finally:
            self._closing.discard(link.link_id)
        if status in ("cancelled", "expired"):
            self.guard.released(link.link_id, self._clock())
        return status
