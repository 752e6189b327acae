"""What the catalog's settings (plans, bays, sites) share: ids and the error a form shows."""

from __future__ import annotations

import re
from collections.abc import Iterable

ID_PATTERN = re.compile(r"[a-zA-Z0-9_-]{1,32}")


class CatalogError(ValueError):
    """A plan or bay is invalid; ``key`` names the translated error, ``field`` the input."""

    def __init__(self, field: str, key: str) -> None:
        super().__init__(f"{field}: {key}")
        self.field = field
        self.key = key


def check_id(field: str, value: str, taken: Iterable[str]) -> str:
    """Return ``value`` when it is a well-formed, unused id."""
    if not ID_PATTERN.fullmatch(value):
        raise CatalogError(field, "invalid_id")
    if value in set(taken):
        raise CatalogError(field, "duplicate_id")
    return value
