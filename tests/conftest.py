"""Fixtures shared by every test, and the options of the longer runs (``tests/soak.py``)."""

from __future__ import annotations

import pytest

from tests import soak


def pytest_addoption(parser: pytest.Parser) -> None:
    """--soak N and --schedule-seed S."""
    soak.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis example counts for this run."""
    soak.configure_hypothesis(config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Counts of the fault schedules and fuzzing, at the end of the run."""
    soak.terminal_summary(terminalreporter)
