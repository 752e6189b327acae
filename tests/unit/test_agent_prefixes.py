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
from custom_components.qr_charging.relays import DEFAULT_PREFIX, agent_identifier, agent_name
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


@st.composite
def _agents_of_one_text(draw: st.DrawFn) -> tuple[tuple[str, str], tuple[str, str]]:
    """Two agents cut from one dashed text (``site-b-kiosk-1``): each a prefix and node split
    at one of its dashes, or all of it a node under the default prefix. Joined with ``-`` they
    read the same: the identifiers a shape with ``-`` between prefix and node would merge."""
    parts = draw(st.lists(st.text(alphabet="ab_1", min_size=1, max_size=4), min_size=2, max_size=5))
    cuts = st.integers(min_value=0, max_value=len(parts) - 1)

    def agent(cut: int) -> tuple[str, str]:
        prefix = "-".join(parts[:cut]) or DEFAULT_PREFIX
        return prefix, "-".join(parts[cut:])

    return agent(draw(cuts)), agent(draw(cuts))


def test_an_agent_under_the_default_prefix_keeps_its_identifier() -> None:
    """Existing devices and ignored discoveries were made with ``agent-<node>``."""
    assert agent_identifier(DEFAULT_PREFIX, "kiosk-1") == "agent-kiosk-1"
    assert agent_name(DEFAULT_PREFIX, "Kiosk 1") == "Kiosk 1"


def test_one_node_id_under_two_prefixes_is_two_agents() -> None:
    """Review F2: both were ``agent-kiosk-1``, one discovery and one device."""
    assert agent_identifier("site-b", "kiosk-1") == "agent-site-b/kiosk-1"
    assert agent_identifier("site-b", "kiosk-1") != agent_identifier(DEFAULT_PREFIX, "kiosk-1")
    assert agent_name("site-b", "Kiosk 1") == "Kiosk 1 (site-b)"


def test_a_dashed_node_under_the_default_is_not_a_node_under_a_dashed_prefix() -> None:
    """``agent-<prefix>-<node>`` would make these one: ``agent-site-b-kiosk-1``."""
    assert agent_identifier(DEFAULT_PREFIX, "site-b-kiosk-1") != agent_identifier(
        "site-b", "kiosk-1"
    )


@given(_agents_of_one_text())
def test_two_agents_share_an_identifier_only_when_they_are_one(
    agents: tuple[tuple[str, str], tuple[str, str]],
) -> None:
    one, other = agents
    assert (agent_identifier(*one) == agent_identifier(*other)) == (one == other)
