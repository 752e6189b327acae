"""quality_scale.yaml: every rule marked done keeps its evidence, where a test can check it.

hassfest validates a custom integration's manifest (its ``quality_scale`` key among them) but
never reads its quality_scale.yaml; these tests hold the file to the code. Coverage cannot be
measured inside one test run: scripts/test enforces it, and a test here keeps it enforcing.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict

from custom_components.qr_charging import const, errors
from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.razorpay_api import (
    RazorpayAuthError,
    RazorpayConnectionError,
    RazorpayRequestError,
)
from custom_components.qr_charging.store import StorageError

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "custom_components" / DOMAIN
TIERS = ("bronze", "silver", "gold", "platinum")
# Every rule of Home Assistant's Integration Quality Scale, by tier (core's
# script/hassfest/quality_scale.py).
RULES_BY_TIER = {
    "bronze": {
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
    },
    "silver": {
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
    },
    "gold": {
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
    },
    "platinum": {"async-dependency", "inject-websession", "strict-typing"},
}
# What hassfest accepts as a custom integration's quality_scale (script/hassfest/manifest.py).
MANIFEST_SCALES = {*TIERS, "custom", "no_score", "internal", "legacy"}
# Errors Home Assistant shows to a person: each must carry a translation.
HA_ERRORS = {
    "HomeAssistantError",
    "ServiceValidationError",
    "ConfigEntryNotReady",
    "ConfigEntryError",
    "ConfigEntryAuthFailed",
}


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


STRINGS = {
    "en": _json(PACKAGE / "translations" / "en.json"),
    "hi": _json(PACKAGE / "translations" / "hi.json"),
}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _rules() -> dict[str, dict[str, str]]:
    rules = load_yaml_dict(PACKAGE / "quality_scale.yaml")["rules"]
    return {
        name: rule if isinstance(rule, dict) else {"status": rule} for name, rule in rules.items()
    }


def _done(rule: str) -> bool:
    return _rules()[rule]["status"] == "done"


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text("utf-8"), str(path))


def _strings(node: ast.expr | None, path: Path) -> set[str]:
    """The values an argument can take: a string, a constant of const.py, or either of two."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Name) and isinstance(getattr(const, node.id, None), str):
        return {getattr(const, node.id)}
    if isinstance(node, ast.IfExp):
        return _strings(node.body, path) | _strings(node.orelse, path)
    raise AssertionError(f"{path.name}: a translation key that is not a plain string")


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


# -- the file and the manifest ----------------------------------------------------------------


def test_every_rule_is_listed_with_a_reason_unless_done() -> None:
    rules = _rules()
    assert set(rules) == set().union(*RULES_BY_TIER.values())
    for name, rule in rules.items():
        assert rule["status"] in {"done", "todo", "exempt"}, name
        if rule["status"] != "done":
            assert rule.get("comment", "").strip(), name


def test_the_manifest_declares_the_tier_the_rules_reach() -> None:
    rules = _rules()
    reached = None
    for tier in TIERS:
        if any(rules[rule]["status"] == "todo" for rule in RULES_BY_TIER[tier]):
            break
        reached = tier
    manifest = _json(PACKAGE / "manifest.json")
    assert manifest.get("quality_scale") in MANIFEST_SCALES
    assert manifest.get("quality_scale") == reached
    # hassfest: silver and above need a code owner.
    assert manifest["codeowners"]


# -- coverage: enforced by scripts/test -------------------------------------------------------


def test_coverage_rules_are_enforced_by_the_test_script() -> None:
    script = (ROOT / "scripts" / "test").read_text("utf-8")
    if _done("test-coverage"):
        assert "--cov-fail-under=95" in script
    if _done("config-flow-test-coverage"):
        # The flow's modules: the account's, the subentries', the fields they share.
        modules = ("config_flow", "subentry_flows", "site_flows", "bay_fields", "flow_fields")
        for module in (*modules, "tax_fields", "prefix_fields"):
            assert re.search(
                rf"coverage\" report --include=\S*custom_components/qr_charging/{module}\.py"
                r"\S*[^\n]*--fail-under=100",
                script,
            ), f"scripts/test must fail when {module}.py is not wholly covered"


# -- strict-typing ----------------------------------------------------------------------------


