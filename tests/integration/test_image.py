"""The image platform: its entities of an idle bay, as HA core snapshots a platform."""

from __future__ import annotations

from collections.abc import Generator
from unittest.mock import patch

import pytest
from homeassistant.components import image
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from syrupy.assertion import SnapshotAssertion

from .helpers import registry_snapshot


@pytest.fixture(autouse=True)
def fixed_token() -> Generator[None]:
    """The image's access token (in two of its attributes) is random: fixed, as HA core's image
    tests fix it (only the image's own generator: a constant from every SystemRandom makes
    ``randrange`` loop forever). Its state, the time its picture changed, is ``freeze_time``'s.
    """
    with patch.object(image._RND, "getrandbits", return_value=0x5EC2E7):
        yield


@pytest.mark.freeze_time("2026-01-01T00:00:00+00:00")
@pytest.mark.parametrize("platforms", [[Platform.IMAGE]])
@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_entities(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    await snapshot_platform(
        hass, entity_registry, registry_snapshot(snapshot), init_integration.entry_id
    )
