"""scripts/release builds what a GitHub release carries: HACS's zip and the agent's wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_release_builds_the_hacs_zip_and_the_agent_wheel(tmp_path: Path) -> None:
    subprocess.run(
        [ROOT / "scripts" / "release"],
        env=os.environ | {"DIST": str(tmp_path), "PYTHON": sys.executable},
        check=True,
        capture_output=True,
    )
    version = json.loads((ROOT / "custom_components/qr_charging/manifest.json").read_text())[
        "version"
    ]

    with zipfile.ZipFile(tmp_path / "qr_charging.zip") as archive:
        names = set(archive.namelist())
        # HACS's zip_release: the integration's files at the root, as git tracks them.
        assert {"manifest.json", "__init__.py", "brand/icon.png", "translations/hi.json"} <= names
        assert not any(name.startswith("custom_components/") for name in names)
        assert not any("__pycache__" in name for name in names)
        assert json.loads(archive.read("manifest.json"))["version"] == version
    assert (tmp_path / f"pi_mqtt_relay-{version}-py3-none-any.whl").is_file()
