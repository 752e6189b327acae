"""The repository must work on its own: a clone has no folder of ours beside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A path to the folder CI lays beside its clone, written as a path or as a path part.
OUTSIDE = re.compile(r"\.\./shared|[\"']shared[\"']")
# Only CI may use that folder, and only as an optional extra; this file names it to find it.
ALLOWED = {ROOT / ".ci" / "run", Path(__file__).resolve()}
SKIPPED_DIRS = {".git", "__pycache__", "node_modules"}


def _project_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if parts & SKIPPED_DIRS or any(p.startswith(".venv") for p in parts):
            continue
        if path.is_file() and path.suffix not in {".png", ".jpg", ".pyc", ".db", ".zip", ".whl"}:
            files.append(path)
    return files


def test_nothing_reads_outside_the_repository() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in _project_files()
        if path not in ALLOWED
        and OUTSIDE.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert offenders == []


def test_razorpay_examples_are_in_the_repository() -> None:
    examples = ROOT / "tests" / "fixtures" / "razorpay"
    assert (examples / "README.md").is_file()
    assert sorted(p.name for p in (examples / "webhooks").glob("*.json"))
    assert sorted(p.name for p in (examples / "api").glob("*.json"))
