"""The tests' own layout, as HA core lays its tests out (issue #23 item 7).

Fixtures live in ``conftest.py``, builders in helper modules: no test module imports a test
module or a ``conftest.py`` (pytest loads those itself). ``tests/unit`` holds the tests that
need no Home Assistant: neither they nor the helper modules they import import it. Imports are
read from the source (``ast``), those under ``if TYPE_CHECKING:`` included.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
ROOT = TESTS.parent
HA_PACKAGES = ("homeassistant", "pytest_homeassistant_custom_component")


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports."""
    return _imports_in(path.read_text(), _module_of(path), is_package=path.name == "__init__.py")


def _imports_in(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module ``module`` imports (absolute names; relative imports resolved)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            stem = ".".join([*base, *([node.module] if node.module else [])])
            found.add(stem)
            # ``from . import x`` and ``from .pkg import mod`` may name modules.
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def _test_modules() -> dict[str, Path]:
    return {_module_of(path): path for path in sorted(TESTS.rglob("*.py"))}


def _is_test_or_conftest(module: str) -> bool:
    leaf = module.rsplit(".", 1)[-1]
    return leaf == "conftest" or leaf.startswith("test_")


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    """A builder two test files need goes to a helper module, not into one of the tests."""
    modules = _test_modules()
    found = sorted(
        f"{name} imports {target}"
        for name, path in modules.items()
        for target in _imports(path)
        if target in modules and _is_test_or_conftest(target)
    )
    assert found == []


def _reached(start: str, modules: dict[str, Path]) -> set[str]:
    """Every module ``start`` imports, following the tests' own modules."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in _imports(modules[todo.pop()]):
            if target not in seen:
                seen.add(target)
                if target in modules:
                    todo.append(target)
    return seen


def test_unit_tests_import_no_home_assistant() -> None:
    """What needs HA is an integration test; what does not runs without it in tests/unit."""
    modules = _test_modules()
    unit = [name for name in modules if name.startswith("tests.unit.")]
    assert unit
    found = sorted(
        f"{name} reaches {target}"
        for name in unit
        for target in _reached(name, modules)
        if target.split(".")[0] in HA_PACKAGES
    )
    assert found == []


def test_the_layout_checks_find_what_they_look_for() -> None:
    """Relative imports, ``from . import`` of a module and HA's imports are all seen."""
    source = (
        "from homeassistant.core import HomeAssistant\n"
        "from . import test_x\n"
        "from ..agent.conftest import y\n"
        "if TYPE_CHECKING:\n"
        "    import pytest_homeassistant_custom_component.common\n"
    )
    imports = _imports_in(source, "tests.unit.helpers")
    assert {
        "homeassistant.core",
        "tests.unit.test_x",
        "tests.agent.conftest",
        "pytest_homeassistant_custom_component.common",
    } <= imports
    assert _is_test_or_conftest("tests.unit.test_x")
    assert _is_test_or_conftest("tests.agent.conftest")
    assert not _is_test_or_conftest("tests.agent.helpers")
