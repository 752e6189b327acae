"""Fixtures shared by every test, and the options of the longer runs (``tests/soak.py``).

The Razorpay stand-in is here because the integration's tests and the unit tests of its
Razorpay client both use it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import pytest

from tests import soak

if TYPE_CHECKING:
    from devtools.razorpay_standin import RazorpayStandin


def pytest_addoption(parser: pytest.Parser) -> None:
    """--soak N and --schedule-seed S."""
    soak.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis example counts for this run."""
    soak.configure_hypothesis(config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Counts of the fault schedules and fuzzing, at the end of the run."""
    soak.terminal_summary(terminalreporter)


@pytest.fixture
async def standin(socket_enabled: None) -> AsyncGenerator[RazorpayStandin]:
    """Razorpay's API on 127.0.0.1 (the real SDK talks to it over HTTP).

    Imported here, not at the top: the agent's suite runs where aiohttp is not installed.
    """
    from devtools.razorpay_standin import RazorpayStandin  # noqa: PLC0415

    server = RazorpayStandin()
    await server.start()
    yield server
    await server.stop()
