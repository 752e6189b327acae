"""The ledger on disk.

One JSON document in ``.storage`` (the shape of a HA ``Store`` file). It is serialised in the
event loop, so the snapshot is consistent with the change just made (orjson reads the records
directly, about a microsecond each), then written in the executor atomically with fsync, before
the webhook is answered. HA's ``Store`` would first deep-copy every record to plain dicts in the
loop, which costs tens of times more once the ledger holds months of sessions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.json import json_bytes
from homeassistant.helpers.storage import STORAGE_DIR
from homeassistant.util.file import write_utf8_file_atomic
from homeassistant.util.json import json_loads_object

from .const import DOMAIN, STORAGE_VERSION
from .ledger import Ledger


class LedgerFile:
    """Load and save one account's ledger."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self.hass = hass
        self.key = f"{DOMAIN}.{entry_id}.ledger"
        self.path = Path(hass.config.path(STORAGE_DIR, self.key))
        self.archive_path = Path(
            hass.config.path(STORAGE_DIR, f"{DOMAIN}.{entry_id}.archive.jsonl")
        )

    async def async_load(self) -> Ledger | None:
        """The saved ledger, or None when there is none yet."""
        raw = await self.hass.async_add_executor_job(self._read)
        if raw is None:
            return None
        document = json_loads_object(raw)
        data = document["data"]
        assert isinstance(data, dict)
        return Ledger.from_dict(data)

    def _read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    async def async_save(self, ledger: Ledger) -> None:
        """Write the ledger now; returns once it is on disk."""
        payload = json_bytes(
            {
                "version": STORAGE_VERSION,
                "minor_version": 1,
                "key": self.key,
                "data": ledger.snapshot(),
            }
        )
        await self.hass.async_add_executor_job(self._write, payload)

    def _write(self, payload: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_utf8_file_atomic(str(self.path), payload, private=True, mode="wb")

    async def async_append_archive(self, batch: dict[str, Any]) -> None:
        """Append archived records as one JSON line, on disk (fsync) before returning."""
        await self.hass.async_add_executor_job(self._append, json_bytes(batch) + b"\n")

    def _append(self, line: bytes) -> None:
        self.archive_path.parent.mkdir(parents=True, exist_ok=True)
        with self.archive_path.open("ab") as archive:
            archive.write(line)
            archive.flush()
            os.fsync(archive.fileno())

    async def async_load_archive(self) -> list[dict[str, Any]]:
        """Every archived batch, oldest first."""
        return await self.hass.async_add_executor_job(self._read_archive)

    def _read_archive(self) -> list[dict[str, Any]]:
        try:
            lines = self.archive_path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        # A line cut short by a crash mid-append is skipped; its records are still live.
        batches: list[dict[str, Any]] = []
        for line in lines:
            try:
                batches.append(json_loads_object(line))
            except ValueError:
                continue
        return batches
