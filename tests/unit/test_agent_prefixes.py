"""The account's *Agent topic prefixes* option (``agent_prefixes``): plain Python."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.qr_charging.agent_prefixes import (
    PrefixError,
    extra_prefixes,
    parse_prefixes,
)
from pi_mqtt_relay.config import ConfigError, parse_config


@pytest.mark.parametrize(
    ("text", "prefixes"),
    [
        ("qr_charging", ("qr_charging",)),
        (" site_b , qr_charging,site_b ", ("site_b", "qr_charging")),
        ("", ("qr_charging",)),
        (" , ", ("qr_charging",)),
        ("Site-B_2", ("Site-B_2",)),
    ],
)
def test_prefixes_are_read_in_order_each_once(text: str, prefixes: tuple[str, ...]) -> None:
    assert parse_prefixes(text) == prefixes


@pytest.mark.parametrize(
    "text", ["site b", "site/b", "site_b,#", "+", "a" * 33, "qr_charging;site_b", "साइट"]
)
def test_anything_but_prefixes_is_refused(text: str) -> None:
    """A topic level must not hold MQTT's wildcards or separators, and must fit a relay."""
    with pytest.raises(PrefixError):
        parse_prefixes(text)


def test_the_account_follows_only_the_prefixes_the_manifest_does_not() -> None:
    assert extra_prefixes({}) == ()
    assert extra_prefixes({"discovery_prefixes": "qr_charging"}) == ()
    assert extra_prefixes({"discovery_prefixes": "site_b,qr_charging,site_c"}) == (
        "site_b",
        "site_c",
    )


def _agent_config(prefix: Any) -> dict[str, Any]:
    return {
        "broker": {"host": "127.0.0.1"},
        "node": {"id": "kiosk-1"},
        "topic_prefix": prefix,
        "bays": [{"id": "bay-1", "pin": 17}],
    }


@given(st.text(alphabet="ab_-/+# 9Z", max_size=40))
def test_every_prefix_the_agent_takes_the_account_option_can_name(prefix: str) -> None:
    """The agent refuses a topic prefix Home Assistant's option could not name (review F7)."""
    try:
        taken = parse_config(_agent_config(prefix)).topic_prefix
    except ConfigError:
        return
    assert parse_prefixes(taken) == (taken,)
