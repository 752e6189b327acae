"""The account options' field *Agent topic prefixes* (issue #27).

Stored as ``options["discovery_prefixes"]``, the comma-separated text ``agent_prefixes``
reads; the options flow (``config_flow``) shows it and checks it with ``prefixes_option``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol

from .agent_prefixes import parse_prefixes
from .const import CONF_DISCOVERY_PREFIXES
from .flow_fields import TEXT
from .relays import DEFAULT_PREFIX


def prefixes_field(options: Mapping[str, Any]) -> dict[vol.Marker, Any]:
    """The field, filled in with the account's prefixes (the default: the manifest's)."""
    shown = options.get(CONF_DISCOVERY_PREFIXES, DEFAULT_PREFIX)
    return {vol.Optional(CONF_DISCOVERY_PREFIXES, description={"suggested_value": shown}): TEXT}


def prefixes_option(user_input: dict[str, Any]) -> dict[str, Any]:
    """The form's input with the prefixes normalised ("a, b" → "a,b"); bad: ``PrefixError``."""
    if CONF_DISCOVERY_PREFIXES not in user_input:  # left out: the account keeps what it has
        return user_input
    text = user_input[CONF_DISCOVERY_PREFIXES]
    return {**user_input, CONF_DISCOVERY_PREFIXES: ",".join(parse_prefixes(text))}