def test_mypy_ignores_no_import_of_the_integration() -> None:
    if not _done("strict-typing"):
        return
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["mypy"]
    ignored = [
        module
        for override in mypy.get("overrides", [])
        if override.get("ignore_missing_imports")
        for module in override["module"]
    ]
    imported = set()
    for _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module)
    ignored_imports = {
        module
        for module in imported
        for pattern in ignored
        if module == pattern or (pattern.endswith(".*") and module.startswith(pattern[:-1]))
    }
    assert ignored_imports == set(), "mypy ignores these: give them stubs in typings/"
    assert "typings" in mypy["mypy_path"]
    for path in PACKAGE.rglob("*.py"):
        assert not re.search(r"type:\s*ignore\[[^\]]*import", path.read_text("utf-8")), path


# -- exception-translations and repair-issues -------------------------------------------------


def test_every_error_raised_is_translated() -> None:
    if not _done("exception-translations"):
        return
    keys = set()
    for path, tree in _modules():
        if path.name == "errors.py":
            continue  # its key is chosen at run time: translate() is called below
        for node in ast.walk(tree):
            # Every error made, raised where it is made or by whoever it is returned to.
            if not (isinstance(node, ast.Call) and _call_name(node) in HA_ERRORS):
                continue
            kwargs = {kw.arg: kw.value for kw in node.keywords}
            where = f"{path.name}:{node.lineno}"
            assert "translation_key" in kwargs, f"{where} makes an untranslated error"
            assert ast.unparse(kwargs["translation_domain"]) == "DOMAIN", where
            keys |= _strings(kwargs["translation_key"], path)
    # Razorpay's and the ledger's errors, translated in one place.
    for err in (
        RazorpayAuthError("refused"),
        RazorpayConnectionError("down"),
        RazorpayRequestError("bad", 400),
        StorageError("disk full"),
    ):
        translated = errors.translate(err)
        assert translated.translation_domain == DOMAIN
        keys.add(str(translated.translation_key))
    for language, strings in STRINGS.items():
        for key in keys:
            assert strings["exceptions"][key]["message"], (language, key)


def test_every_repair_raised_is_translated_and_named_in_the_scale() -> None:
    if not _done("repair-issues"):
        return
    raised: dict[str, set[str]] = {}
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node) == "raise_repair":
                _, key, placeholders = node.args
                assert isinstance(placeholders, ast.Dict), path
                names = {ast.literal_eval(k) for k in placeholders.keys if k is not None}
                for translation_key in _strings(key, path):
                    raised[translation_key] = names
    assert raised
    for language, strings in STRINGS.items():
        for key, names in raised.items():
            issue = strings["issues"][key]
            text = issue["title"] + issue["description"]
            assert set(PLACEHOLDER.findall(text)) <= names, (language, key)
    # The rule's comment names every repair there is.
    comment = _rules()["repair-issues"]["comment"]
    assert {key for key in raised if key not in comment} == set()
    assert set(STRINGS["en"]["issues"]) == set(raised)


# -- action-setup, docs-actions, icon-translations, entity-translations -----------------------


async def test_every_action_is_described_iconed_translated_and_named(
    hass: HomeAssistant,
) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    registered = set(hass.services.async_services_for_domain(DOMAIN))
    described = load_yaml_dict(PACKAGE / "services.yaml")

    assert set(described) == registered
    assert set(_json(PACKAGE / "icons.json")["services"]) == registered
    for language, strings in STRINGS.items():
        assert set(strings["services"]) == registered, language
        for action in registered:
            text = strings["services"][action]
            assert text["name"], (language, action)
            assert text["description"], (language, action)
            for field in described[action].get("fields") or {}:
                assert text["fields"][field]["name"], (language, action, field)
    comment = _rules()["action-setup"]["comment"]
    assert {action for action in registered if action not in comment} == set()
    if _done("docs-actions"):
        reference = (ROOT / "docs" / "reference.md").read_text("utf-8")
        documented = set(re.findall(rf"^### `{DOMAIN}\.(\w+)`", reference, re.MULTILINE))
        assert documented == registered


def test_every_entity_has_a_translated_name_and_an_icon() -> None:
    icons = _json(PACKAGE / "icons.json")["entity"]
    keys = set()
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node).endswith("EntityDescription"):
                kwargs = {kw.arg: kw.value for kw in node.keywords}
                if "translation_key" in kwargs:
                    keys.add((path.stem, ast.literal_eval(kwargs["translation_key"])))
    assert len(keys) >= 8
    for platform, key in keys:
        assert icons[platform][key]["default"], (platform, key)
        for language, strings in STRINGS.items():
            assert strings["entity"][platform][key]["name"], (language, platform, key)
