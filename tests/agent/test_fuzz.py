"""Fuzzing the agent (hypothesis): its command parser, its rules, the agent itself, its config.

Called directly, without a broker: whatever arrives never raises out and never powers a relay
it should not. Example counts are modest by default and larger with ``--soak N``
(``tests/soak.py``).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from gpiozero.pins.mock import MockFactory
from hypothesis import given
from hypothesis import strategies as st

from pi_mqtt_relay.agent import Agent
from pi_mqtt_relay.commands import (
    MAX_PAYLOAD_BYTES,
    MAX_SESSION_ID_LENGTH,
    MalformedCommand,
    OffCommand,
    OnCommand,
    PlainOff,
    PlainOn,
    parse_command,
)
from pi_mqtt_relay.config import MAX_BCM_PIN, ConfigError, load_config, parse_config
from pi_mqtt_relay.sessions import (
    CAP_SLACK_S,
    CLOCK_SKEW_TOLERANCE_S,
    ActiveSession,
    Finish,
    Limits,
    Now,
    decide,
    expire,
)
from pi_mqtt_relay.state_file import StateFile
from tests.soak import examples

from .fakes import NOW, WALL, Clock, KeptLink, keep_deadlines

SESSIONS = ["s-a", "s-b", "s-c", "manual-x", ""]

# -- inputs -----------------------------------------------------------------------------------

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400)]),
    st.floats(min_value=WALL - 1000, max_value=WALL + 20_000),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
commandish = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["on", "off", "ON", "toggle", ""]) | json_values,
        "session": st.sampled_from(SESSIONS) | st.text(max_size=200) | json_values,
        "until": numbers,
        "duration": numbers,
        "sent": numbers,
    },
)


def _dumps(data: Any) -> bytes:
    # Python's json writes NaN and Infinity, as a broken sender could.
    return json.dumps(data).encode()


payloads = st.one_of(
    st.binary(max_size=MAX_PAYLOAD_BYTES + 10),
    st.sampled_from([b"ON", b"OFF", b" ON\n", b"on", b"null", b"[]", b"{}"]),
    commandish.map(_dumps),
    json_values.map(_dumps),
    st.text(max_size=50).map(str.encode),
)


# -- the parser -------------------------------------------------------------------------------


@examples(300)
@given(payloads)
def test_the_parser_gives_a_whole_command_or_says_why_not(payload: bytes) -> None:
    try:
        command = parse_command(payload)
    except MalformedCommand as err:
        problem = str(err)
        assert problem
        return
    if isinstance(command, OnCommand):
        assert 0 < len(command.session) <= MAX_SESSION_ID_LENGTH
        assert command.session.strip()
        for number in (command.until, command.duration, command.sent):
            assert isinstance(number, float)
            assert math.isfinite(number)
        assert command.duration > 0
        assert command.until > command.sent > 0
    elif isinstance(command, OffCommand):
        assert 0 < len(command.session) <= MAX_SESSION_ID_LENGTH
    else:
        assert isinstance(command, PlainOn | PlainOff)
        assert payload.strip() in (b"ON", b"OFF")


# -- the rules --------------------------------------------------------------------------------

LIMITS = Limits(max_session_s=300.0, default_s=90.0)


@st.composite
def on_commands(draw: st.DrawFn) -> OnCommand:
    sent = draw(st.floats(min_value=WALL - 600, max_value=WALL + 600))
    duration = draw(st.floats(min_value=0.001, max_value=1000))
    until = draw(st.sampled_from([sent + duration, sent + duration / 2, sent + duration * 3]))
    return OnCommand(
        session=draw(st.sampled_from(SESSIONS[:4])), until=until, duration=duration, sent=sent
    )


commands = st.one_of(
    on_commands(),
    st.builds(OffCommand, session=st.sampled_from(SESSIONS[:4])),
    st.just(PlainOn()),
    st.just(PlainOff()),
)


@st.composite
def actives(draw: st.DrawFn) -> ActiveSession | None:
    if draw(st.booleans()):
        return None
    remaining = draw(st.floats(min_value=0, max_value=LIMITS.max_session_s))
    until = WALL + draw(st.floats(min_value=-100, max_value=400))
    return ActiveSession(draw(st.sampled_from(SESSIONS[:4])), until, NOW.mono + remaining)


finished_maps = st.dictionaries(st.sampled_from(SESSIONS[:4]), st.sampled_from(list(Finish)))


@examples(300)
@given(actives(), commands, finished_maps)
def test_the_rules_never_power_what_they_should_not(
    active: ActiveSession | None, command: Any, finished: dict[str, Finish]
) -> None:
    if active is not None:
        finished.pop(active.session, None)  # a running session is not also finished
    decision = decide(
        active, command, now=NOW, limits=LIMITS, finished=finished, manual_id="manual-new"
    )
    after = decision.active
    if decision.rejected:
        assert after == active, "a refused command changes nothing"
    if after is not None:
        # Never further away than the cap, never for a finished session (unless it ran before).
        assert after.deadline - NOW.mono <= LIMITS.max_session_s + CAP_SLACK_S
        assert after.session not in finished
        if active is not None:
            # A busy bay keeps its session: nobody else's command takes it over.
            assert after.session == active.session
            assert after.deadline >= active.deadline
            assert after.deadline - active.deadline == pytest.approx(
                max(0.0, after.until - active.until)
            )
    if isinstance(command, OnCommand) and active is None and after is not None:
        assert after.session == command.session
        if command.sent - NOW.wall <= CLOCK_SKEW_TOLERANCE_S:
            # The sender's deadline holds: a late command gets only what is left of it.
            assert after.deadline - NOW.mono == pytest.approx(command.until - NOW.wall)
            assert command.until > NOW.wall
        else:
            assert after.deadline - NOW.mono == pytest.approx(command.duration)
    if isinstance(command, OffCommand):
        assert after is None or after.session != command.session
        if active is not None and active.session != command.session:
            assert after == active, "an off for another session leaves the bay's alone"
    if isinstance(command, PlainOn) and active is None:
        assert after is not None
        assert after.session == "manual-new"
        assert after.deadline - NOW.mono == LIMITS.default_s
    if isinstance(command, PlainOff):
        assert after is None
    # Whatever ends is remembered, so it never powers the bay again.
    if active is not None and after is None:
        assert decision.finished == (active.session, Finish.CANCELLED)


@examples(100)
@given(actives(), st.floats(min_value=-1000, max_value=1000))
def test_a_deadline_switches_off_exactly_when_it_comes(
    active: ActiveSession | None, later: float
) -> None:
    now = Now(NOW.mono + later, NOW.wall + later)
    decision = expire(active, now)
    if active is None or now.mono < active.deadline:
        assert decision is None
    else:
        assert decision is not None
        assert decision.active is None
        assert decision.finished == (active.session, Finish.ENDED)


# -- the agent itself -------------------------------------------------------------------------


class FlakyStateFile(StateFile):
    """The state file, failing (an SD card gone read-only) while ``failing`` is set."""

    failing = False

    def save(self, state: Any) -> None:
        if self.failing:
            raise OSError(30, "Read-only file system")
        super().save(state)


BAYS = ("bay-1", "bay-2")


@contextmanager
def _agent() -> Iterator[tuple[Agent, MockFactory, KeptLink, FlakyStateFile, Clock]]:
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(
            {
                "broker": {"host": "127.0.0.1"},
                "node": {"id": "fuzz"},
                "state_file": f"{tmp}/state.json",
                "max_session_s": 300,
                "bays": [
                    {"id": "bay-1", "pin": 17, "default_minutes": 1.5},
                    {"id": "bay-2", "pin": 27, "active_high": False, "default_minutes": 2},
                ],
            }
        )
        factory = MockFactory()
        links: list[KeptLink] = []
        store = FlakyStateFile(config.state_file)
        clock = Clock()

        def link(*args: Any) -> KeptLink:
            links.append(KeptLink(*args))
            return links[-1]

        agent = Agent(
            config,
            pin_factory=factory,
            clock=clock,
            boot_id="boot",
            clock_synced=lambda: True,
            state_file=store,
            link=link,
        )
        try:
            yield agent, factory, links[0], store, clock
        finally:
            agent._relays.close()


def _powered(factory: MockFactory, bay: str) -> bool:
    pin, active_high = {"bay-1": (17, True), "bay-2": (27, False)}[bay]
    return bool(factory.pin(pin).state) == active_high


@st.composite
def agent_inputs(draw: st.DrawFn) -> tuple[str, bytes, float, bool]:
    """(bay, payload, seconds later, whether the disk fails) of one command."""
    bay = draw(st.sampled_from([*BAYS, "bay-9"]))
    if draw(st.booleans()):
        payload = draw(payloads)
    else:
        sent = WALL + draw(st.floats(min_value=-200, max_value=200))
        duration = draw(st.floats(min_value=0.5, max_value=600))
        command = draw(
            st.sampled_from(
                [
                    {"action": "on", "until": sent + duration, "duration": duration, "sent": sent},
                    {"action": "off"},
                ]
            )
        )
        payload = _dumps({**command, "session": draw(st.sampled_from(SESSIONS[:3]))})
    return bay, payload, draw(st.floats(min_value=0, max_value=100)), draw(st.booleans())


@examples(150)
@given(st.lists(agent_inputs(), max_size=15))
def test_the_agent_powers_only_what_it_was_asked_for_and_never_again(  # noqa: PLR0912
    inputs: list[tuple[str, bytes, float, bool]],
) -> None:
    """Commands straight into ``Agent.handle_command``: mock pins, a state file that may fail."""
    with _agent() as (agent, factory, link, store, clock):
        asked: set[str] = set()  # sessions some "on" named
        cancelled: set[str] = set()  # sessions ended or named by an "off": never powered again
        on_for: dict[str, str] = {}  # the session each bay is powered for
        for bay, payload, later, disk_fails in inputs:
            clock.tick(later)
            store.failing = disk_fails
            keep_deadlines(agent, clock)
            for b in BAYS:
                if not _powered(factory, b) and (on := on_for.pop(b, None)):
                    cancelled.add(on)  # ended at its deadline: never powered again either
            before = {b: _powered(factory, b) for b in BAYS}
            sent = len(link.sent)
            agent.handle_command(bay, payload)
            try:
                command: Any = parse_command(payload)
            except MalformedCommand:
                command = None
            if isinstance(command, OnCommand) and bay in BAYS:
                asked.add(command.session)
            states = {t.split("/")[2]: p for t, p in link.sent[sent:] if t.endswith("/state")}
            for b in BAYS:
                powered = _powered(factory, b)
                if b != bay:
                    assert powered == before[b], "a command for one bay never switches another"
                if b in states:
                    # Every command is answered with the bay's true state.
                    assert (states[b]["state"] == "ON") == powered
                    if powered:
                        session = states[b]["session"]
                        assert session in asked or session.startswith("manual-")
                        if not before[b]:
                            assert session not in cancelled, "a finished session came back"
                        assert 0 < states[b]["remaining"] <= 300 + CAP_SLACK_S
                if powered and not before[b]:
                    # Switched on now: the disk took it first.
                    assert not disk_fails
                if b in states and powered:
                    on_for[b] = states[b]["session"]
                elif not powered and (ended := on_for.pop(b, None)):
                    cancelled.add(ended)
            if bay in BAYS:
                assert bay in states, "a command for a known bay is always answered"
                if isinstance(command, OffCommand):
                    cancelled.add(command.session)
                    assert not (
                        states[bay]["state"] == "ON" and states[bay]["session"] == command.session
                    )
            else:
                assert not states, "a command for an unknown bay is only logged"


@examples(100)
@given(actives(), commands)
def test_a_stored_session_never_outlives_its_deadline(
    active: ActiveSession | None, command: Any
) -> None:
    """Whatever is stored resumes for at most what was left (the agent's own restart rule)."""
    from pi_mqtt_relay.sessions import StoredSession, resume  # noqa: PLC0415

    decision = decide(active, command, now=NOW, limits=LIMITS, finished={}, manual_id="manual-new")
    if decision.active is None:
        return
    stored = StoredSession.of(decision.active, NOW, "boot")
    for later in (0.0, 1.0, 1000.0):
        now = Now(NOW.mono + later, NOW.wall + later)
        for boot, synced in (("boot", False), ("other", True), ("other", False)):
            _, resumed = resume(stored, now, boot, LIMITS.max_session_s, wall_clock_synced=synced)
            if resumed is not None:
                assert resumed.session == decision.active.session
                assert resumed.remaining(now) <= decision.active.remaining(NOW) - later + 1e-6


# -- the configuration ------------------------------------------------------------------------

yamlish = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([10**400, -(10**400)])
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["127.0.0.1", "bay-1", "kiosk", "/tmp/x", "\x00"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "broker",
                    "host",
                    "port",
                    "node",
                    "id",
                    "bays",
                    "pin",
                    "tls",
                    "ca_file",
                    "name",
                    "username",
                    "password",
                    "max_session_s",
                    "default_minutes",
                    "active_high",
                    "keepalive",
                    "topic_prefix",
                    "state_file",
                    "insecure",
                    "cert_file",
                    "key_file",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=6,
        )
    ),
    max_leaves=25,
)


