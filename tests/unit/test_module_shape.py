"""The integration's shape: no import circle, no module over 500 lines, no class over 300.

These reflect issue #23's done criteria. Imports are read from the source (``ast``), those
under ``if TYPE_CHECKING:`` included: a circle only a type checker walks still means a reader
must hold both modules at once.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "custom_components/qr_charging"
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports (relative imports, at any depth)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
        stem = [*base, *(node.module.split(".") if node.module else [])]
        for alias in node.names:
            # ``from . import x`` names a module; ``from .x import y`` names one of x's names.
            candidate = ".".join([*stem, alias.name])
            target = candidate if candidate in known else ".".join(stem)
            if target in known and target != name:
                found.add(target)
    return found


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph``, as the modules walked, or None."""
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            if (found := walk(target, [*path, node])) is not None:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        if (found := walk(start, [])) is not None:
            return found
    return None


def test_circle_finder_finds_a_circle() -> None:
    """The check itself: a circle of three is found, a chain is not."""
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _circle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circle() -> None:
    """No module of the integration imports, through others, a module that imports it.

    The package's ``__init__`` is left out: HA loads the platforms through it, and a platform
    importing ``const`` would otherwise count as a circle through the package.
    """
    modules = _modules()
    known = set(modules) - {""}
    graph = {
        name: _imports(name, path, known) - {""} for name, path in modules.items() if name != ""
    }
    assert _circle(graph) is None


def test_no_module_over_500_lines() -> None:
    """No module of the integration over 500 lines."""
    over = {
        name: lines
        for name, path in _modules().items()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert over == {}


def test_no_class_over_300_lines() -> None:
    """No class of the integration over 300 lines."""
    over = {}
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef) or node.end_lineno is None:
                continue
            if (lines := node.end_lineno - node.lineno + 1) > MAX_CLASS_LINES:
                over[f"{name}.{node.name}"] = lines
    assert over == {}


def test_pages_within_the_sizes() -> None:
    """The customer's pages (issue #23 item 4): each module and class within the sizes."""
    for path in sorted(PACKAGE.glob("pages*.py")):
        tree = ast.parse(text := path.read_text())
        assert len(text.splitlines()) <= MAX_MODULE_LINES, path.name
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                assert node.end_lineno - node.lineno + 1 <= MAX_CLASS_LINES, node.name
