"""Fixtures of the unit tests that run real brokers (the site bridge of docs/fleet.md)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import pytest_socket  # type: ignore[import-untyped]

from tests import fleet
from tests.fleet_bridge import Peer, Uplink, site_broker
from tests.mosquitto import Broker


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Generator[fleet.Fleet]:
    """One NATS cluster (+ HAProxy) for a module's tests that leave every node running."""
    # A module's fixture is set up before the first test's socket_enabled: allow 127.0.0.1 here.
    pytest_socket.enable_socket()
    cluster = fleet.Fleet(tmp_path_factory.mktemp("fleet"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def own_cluster(tmp_path: Path, socket_enabled: None) -> Generator[fleet.Fleet]:
    """A cluster of the test's own, for a test that kills a node."""
    cluster = fleet.Fleet(tmp_path / "fleet")
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def peer(socket_enabled: None) -> Generator[Callable[..., Peer]]:
    """Makes ``Peer`` clients; every one is closed after the test."""
    made: list[Peer] = []

    def make(*args: Any, **kwargs: Any) -> Peer:
        made.append(Peer(*args, **kwargs))
        return made[-1]

    yield make
    for client in made:
        with contextlib.suppress(Exception):
            client.close()


@pytest.fixture
def site(tmp_path: Path, socket_enabled: None) -> Generator[Callable[[str], Broker]]:
    """Starts a site's Mosquitto with a bridge configuration; each is stopped after the test."""
    started: list[Broker] = []

    def start(bridge: str) -> Broker:
        started.append(site_broker(tmp_path / f"site-{len(started)}", bridge))
        return started[-1]

    yield start
    for broker in started:
        broker.stop()


@pytest.fixture
def uplink(socket_enabled: None) -> Generator[Callable[[int], Uplink]]:
    """Makes ``Uplink`` forwarders; every one is cut after the test."""
    made: list[Uplink] = []

    def make(target: int) -> Uplink:
        made.append(Uplink(target))
        return made[-1]

    yield make
    for link in made:
        link.cut()
