"""Watching or failing the ledger's writes at the store's one write (``LedgerStore._write``).

A full or failing disk cannot be made in a test, so a failure is injected there, raising
SQLite's own error; everything else around it stays real.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest.mock import patch

from custom_components.qr_charging.ledger import Changes
from custom_components.qr_charging.records import Record, copy_record
from custom_components.qr_charging.store import LedgerStore

DISK_FULL = sqlite3.OperationalError("database or disk is full")
# What each successful write stored, as it was at that moment.
Written = list[list[Record]]


@contextmanager
def failing_writes(when: Callable[[Changes], bool] = lambda _: True) -> Iterator[None]:
    """Every write of a change for which ``when`` holds fails as a full disk would."""
    real = LedgerStore._write

    def write(store: LedgerStore, changes: Changes) -> None:
        if when(changes):
            raise DISK_FULL
        real(store, changes)

    with patch.object(LedgerStore, "_write", autospec=True, side_effect=write):
        yield


@contextmanager
def recorded_writes() -> Iterator[Written]:
    """Every change stored, as copies of its records taken when it was written."""
    real = LedgerStore._write
    written: Written = []

    def write(store: LedgerStore, changes: Changes) -> None:
        real(store, changes)
        written.append([copy_record(record) for _, record in changes.upserts])

    with patch.object(LedgerStore, "_write", autospec=True, side_effect=write):
        yield written
