"""hassfest's and HACS's rules for manifest.json and hacs.json, checked on every run."""

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]
MANIFEST = json.loads((ROOT / "custom_components/qr_charging/manifest.json").read_text())
HACS = json.loads((ROOT / "hacs.json").read_text())

# Keys HACS accepts in hacs.json (hacs.xyz, "General" publishing docs).
HACS_KEYS = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "hacs",
    "persistent_directory",
    "render_readme",
}


def test_manifest_key_order() -> None:
    keys = list(MANIFEST)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])


def test_manifest_required_keys() -> None:
    assert MANIFEST["domain"] == "qr_charging"
    for key in (
        "version",
        "iot_class",
        "config_flow",
        "dependencies",
        "codeowners",
        "documentation",
        "issue_tracker",
        "integration_type",
        "requirements",
    ):
        assert key in MANIFEST, key
    assert re.fullmatch(r"\d+\.\d+\.\d+", MANIFEST["version"])
    assert MANIFEST["config_flow"] is True
    assert {"mqtt", "webhook"} <= set(MANIFEST["dependencies"])
    assert MANIFEST["after_dependencies"] == ["cloud"]
    assert MANIFEST["iot_class"] in {"cloud_push", "local_push"}
    assert MANIFEST["mqtt"] == ["qr_charging/+/config"]


def test_manifest_requirements_pinned_and_in_step() -> None:
    for req in MANIFEST["requirements"]:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", req), req
    listed = {
        line.strip()
        for line in (ROOT / "requirements_integration.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert listed == set(MANIFEST["requirements"])


def test_hacs_json() -> None:
    assert set(HACS) <= HACS_KEYS
    assert HACS["name"] == MANIFEST["name"]
    assert HACS["homeassistant"] == "2025.4.0"
    assert HACS["country"] == "IN"
    # Obsolete since HACS 2, which always shows the README.
    assert "render_readme" not in HACS
    # Releases carry qr_charging.zip with the integration's files at its root (scripts/release).
    assert HACS["zip_release"] is True
    assert HACS["filename"] == "qr_charging.zip"
    assert (ROOT / "LICENSE").is_file()


def test_one_version_for_the_release() -> None:
    agent = tomllib.loads((ROOT / "pi_mqtt_relay/pyproject.toml").read_text())["project"]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    newest = re.search(r"^## \[?(\d+\.\d+\.\d+)\]?", changelog, re.MULTILINE)
    assert newest is not None
    assert MANIFEST["version"] == agent["version"] == newest.group(1)
