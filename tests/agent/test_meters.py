"""The meters: the PZEM-004T driver over a real (pseudo-terminal) serial line, and the mock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pi_mqtt_relay.config import ConfigError, MeterConfig, MeteringConfig, parse_config
from pi_mqtt_relay.meters import (
    ChargingCurve,
    MeterFault,
    MockMeter,
    Pzem004t,
    Reading,
    SerialBus,
    build_meters,
    decode_pzem,
)

from .pzem_sim import SimulatedPzemLine, pzem_line


@pytest.fixture
def line() -> Iterator[SimulatedPzemLine]:
    with pzem_line((1, 2)) as simulated:
        yield simulated


def test_registers_decode_with_their_units_and_low_word_first() -> None:
    # 230.1 V, 70.000 A (0x0001_1170 mA), 16100.0 W (0x0002_74E8 tenths), 70005 Wh, 50 Hz.
    values = decode_pzem([2301, 0x1170, 0x0001, 0x74E8, 0x0002, 0x1175, 0x0001, 500, 95, 0xFFFF])
    assert values.voltage_v == pytest.approx(230.1)
    assert values.current_a == pytest.approx(70.0)
    assert values.power_w == pytest.approx(16100.0)
    assert values.energy_wh == 70005.0
    assert values.frequency_hz == pytest.approx(50.0)
    assert values.power_factor == pytest.approx(0.95)
    assert values.alarm


def test_a_short_answer_is_a_fault() -> None:
    with pytest.raises(MeterFault, match="expected 10 registers"):
        decode_pzem([0] * 9)


def test_meters_on_one_line_are_read_by_address(line: SimulatedPzemLine) -> None:
    line.meters[1].power_w, line.meters[1].energy_wh = 812.4, 70_005
    line.meters[2].power_w, line.meters[2].energy_wh = 1500.0, 12
    bus = SerialBus(line.port)
    first, second = Pzem004t(bus, 1), Pzem004t(bus, 2)
    try:
        values = first.read_values()
        assert values.power_w == pytest.approx(812.4)
        assert values.voltage_v == pytest.approx(230.0)
        assert values.current_a == pytest.approx(812.4 / 230, abs=0.001)
        assert first.read(0.0) == Reading(pytest.approx(812.4), 70_005.0)
        assert second.read(0.0) == Reading(1500.0, 12.0)
    finally:
        first.close()
        second.close()


def test_a_lone_meter_answers_the_general_address() -> None:
    with pzem_line((7,)) as line:
        line.meters[7].energy_wh = 42
        meter = Pzem004t(SerialBus(line.port))  # default: 0xF8
        try:
            assert meter.read(0.0).energy_wh == 42.0
        finally:
            meter.close()


def test_a_silent_line_is_a_fault_and_the_next_answer_is_read(line: SimulatedPzemLine) -> None:
    line.meters[1].energy_wh = 100
    meter = Pzem004t(SerialBus(line.port), 1)
    try:
        line.silent.set()
        with pytest.raises(MeterFault, match="address 1"):
            meter.read(0.0)
        line.silent.clear()
        assert meter.read(0.0).energy_wh == 100.0
    finally:
        meter.close()


def test_a_corrupted_answer_is_a_fault_never_a_wrong_number(line: SimulatedPzemLine) -> None:
    line.meters[1].energy_wh = 100
    meter = Pzem004t(SerialBus(line.port), 1)
    try:
        line.garble.set()
        for _ in range(3):
            with pytest.raises(MeterFault):
                meter.read(0.0)
        line.garble.clear()
        assert meter.read(0.0).energy_wh == 100.0
    finally:
        meter.close()


def test_garbage_on_the_line_is_skipped(line: SimulatedPzemLine) -> None:
    line.meters[1].energy_wh = 321
    meter = Pzem004t(SerialBus(line.port), 1)
    try:
        for noise in (b"\x00\xff\x13garbage", b"\x01\x04\x14" + b"\xaa" * 7, bytes(range(64))):
            line.inject(noise)
            try:
                reading = meter.read(0.0)
            except MeterFault:
                reading = meter.read(0.0)  # at most the poll that met the noise is lost
            assert reading.energy_wh == 321.0
    finally:
        meter.close()


def test_a_port_that_does_not_exist_is_a_fault() -> None:
    meter = Pzem004t(SerialBus("/dev/does-not-exist"), 1)
    with pytest.raises(MeterFault, match="/dev/does-not-exist"):
        meter.read(0.0)
    meter.close()


def test_meters_on_the_same_port_share_one_bus() -> None:
    config = parse_config(
        {
            "broker": {"host": "127.0.0.1"},
            "node": {"id": "kiosk"},
            "bays": [
                {
                    "id": "a",
                    "pin": 17,
                    "meter": {"kind": "pzem004t", "port": "/dev/x", "address": 1},
                },
                {
                    "id": "b",
                    "pin": 27,
                    "meter": {"kind": "pzem004t", "port": "/dev/x", "address": 2},
                },
                {"id": "c", "pin": 22, "meter": {"kind": "pzem004t", "port": "/dev/y"}},
                {"id": "d", "pin": 23, "meter": {"kind": "mock", "power_w": 800}},
                {"id": "e", "pin": 24},
            ],
        }
    )
    meters = build_meters(config.bays)
    assert set(meters) == {"a", "b", "c", "d"}
    a, b, c = meters["a"], meters["b"], meters["c"]
    assert isinstance(a, Pzem004t)
    assert isinstance(b, Pzem004t)
    assert isinstance(c, Pzem004t)
    assert a.bus is b.bus
    assert c.bus is not a.bus
    assert c.address == 0xF8
    mock = meters["d"]
    assert isinstance(mock, MockMeter)
    assert mock.curve.power_w == 800


# -- the mock meter ---------------------------------------------------------------------------


def test_the_mock_draws_its_curve_only_while_powered() -> None:
    curve = ChargingCurve(power_w=3600.0, taper_at_wh=100.0, taper_wh=50.0, standby_w=2.0)
    meter = MockMeter(curve, counter_wh=1000.0)
    assert meter.read(0.0) == Reading(0.0, 1000.0)
    assert meter.read(50.0) == Reading(0.0, 1000.0)  # off: nothing drawn
    meter.load_switched(True, 50.0)
    # Constant power: 3600 W for 60 s is 60 Wh.
    reading = meter.read(110.0)
    assert (reading.power_w, reading.energy_wh) == (3600.0, pytest.approx(1060.0))
    # Past 100 Wh it tapers towards standby, then stays there.
    reading = meter.read(160.0)
    assert 2.0 < reading.power_w < 3600.0
    reading = meter.read(1000.0)
    assert reading.power_w == 2.0
    counter = reading.energy_wh
    meter.load_switched(False, 1000.0)
    assert meter.read(2000.0) == Reading(0.0, counter)
    # A new charge starts the curve again; the counter keeps counting.
    meter.load_switched(True, 2000.0)
    reading = meter.read(2010.0)
    assert reading == Reading(3600.0, pytest.approx(counter + 10.0))


def test_the_curve() -> None:
    curve = ChargingCurve(power_w=1000.0, taper_at_wh=100.0, taper_wh=100.0, standby_w=0.0)
    assert [curve.power(wh) for wh in (0, 99.9, 100, 150, 200, 10_000)] == [
        1000.0,
        1000.0,
        1000.0,
        500.0,
        0.0,
        0.0,
    ]


# -- configuration ----------------------------------------------------------------------------


def _config_with(*meters: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        "broker": {"host": "127.0.0.1"},
        "node": {"id": "kiosk"},
        "bays": [
            {"id": f"bay-{index}", "pin": 17 + index, "meter": meter}
            for index, meter in enumerate(meters)
        ],
        **top,
    }


def test_a_meter_config_and_its_defaults() -> None:
    config = parse_config(
        _config_with(
            {"kind": "pzem004t", "port": "/dev/ttyAMA0", "address": 2, "max_power_w": 7400},
            {"kind": "mock"},
            report_step_wh=5,
            meter_poll_s=1.5,
        )
    )
    pzem, mock = (bay.meter for bay in config.bays)
    assert pzem == MeterConfig("pzem004t", 7400.0, "/dev/ttyAMA0", 2)
    assert mock == MeterConfig("mock", 3680.0)
    assert config.metering == MeteringConfig(report_step_wh=5.0, meter_poll_s=1.5)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (_config_with({"kind": "sdm120"}), "bays[0].meter.kind: must be one of pzem004t, mock"),
        (_config_with({"kind": "pzem004t"}), "bays[0].meter.port: required for a pzem004t"),
        (
            _config_with({"kind": "pzem004t", "port": "/dev/x", "address": 0}),
            "bays[0].meter.address: must be a Modbus address 1-247 or 248",
        ),
        (
            _config_with(
                {"kind": "pzem004t", "port": "/dev/x", "address": 3},
                {"kind": "pzem004t", "port": "/dev/x", "address": 3},
            ),
            "bays[1].meter.address: 3 on /dev/x is already used by bays[0]",
        ),
        (
            _config_with(
                {"kind": "pzem004t", "port": "/dev/x"},
                {"kind": "pzem004t", "port": "/dev/x", "address": 2},
            ),
            "bays[0].meter.address: several meters share /dev/x",
        ),
        (
            _config_with({"kind": "pzem004t", "port": "/dev/x", "power_w": 800}),
            "bays[0].meter.power_w: only for a mock meter",
        ),
        (
            _config_with({"kind": "mock", "port": "/dev/x"}),
            "bays[0].meter.port: only for a pzem004t meter",
        ),
        (
            _config_with({"kind": "mock", "max_power_w": 0}),
            "bays[0].meter.max_power_w: must be a number greater than 0",
        ),
        (
            _config_with({"kind": "mock"}, meter_poll_s=60),
            "meter_poll_s: 60 s must be shorter than meter_silent_s (60 s)",
        ),
        (_config_with({"kind": "mock"}, reset_wh=-1), "reset_wh: must be a number of at least 0"),
        (
            _config_with({"kind": "mock"}, report_step_wh=float("nan")),
            "report_step_wh: must be a finite number",
        ),
    ],
)
def test_a_bad_meter_config_names_its_key(config: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(config)
    assert problem in str(error.value)