def _almost_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A valid configuration with one part replaced by anything."""
    config: dict[str, Any] = {
        "broker": {"host": "127.0.0.1", "port": 1883},
        "node": {"id": "kiosk-1"},
        "bays": [{"id": "bay-1", "pin": 17}, {"id": "bay-2", "pin": 27, "default_minutes": 5}],
        "max_session_s": 600,
    }
    path = draw(
        st.sampled_from(
            [
                ("broker", "port"),
                ("broker", "host"),
                ("broker", "tls"),
                ("broker", "password"),
                ("broker", "keepalive"),
                ("node", "id"),
                ("max_session_s",),
                ("bays",),
                ("topic_prefix",),
                ("state_file",),
                ("ha_discovery",),
            ]
        )
    )
    target = config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = draw(yamlish)
    if draw(st.booleans()):
        key = draw(st.sampled_from(["pin", "id", "default_minutes", "active_high", "name"]))
        config["bays"] = [{"id": "bay-1", "pin": 17, key: draw(yamlish)}]
    return config


@examples(300)
@given(st.one_of(yamlish, st.composite(_almost_valid)()))
def test_the_config_is_valid_or_says_which_key_is_wrong(raw: Any) -> None:
    try:
        config = parse_config(raw)
    except ConfigError as err:
        problem = str(err)
        assert problem
        return
    assert config.bays
    pins = [bay.pin for bay in config.bays]
    assert len(set(pins)) == len(pins)
    assert all(0 <= pin <= MAX_BCM_PIN for pin in pins)
    assert len({bay.id for bay in config.bays}) == len(config.bays)
    assert math.isfinite(config.max_session_s)
    assert config.max_session_s > 0
    for bay in config.bays:
        assert 0 < bay.default_s <= config.max_session_s
    assert config.broker.addresses
    assert all(1 <= address.port <= 65535 for address in config.broker.addresses)
    if config.broker.password is not None:
        assert config.broker.username is not None


@examples(150)
@given(st.one_of(st.text(max_size=300), yamlish.map(yaml.safe_dump)))
def test_the_config_file_is_read_or_refused_with_a_message(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "agent.yaml"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            load_config(path)
        except ConfigError as err:
            problem = str(err)
            assert problem
