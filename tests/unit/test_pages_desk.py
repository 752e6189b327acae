"""``pages_desk.PayDesk``, the Pay decision, in plain Python: no HTTP client, no Razorpay.

A fake link maker stands in for ``payments.Payments``: it records each link in the books'
ledger as Payments does, and each call, so every test says how many links Razorpay was asked
for. Time is a number moved by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.qr_charging.books import Books
from custom_components.qr_charging.catalog import Plan
from custom_components.qr_charging.holds import (
    LINK_MARGIN_S,
    LINKS_PER_CLIENT,
    LINKS_PER_WINDOW,
    UNPAID_HOLDS,
)
from custom_components.qr_charging.intents import HOLD, START, add_time
from custom_components.qr_charging.pages_desk import (
    BUSY,
    HELD,
    TRY_LATER,
    Paid,
    PayDesk,
    PayTap,
    Refused,
)
from custom_components.qr_charging.pages_model import Purchase
from custom_components.qr_charging.pages_site import CLOSED, FULL
from custom_components.qr_charging.records import LinkRecord, SessionRecord, SessionState
from custom_components.qr_charging.site_gate import SiteGate
from custom_components.qr_charging.sites import WEEKDAYS, make_site
from custom_components.qr_charging.store import LedgerStore

BAY = "bay-1"
HOLD_S = 20 * 60
T0 = 1_800_000_000.0
PLAN = Plan(code="p30", name="30 minutes", minutes=30, price_paise=5000)
LONGER = Plan(code="p60", name="60 minutes", minutes=60, price_paise=9000)


@dataclass
class _Created:
    link: LinkRecord


class FakeLinks:
    """Makes and closes links in the ledger, as ``Payments`` does, counting the calls."""

    def __init__(self, books: Books, clock: Callable[[], float]) -> None:
        self.books = books
        self.clock = clock
        self.made: list[dict[str, Any]] = []
        self.cancelled: list[str] = []
        # While set, a creation waits for it (Razorpay answering slowly).
        self.gate: asyncio.Event | None = None

    async def async_create_link(
        self,
        bay_id: str,
        plan_code: str | None,
        *,
        minutes: int | None = None,
        paise: int | None = None,  # a per-kWh plan's amount (issue #24)
        intent: str | None = None,
        callback: Callable[[str], str] | None = None,
        hold_s: int | None = None,
        site_checked: bool = False,
    ) -> _Created:
        number = len(self.made) + 1
        self.made.append({"bay": bay_id, "plan": plan_code, "intent": intent, "hold_s": hold_s})
        if self.gate is not None:
            await self.gate.wait()
        plan = {PLAN.code: PLAN, LONGER.code: LONGER}[plan_code or PLAN.code]
        now = self.clock()
        session_id = f"s-{number}"
        link = LinkRecord(
            link_id=f"plink_{number}",
            reference_id=session_id,
            bay_id=bay_id,
            plan_code=plan.code,
            amount=plan.price_paise,
            currency="INR",
            seconds=plan.seconds,
            expire_by=int(now) + (HOLD_S if hold_s is None else hold_s) + LINK_MARGIN_S,
            created_at=now,
            short_url=callback(session_id) if callback else "",
            intent=intent,
        )
        self.books.ledger.add_link(link)
        return _Created(link)

    async def async_cancel_link(self, link: LinkRecord) -> str:
        self.cancelled.append(link.link_id)
        self.books.ledger.close_link(link.link_id, "cancelled")
        return "cancelled"


class Clock:
    """The desk's time, moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def books(tmp_path: Path) -> Books:
    async def run(job: Callable[[], Any]) -> Any:
        return job()

    # Never opened: the desk reads only the ledger in memory.
    return Books(LedgerStore(tmp_path / "ledger.db", run))


@pytest.fixture
def links(books: Books, clock: Clock) -> FakeLinks:
    return FakeLinks(books, clock)


@pytest.fixture
def waiting() -> list[float]:
    """How long Razorpay is left alone (``Reachability.waiting``); 0 by default."""
    return [0.0]


@pytest.fixture
def desk(books: Books, links: FakeLinks, clock: Clock, waiting: list[float]) -> PayDesk:
    return PayDesk(books, links, waiting=lambda: waiting[0], clock=clock)


def tap(
    maker: str | None,
    *,
    plan: Plan = PLAN,
    intent: str = START,
    own: str | None = None,
    served: int = 0,
    client: str | None = None,
    gate: SiteGate | None = None,
) -> PayTap:
    return PayTap(
        bay_id=BAY,
        intent=intent,
        purchase=Purchase(plan, plan.quote()),
        served=served,
        hold_s=HOLD_S,
        maker=maker,
        own=own,
        client=client,
        gate=gate,
    )


def callback(session_id: str) -> str:
    return f"https://pay.example/{session_id}"


