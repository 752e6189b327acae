"""Builders of the store's documents tests: books on a real SQLite file that issue documents.

Payments and refunds go through the same rules the integration runs (``payment_rules``) and the
hub's wiring of documents (``invoices.dues_of``), without Home Assistant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from custom_components.qr_charging.books import Books
from custom_components.qr_charging.invoices import describer, dues_of
from custom_components.qr_charging.ledger import Wanted
from custom_components.qr_charging.payment_rules import add_refund, apply_payment
from custom_components.qr_charging.razorpay_events import PaymentNotice
from custom_components.qr_charging.records import LinkRecord, RefundRecord, RefundState
from custom_components.qr_charging.store import LedgerStore
from custom_components.qr_charging.tax import TaxSettings

PRICE = 2000


async def run(job: Callable[[], Any]) -> Any:
    """The store's executor: a real thread, as HA's would be."""
    return await asyncio.to_thread(job)


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Account:
    """One account's books on ``path``, issuing documents with ``settings`` as the hub wires
    them (None: the books of a version before documents), on a clock the test moves."""

    def __init__(self, path: Path, now: float, settings: TaxSettings | None) -> None:
        self.clock = Clock(now)
        self.books = Books(LedgerStore(path, run), clock=self.clock)
        if settings is not None:
            describe = describer({}, {}, {})
            self.books.documents = lambda written, ledger, at: dues_of(
                written, ledger.links, describe, settings, at, refunds=ledger.refunds
            )

    async def paid(self, n: int) -> None:
        """Link ``n`` made, then paid: session ``s-<n>`` opens."""
        async with self.books.change() as ledger:
            ledger.add_link(link(n, self.clock.now))
        await self.delivered(n)

    async def delivered(self, n: int) -> None:
        """The ``payment_link.paid`` delivery of link ``n`` (again, if delivered before)."""
        now = self.clock.now
        async with self.books.change(Wanted.for_payment(notice(n), f"evt_{n}")) as ledger:
            apply_payment(ledger, notice(n), "payment_link.paid", now)
            ledger.note_event(f"evt_{n}", "payment_link.paid", "new_session", now)

    async def refunded(
        self, n: int, key: str, amount: int, state: RefundState = RefundState.PROCESSED
    ) -> None:
        """A refund of payment ``n`` recorded, then (unless ``REQUESTED``) answered."""
        payment = f"pay_{n}"
        async with self.books.change(Wanted(payment_ids={payment})) as ledger:
            refund = RefundRecord(
                key, payment, amount, self.clock.now, RefundState.REQUESTED, "test", f"s-{n}"
            )
            add_refund(ledger, refund)
        if state is not RefundState.REQUESTED:
            async with self.books.change(Wanted(payment_ids={payment})) as ledger:
                ledger.refunds[key].state = state


def link(n: int, now: float) -> LinkRecord:
    """A payment link of bay-1 for session ``s-<n>``."""
    return LinkRecord(
        link_id=f"plink_{n}",
        reference_id=f"s-{n}",
        bay_id="bay-1",
        plan_code="p30",
        amount=PRICE,
        currency="INR",
        seconds=1800,
        expire_by=int(now) + 1200,
        created_at=now,
        short_url=f"https://example.com/{n}",
    )


def notice(n: int) -> PaymentNotice:
    """Razorpay's news of link ``n`` paid (payment ``pay_<n>``)."""
    return PaymentNotice(f"pay_{n}", PRICE, "INR", "captured", link_id=f"plink_{n}")
