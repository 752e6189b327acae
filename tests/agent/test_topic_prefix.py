"""The agent's ``topic_prefix`` is one Home Assistant can follow (review of issue #27, F7).

The account option *Agent topic prefixes* takes ``[A-Za-z0-9_-]{1,32}`` per prefix and
subscribes to ``<prefix>/+/config``: an agent under ``fleet/site-a`` or a 33-character prefix
ran, but no Home Assistant could ever find it. The agent now refuses such a prefix at start,
naming why. That every prefix it takes is one the option can name is checked where the
integration is installed (tests/unit/test_agent_prefixes.py): the agent's venv has no HA.
"""

from __future__ import annotations

from typing import Any

import pytest

from pi_mqtt_relay.config import ConfigError, parse_config


def _config(prefix: Any) -> dict[str, Any]:
    return {
        "broker": {"host": "127.0.0.1"},
        "node": {"id": "kiosk-1"},
        "topic_prefix": prefix,
        "bays": [{"id": "bay-1", "pin": 17}],
    }


@pytest.mark.parametrize("prefix", ["fleet/site-a", "a" * 33, "", "site a", "site+", "#"])
def test_a_prefix_home_assistant_cannot_follow_is_refused_with_the_reason(prefix: str) -> None:
    with pytest.raises(ConfigError, match=r"topic_prefix.*1 to 32 .*no '/'.*Home Assistant"):
        parse_config(_config(prefix))


@pytest.mark.parametrize("prefix", ["qr_charging", "site-a", "a" * 32, "A_9-z"])
def test_a_one_level_prefix_of_up_to_32_characters_is_taken(prefix: str) -> None:
    assert parse_config(_config(prefix)).topic_prefix == prefix