async def test_a_free_bays_first_tap_holds_it(desk: PayDesk, links: FakeLinks) -> None:
    link = await desk.async_link(tap("page-a"), callback)

    assert link.intent == HOLD
    assert links.made == [{"bay": BAY, "plan": PLAN.code, "intent": HOLD, "hold_s": HOLD_S}]
    assert link.short_url == "https://pay.example/s-1"
    assert desk.made_by(link.link_id, "page-a")
    assert desk.held_for_another_page(BAY, "page-b", T0)
    assert not desk.held_for_another_page(BAY, "page-a", T0)


async def test_of_two_taps_at_once_one_gets_the_hold(desk: PayDesk, links: FakeLinks) -> None:
    """Decided under the bay's lock: the second tap waits, then finds the bay held."""
    links.gate = asyncio.Event()
    first = asyncio.ensure_future(desk.async_link(tap("page-a"), callback))
    second = asyncio.ensure_future(desk.async_link(tap("page-b"), callback))
    await asyncio.sleep(0)
    assert len(links.made) == 1  # the second waits for the first's decision
    links.gate.set()

    link = await first
    with pytest.raises(Refused) as refused:
        await second
    assert refused.value.key == HELD
    assert desk.made_by(link.link_id, "page-a")
    assert link.intent == HOLD
    assert len(links.made) == 1


async def test_the_holder_taps_again_and_gets_its_link(desk: PayDesk, links: FakeLinks) -> None:
    link = await desk.async_link(tap("page-a"), callback)

    assert await desk.async_link(tap("page-a"), callback) == link
    assert len(links.made) == 1


async def test_the_holder_choosing_another_plan_closes_its_link(
    desk: PayDesk, links: FakeLinks
) -> None:
    first = await desk.async_link(tap("page-a"), callback)

    second = await desk.async_link(tap("page-a", plan=LONGER), callback)

    assert links.cancelled == [first.link_id]
    assert desk.made_by(second.link_id, "page-a")
    assert second.link_id != first.link_id
    assert second.intent == HOLD


async def test_an_added_time_link_goes_only_to_the_page_that_made_it(
    desk: PayDesk, links: FakeLinks
) -> None:
    """Handed to another page, its maker would keep the stranger's session page and key."""
    intent = add_time("s-running")
    link = await desk.async_link(tap("page-a", intent=intent), callback)

    assert link.intent == intent
    assert await desk.async_link(tap("page-a", intent=intent), callback) == link
    other = await desk.async_link(tap("page-b", intent=intent), callback)
    unknown = await desk.async_link(tap(None, intent=intent), callback)
    assert len({link.link_id, other.link_id, unknown.link_id}) == 3
    assert desk.made_by(other.link_id, "page-b")
    assert len(links.made) == 3


async def test_one_client_spends_only_its_share_of_the_bays_links(
    desk: PayDesk, links: FakeLinks, clock: Clock
) -> None:
    """Each tap from a new page of one address: after LINKS_PER_CLIENT, that client waits."""
    intent = add_time("s-running")
    for number in range(LINKS_PER_CLIENT):
        await desk.async_link(tap(f"page-{number}", intent=intent, client="10.0.0.7"), callback)
        clock.now += 1

    with pytest.raises(Refused) as refused:
        await desk.async_link(tap("page-x", intent=intent, client="10.0.0.7"), callback)
    assert refused.value.key == BUSY
    assert len(links.made) == LINKS_PER_CLIENT
    # Another client, or one that cannot be told apart (the cloudhook), still gets a link.
    await desk.async_link(tap("page-y", intent=intent, client="10.0.0.8"), callback)
    await desk.async_link(tap("page-z", intent=intent), callback)
    assert len(links.made) == LINKS_PER_CLIENT + 2


async def test_a_holder_whose_link_was_paid_gets_no_second_link(
    desk: PayDesk, links: FakeLinks, books: Books
) -> None:
    """Paid at Razorpay, its webhook still on its way: the holder taps another plan."""
    first = await desk.async_link(tap("page-a"), callback)

    async def refused_as_paid(link: LinkRecord) -> str:
        links.cancelled.append(link.link_id)
        books.ledger.close_link(link.link_id, "paid")
        return "paid"

    links.async_cancel_link = refused_as_paid  # type: ignore[method-assign]
    with pytest.raises(Paid) as paid:
        await desk.async_link(tap("page-a", plan=LONGER), callback)

    assert paid.value.session_id == first.reference_id
    assert len(links.made) == 1


async def test_a_holders_page_is_known_while_its_link_is_open(desk: PayDesk, clock: Clock) -> None:
    link = await desk.async_link(tap("page-a"), callback)

    assert desk.holding(BAY) == {"page-a"}
    assert desk.holding("bay-other") == set()
    clock.now = link.expire_by + 1
    assert desk.holding(BAY) == set()


async def test_razorpay_left_alone_makes_no_link(
    desk: PayDesk, links: FakeLinks, waiting: list[float]
) -> None:
    waiting[0] = 30.0

    with pytest.raises(Refused) as refused:
        await desk.async_link(tap("page-a"), callback)

    assert refused.value.key == TRY_LATER
    assert links.made == []


