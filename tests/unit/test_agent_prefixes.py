"""The account's *Agent topic prefixes* option (``agent_prefixes``): plain Python."""

from __future__ import annotations

import pytest

from custom_components.qr_charging.agent_prefixes import (
    PrefixError,
    extra_prefixes,
    parse_prefixes,
)


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
