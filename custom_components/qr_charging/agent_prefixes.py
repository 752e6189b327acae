"""The account's *Agent topic prefixes* option (issue #27): plain Python.

Several HA instances or sites can share one broker, each with its own prefix; the manifest
discovers agents under ``qr_charging`` only, so the account follows each other prefix itself
(``agent_discovery``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .catalog_errors import ID_PATTERN
from .const import CONF_DISCOVERY_PREFIXES
from .relays import DEFAULT_PREFIX


class PrefixError(ValueError):
    """The option names something that is no prefix a bay's relay may have."""


def parse_prefixes(text: str) -> tuple[str, ...]:
    """The prefixes of a comma-separated list, in order, each once; bad: ``PrefixError``.

    Each is what a bay's relay may have as prefix (``ID_PATTERN``: letters, digits, ``_``
    and ``-``, at most 32); an empty list means the default.
    """
    prefixes = [part.strip() for part in text.split(",") if part.strip()]
    if not all(ID_PATTERN.fullmatch(prefix) for prefix in prefixes):
        raise PrefixError(CONF_DISCOVERY_PREFIXES)
    return tuple(dict.fromkeys(prefixes)) or (DEFAULT_PREFIX,)


def extra_prefixes(options: Mapping[str, Any]) -> tuple[str, ...]:
    """The prefixes the account subscribes to itself: those other than the manifest's."""
    text = options.get(CONF_DISCOVERY_PREFIXES) or DEFAULT_PREFIX
    return tuple(p for p in parse_prefixes(text) if p != DEFAULT_PREFIX)