async def test_the_bays_link_budget_spares_the_running_sessions_own_page(
    desk: PayDesk, links: FakeLinks, clock: Clock
) -> None:
    """Links of many plans from many pages spend the bay's budget; the session's own page has
    its own."""
    intent = add_time("s-running")
    for number in range(LINKS_PER_WINDOW):
        plan = Plan(code=PLAN.code, name="x", minutes=30, price_paise=5000 + number)
        # A new price each time: no link to reuse. Closed, so the bay's open links stay few.
        link = await desk.async_link(tap(f"page-{number}", plan=plan, intent=intent), callback)
        await desk.async_close(link)
        clock.now += 1

    with pytest.raises(Refused) as refused:
        await desk.async_link(tap("page-x", plan=LONGER, intent=intent), callback)
    assert refused.value.key == BUSY
    made = len(links.made)

    own = tap("session:s-running", plan=LONGER, intent=intent, own="s-running")
    link = await desk.async_link(own, callback)
    assert desk.made_by(link.link_id, "session:s-running")
    assert len(links.made) == made + 1


async def test_holds_ended_unpaid_in_a_row_stop_holding(
    desk: PayDesk, links: FakeLinks, clock: Clock
) -> None:
    for number in range(UNPAID_HOLDS):
        link = await desk.async_link(tap(f"page-{number}"), callback)
        assert link.intent == HOLD
        await desk.async_close(link)
        clock.now += 60

    link = await desk.async_link(tap("page-next"), callback)

    assert desk.made_by(link.link_id, "page-next")
    assert link.intent == START
    assert links.made[-1]["hold_s"] is None
    assert not desk.held_for_another_page(BAY, "page-other", clock.now)
    # A served session forgives: the bay holds again.
    held = await desk.async_link(tap("page-last", plan=LONGER, served=1), callback)
    assert held.intent == HOLD


async def test_a_link_being_closed_is_handed_to_no_one(
    desk: PayDesk, links: FakeLinks, books: Books
) -> None:
    intent = add_time("s-running")
    link = await desk.async_link(tap("page-a", intent=intent), callback)
    closing = asyncio.Event()

    async def slow_cancel(closed: LinkRecord) -> str:
        await closing.wait()
        books.ledger.close_link(closed.link_id, "cancelled")
        return "cancelled"

    links.async_cancel_link = slow_cancel  # type: ignore[method-assign]
    close = asyncio.ensure_future(desk.async_close(link))
    await asyncio.sleep(0)

    # Its own maker taps again meanwhile: a new link, never the one being closed.
    other = await desk.async_link(tap("page-a", intent=intent), callback)
    assert other.link_id != link.link_id
    closing.set()
    await close


async def test_open_link_is_only_an_unpaid_open_one(desk: PayDesk, books: Books) -> None:
    link = await desk.async_link(tap("page-a"), callback)

    assert desk.open_link(link.reference_id) is link
    assert desk.open_link("s-unknown") is None
    link.payment_id = "pay_1"
    assert desk.open_link(link.reference_id) is None


async def test_a_tap_queued_past_closing_gets_no_link(
    desk: PayDesk, links: FakeLinks, clock: Clock
) -> None:
    """Sites (#25): decided when its turn comes, not when its page was drawn."""
    shop = make_site("shop", "Shop", time_zone="UTC", hours=dict.fromkeys(WEEKDAYS, "00:00-12:00"))
    gate = SiteGate(shop, ZoneInfo("UTC"), {BAY: 3300})  # T0 is 08:00 UTC: open 4 hours more
    adding = partial(tap, intent=add_time("s-running"), gate=gate)
    links.gate = asyncio.Event()
    first = asyncio.ensure_future(desk.async_link(adding("page-a"), callback))
    second = asyncio.ensure_future(desk.async_link(adding("page-b"), callback))
    await asyncio.sleep(0)
    clock.now = T0 + 4 * 3600  # closing time, while the second waits for the first
    links.gate.set()

    await first
    with pytest.raises(Refused) as refused:
        await second
    assert refused.value.key == CLOSED
    assert len(links.made) == 1


async def test_added_time_for_a_session_ended_since_is_a_start_under_the_cap(
    desk: PayDesk, books: Books, links: FakeLinks
) -> None:
    """The page offered time added to bay-1's session; it ended before the tap, and bay-2 now
    uses the cap: the tap starts bay-1 (decided from the ledger, not the page), so it is full."""
    shop = make_site("shop", "Shop", time_zone="UTC", load_cap_w=5000)
    gate = SiteGate(shop, ZoneInfo("UTC"), {BAY: 3300, "bay-2": 3300})
    books.ledger.sessions["s-2"] = SessionRecord(
        "s-2", "bay-2", SessionState.ACTIVE, created_at=T0, seconds=1800, until=T0 + 1800
    )

    with pytest.raises(Refused) as refused:
        await desk.async_link(tap("page-a", intent=add_time("s-ended"), gate=gate), callback)
    assert refused.value.key == FULL
    assert links.made == []
