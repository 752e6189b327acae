"""Longer runs behind ``--soak N``, and the summaries tests leave for the end of the run.

``--soak N`` runs N fault schedules (instead of the default number) and lets hypothesis try N
times its default number of examples. ``--schedule-seed S`` (repeatable) runs only the fault
schedules of those seeds: the seed a discrepancy names reproduces its schedule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

# Lines printed at the end of the run, by title.
REPORTS: dict[str, list[str]] = {}

# Hypothesis example counts: modest by default, ``--soak N`` times larger with --soak.
DEFAULT_EXAMPLES = 40
FACTOR = 1


def add_options(parser: pytest.Parser) -> None:
    """Register --soak and --schedule-seed."""
    group = parser.getgroup("qr_charging", "qr_charging proof under faults")
    group.addoption(
        "--soak",
        type=int,
        default=0,
        metavar="N",
        help="run N fault schedules, and N times the default hypothesis examples",
    )
    group.addoption(
        "--schedule-seed",
        type=int,
        action="append",
        default=[],
        metavar="S",
        help="run only the fault schedule of this seed (repeatable)",
    )


def configure_hypothesis(config: pytest.Config) -> None:
    """Load the hypothesis profile for this run (when hypothesis is installed)."""
    try:
        from hypothesis import HealthCheck, settings  # noqa: PLC0415 - optional here
    except ImportError:
        return
    global FACTOR  # noqa: PLW0603 - read by the test modules as they are collected
    soak = int(config.getoption("soak") or 0)
    FACTOR = max(soak, 1)
    settings.register_profile(
        "qr_charging",
        max_examples=DEFAULT_EXAMPLES * max(soak, 1),
        deadline=None,
        derandomize=soak == 0,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    settings.load_profile("qr_charging")


def examples(count: int) -> Any:
    """Hypothesis settings for ``count`` examples by default (``--soak N``: N times as many)."""
    from hypothesis import settings  # noqa: PLC0415 - optional here

    return settings(max_examples=count * FACTOR)


def report(title: str, lines: Iterable[str]) -> None:
    """Print these lines under ``title`` at the end of the run (replacing earlier ones)."""
    REPORTS[title] = list(lines)


def terminal_summary(reporter: pytest.TerminalReporter) -> None:
    """Write every report."""
    for title, lines in REPORTS.items():
        reporter.section(title)
        for line in lines:
            reporter.line(line)
