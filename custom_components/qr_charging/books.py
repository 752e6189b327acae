"""The books: the ledger in memory and in the database, kept in step.

Plain Python (asyncio), no Home Assistant imports. Every change runs inside ``change()``: under
one lock (concurrent deliveries of one payment must see each other's effect), on the working
set plus whatever the change fetched, and is committed as one transaction before anyone is told
of it. When the commit fails, or the change raises, the records are put back as they were.
What only shows reads with ``read()``: the stored records, without the lock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

from .invoices import Document, Dues
from .ledger import Changes, Ledger, Wanted
from .records import Record
from .store import LedgerStore
from .tax import Recipient, TaxSettings

# Turns the records a change wrote into the documents it makes due (``invoices.dues_of``).
type Documenter = Callable[[list[Record], Ledger, float], Dues | None]


def _now() -> float:
    """The wall clock, looked up at each call.

    Not ``time.time`` as the default itself: a default keeps the function it was given, so a
    test's frozen clock (which replaces ``time.time``) would not date the documents.
    """
    return time.time()


class Books:
    """One account's ledger and its store."""

    def __init__(self, store: LedgerStore, clock: Callable[[], float] = _now) -> None:
        self.store = store
        self.ledger = Ledger()
        self.lock = asyncio.Lock()
        self._clock = clock
        # What a change's records make due in documents (set by the hub: it knows the names
        # and the owner's tax details); None: no documents.
        self.documents: Documenter | None = None
        # Told after a committed change that had documents due, or a B2B request (the hub
        # refreshes the month's tax totals); it must not raise.
        self.documents_changed: Callable[[], None] | None = None

    async def async_open(self) -> None:
        """Open the database and read the working set."""
        self.ledger = await self.store.async_open(self._clock())

    async def read(self, wanted: Wanted) -> Ledger:
        """The records ``wanted`` (and those they point at) as stored, without the write lock.

        For what only shows (the session page): a change under way is not waited for, and its
        writes are not seen until they are stored. The answer is a ledger of its own, fetched
        from the database; the working set takes nothing from it, and writing to it stores
        nothing.
        """
        ledger = Ledger()
        ledger.merge(*await self.store.async_fetch(wanted))
        return ledger

    @asynccontextmanager
    async def change(self, wanted: Wanted | None = None) -> AsyncIterator[Ledger]:
        """Change the ledger under the lock; stored whole when the block ends, or not at all.

        Raises ``StorageError`` (with the records as they were) when the commit fails.
        """
        async with self.lock:
            ledger = self.ledger
            if wanted is not None:
                ledger.merge(*await self.store.async_fetch(wanted))
            checkpoint = ledger.checkpoint()
            try:
                yield ledger
                changes = ledger.changes_since(checkpoint)
                if self.documents is not None and changes.upserts:
                    written = [record for _, record in changes.upserts]
                    due = self.documents(written, ledger, self._clock())
                    changes = replace(changes, documents=due)
            except BaseException:
                ledger.restore(checkpoint)
                raise
            try:
                cancelled = await _stored(self.store, changes) if changes else False
            except BaseException:
                ledger.restore(checkpoint)
                raise
            finally:
                ledger.evict_touched(self._clock())
            ledger.add_totals(changes)
            if changes.documents is not None:
                self._documents_changed()
            if cancelled:
                raise asyncio.CancelledError

    async def async_b2b(
        self, payment_id: str, recipient: Recipient, settings: TaxSettings
    ) -> list[Document]:
        """Invoice one payment to a business customer (``invoices.b2b``).

        In one transaction under the lock (two taps at once issue one); return the payment's
        documents. Raises ``B2BRefused`` or ``StorageError`` (nothing issued).
        """
        async with self.lock:
            documents = await self.store.async_b2b(payment_id, recipient, settings, self._clock())
        self._documents_changed()
        return documents

    def _documents_changed(self) -> None:
        if self.documents_changed is not None:
            self.documents_changed()


async def _stored(store: LedgerStore, changes: Changes) -> bool:
    """Commit, and see the write to its end even when cancelled; return whether cancelled.

    Memory must say what the disk says: a write that goes on after the caller is cancelled
    (a client gone, an automation restarted) is waited for, then the cancellation goes on.
    """
    commit = asyncio.ensure_future(store.async_commit(changes))
    cancelled = False
    while not commit.done():
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            cancelled = True
    commit.result()  # raises what the write raised: then nothing of it is on disk
    return cancelled
