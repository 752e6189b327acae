"""What ships in the integration's folder besides code: actions, icons, strings, brand, scale."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict

from custom_components.qr_charging.const import DOMAIN

PACKAGE = Path(__file__).parents[2] / "custom_components" / DOMAIN
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Every rule of Home Assistant's Integration Quality Scale (script/hassfest/quality_scale.py).
QUALITY_SCALE_RULES = {
    # Bronze
    "action-setup",
    "appropriate-polling",
    "brands",
    "common-modules",
    "config-flow",
    "config-flow-test-coverage",
    "dependency-transparency",
    "docs-actions",
    "docs-conditions",
    "docs-high-level-description",
    "docs-installation-instructions",
    "docs-removal-instructions",
    "docs-triggers",
    "entity-event-setup",
    "entity-unique-id",
    "has-entity-name",
    "runtime-data",
    "test-before-configure",
    "test-before-setup",
    "unique-config-entry",
    # Silver
    "action-exceptions",
    "config-entry-unloading",
    "docs-configuration-parameters",
    "docs-installation-parameters",
    "entity-unavailable",
    "integration-owner",
    "log-when-unavailable",
    "parallel-updates",
    "reauthentication-flow",
    "test-coverage",
    # Gold
    "devices",
    "diagnostics",
    "discovery",
    "discovery-update-info",
    "docs-data-update",
    "docs-examples",
    "docs-known-limitations",
    "docs-supported-devices",
    "docs-supported-functions",
    "docs-troubleshooting",
    "docs-use-cases",
    "dynamic-devices",
    "entity-category",
    "entity-device-class",
    "entity-disabled-by-default",
    "entity-translations",
    "exception-translations",
    "icon-translations",
    "reconfiguration-flow",
    "repair-issues",
    "stale-devices",
    # Platinum
    "async-dependency",
    "inject-websession",
    "strict-typing",
}


def _json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PACKAGE / name).read_text("utf-8"))
    return data


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (its first chunk, IHDR)."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, path
    assert head[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", head[16:24])
    return width, height


async def test_services_yaml_describes_exactly_the_registered_actions(
    hass: HomeAssistant,
) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()

    described = load_yaml_dict(PACKAGE / "services.yaml")
    assert sorted(described) == sorted(hass.services.async_services_for_domain(DOMAIN))


def test_every_action_and_entity_has_an_icon() -> None:
    icons = _json("icons.json")
    strings = _json("strings.json")
    assert set(icons["services"]) == set(load_yaml_dict(PACKAGE / "services.yaml"))
    for platform, entities in strings["entity"].items():
        for key in entities:
            assert icons["entity"].get(platform, {}).get(key, {}).get("default"), (platform, key)


def test_english_translation_is_the_source_strings() -> None:
    # Custom integrations are read from translations/en.json; strings.json is its source.
    assert json.loads((PACKAGE / "translations" / "en.json").read_text("utf-8")) == _json(
        "strings.json"
    )


def test_brand_images() -> None:
    brand = PACKAGE / "brand"
    assert _png_size(brand / "icon.png") == (256, 256)
    assert _png_size(brand / "icon@2x.png") == (512, 512)
    # Logos: the shortest side 128 to 256 pixels (256 to 512 for @2x).
    assert 128 <= min(_png_size(brand / "logo.png")) <= 256
    assert 256 <= min(_png_size(brand / "logo@2x.png")) <= 512


def test_quality_scale_lists_every_rule_with_reasons() -> None:
    rules = load_yaml_dict(PACKAGE / "quality_scale.yaml")["rules"]
    assert set(rules) == QUALITY_SCALE_RULES
    for name, rule in rules.items():
        status = rule if isinstance(rule, str) else rule["status"]
        assert status in {"done", "todo", "exempt"}, name
        if status != "done":
            assert isinstance(rule, dict), name
            assert rule.get("comment", "").strip(), name
