"""Metered sessions' money and counting (``energy_rules``, ``ending_rules``): plain Python.

No Home Assistant, no clock: energy bought per payment, each end reason's refund to the
paisa, the counter's resets and faults, and a hypothesis test of the money rule.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.qr_charging.catalog import (
    make_energy_plan,
    plan_from_data,
    plan_to_data,
)
from custom_components.qr_charging.catalog_errors import CatalogError
from custom_components.qr_charging.ending_rules import Ending, RefundMode, apply_ending
from custom_components.qr_charging.energy_rules import (
    ENERGY_REACHED,
    METER_BACKWARDS,
    METER_FAULTS,
    METER_SILENT,
    RESOLUTION_WH,
    TIME_CAP,
    VEHICLE_FULL,
    EnergyCount,
    MeterBackwards,
    MeterImplausible,
    count,
    most_wh,
    plausible_wh,
)
from custom_components.qr_charging.ledger import Ledger
from custom_components.qr_charging.metering import DEFAULT_MAX_POWER_W, energy_wh_for
from custom_components.qr_charging.payment_rules import MIN_REFUND_PAISE
from custom_components.qr_charging.records import (
    PaymentRecord,
    PaymentState,
    SessionRecord,
    SessionState,
)
from custom_components.qr_charging.session_rules import (
    PaidDecision,
    decide_paid,
    on_command,
    top_up,
)

NOW = 1_000_000.0
PRICE = 1500  # ₹15 per kWh
CAP_S = 3 * 3600


def _payment(ledger: Ledger, payment_id: str, amount: int, price: int = PRICE) -> PaymentRecord:
    payment = PaymentRecord(
        payment_id,
        amount,
        "INR",
        NOW,
        PaymentState.SESSION,
        bay_id="bay-1",
        seconds=CAP_S,
        energy_wh=energy_wh_for(amount, price),
    )
    ledger.payments[payment_id] = payment
    return payment


def _metered(
    ledger: Ledger, session_id: str, payment_id: str, amount: int, price: int = PRICE
) -> SessionRecord:
    """An active session sold by the kWh, paid by one payment."""
    payment = _payment(ledger, payment_id, amount, price)
    session = SessionRecord(
        session_id=session_id,
        bay_id="bay-1",
        state=SessionState.ACTIVE,
        created_at=NOW - 60,
        seconds=CAP_S,
        paid_paise=amount,
        payment_ids=[payment_id],
        started_at=NOW - 60,
        until=NOW - 60 + CAP_S,
        energy_paid_wh=payment.energy_wh,
        price_per_kwh_paise=price,
    )
    payment.session_id = session_id
    ledger.sessions[session_id] = session
    return session


def _timed(ledger: Ledger) -> SessionRecord:
    """An active session of 20 minutes for ₹20, 10 of them left."""
    ledger.payments["pay_t"] = PaymentRecord(
        "pay_t", 2000, "INR", NOW, PaymentState.SESSION, bay_id="bay-1", seconds=1200
    )
    session = SessionRecord(
        session_id="s-t",
        bay_id="bay-1",
        state=SessionState.ACTIVE,
        created_at=NOW - 600,
        seconds=1200,
        paid_paise=2000,
        payment_ids=["pay_t"],
        started_at=NOW - 600,
        until=NOW + 600,
    )
    ledger.sessions["s-t"] = session
    return session


# -- what a payment buys -----------------------------------------------------------------------


def test_energy_bought_is_rounded_up_in_the_customers_favour() -> None:
    # ₹10 at ₹15/kWh is 666.67 Wh: the customer gets 667.
    assert energy_wh_for(1000, 1500) == 667
    assert energy_wh_for(1500, 1500) == 1000
    assert energy_wh_for(100, 700) == 143  # 142.86


def test_a_per_kwh_plan_quotes_amounts_within_its_bounds_and_stores_round_trip() -> None:
    plan = make_energy_plan(
        "kwh",
        "Per unit",
        price_per_kwh_paise=PRICE,
        min_paise=5000,
        max_paise=50000,
        cap_minutes=180,
    )
    quote = plan.quote_energy(15000)
    assert (quote.price_paise, quote.energy_wh, quote.seconds) == (15000, 10000, 180 * 60)
    for bad in (4999, 50001):
        with pytest.raises(CatalogError, match="invalid_amount"):
            plan.quote_energy(bad)
    with pytest.raises(CatalogError, match="invalid_amount"):
        plan.quote(None)  # sold by amount, never by minutes
    assert plan_from_data(plan_to_data(plan)) == plan


@pytest.mark.parametrize(
    ("price", "low", "high", "cap", "field"),
    [
        (0, 5000, 50000, 180, "price"),
        (10_001, 5000, 50000, 180, "price"),
        (PRICE, 99, 50000, 180, "min_amount"),
        (PRICE, 5000, 4999, 180, "max_amount"),
        (PRICE, 5000, 50000, 0, "minutes"),
        (PRICE, 5000, 50000, 1441, "minutes"),
    ],
)
def test_a_bad_per_kwh_plan_is_refused_naming_its_field(
    price: int, low: int, high: int, cap: int, field: str
) -> None:
    with pytest.raises(CatalogError) as err:
        make_energy_plan(
            "kwh", "", price_per_kwh_paise=price, min_paise=low, max_paise=high, cap_minutes=cap
        )
    assert err.value.field == field


def test_energy_needs_a_metered_bay_and_never_tops_up_time() -> None:
    ledger = Ledger()
    new = _metered(ledger, "s-new", "pay_1", 3000)
    new.state = SessionState.PAID
    args = {"online": True, "limit_s": 4 * 3600, "now": NOW, "margin_s": 22.0}
    assert decide_paid(None, new, **args) is PaidDecision.REFUSE_NO_METER
    assert decide_paid(None, new, metered=True, **args) is PaidDecision.START
    # Energy does not add to a session sold by time (nor time to one sold by energy).
    assert decide_paid(_timed(ledger), new, metered=True, **args) is PaidDecision.REFUSE_BUSY


def test_a_top_up_adds_its_energy_and_the_on_command_carries_it() -> None:
    ledger = Ledger()
    running = _metered(ledger, "s-1", "pay_1", 1500)  # 1000 Wh
    new = _metered(ledger, "s-2", "pay_2", 750)  # 500 Wh
    command = top_up(ledger, running, new, NOW)
    assert running.energy_paid_wh == 1500
    assert command.energy_wh == 1500.0
    assert on_command(_timed(ledger), NOW).energy_wh is None  # a timed session: no energy


# -- each end reason's refund ------------------------------------------------------------------


def test_energy_reached_refunds_nothing_even_when_the_meter_overshoots() -> None:
    ledger = Ledger()
    session = _metered(ledger, "s-1", "pay_1", 1500)  # 1000 Wh
    ending = Ending.metered(ENERGY_REACHED, session, prorata=True).measured(1003.6)
    assert apply_ending(ledger, session, ending, NOW) == []
    assert (session.state, session.end_reason) == (SessionState.ENDED, ENERGY_REACHED)
    assert session.energy_used_wh == 1003.6


def test_vehicle_full_refunds_the_unused_energy_at_its_price() -> None:
    ledger = Ledger()
    session = _metered(ledger, "s-1", "pay_1", 3000)  # 2000 Wh for ₹30
    ending = Ending.metered(VEHICLE_FULL, session, prorata=False).measured(523.9)
    # 523 whole Wh billed, 1477 unused: ₹30 * 1477 / 2000 = 2215.5 paise, rounded down.
    assert apply_ending(ledger, session, ending, NOW) == [("pay_1", 2215)]
    assert session.paid_paise == 3000 - 2215


def test_a_meter_fault_bills_only_the_measured_energy() -> None:
    ledger = Ledger()
    session = _metered(ledger, "s-1", "pay_1", 3000)
    for reason in sorted(METER_FAULTS):
        ending = Ending.metered(reason, session, prorata=False)
        assert (ending.send_off, ending.refund) == (True, RefundMode.PRORATA)
    ending = Ending.metered(METER_SILENT, session, prorata=False).measured(100.0)
    assert apply_ending(ledger, session, ending, NOW) == [("pay_1", 2850)]  # 1900 of 2000 Wh


def test_the_time_cap_refunds_unused_energy_and_a_timed_deadline_nothing() -> None:
    ledger = Ledger()
    session = _metered(ledger, "s-1", "pay_1", 3000)
    assert session.until is not None
    ending = Ending.deadline(session, send_off=False).measured(1000.0)
    assert ending.reason == TIME_CAP
    assert apply_ending(ledger, session, ending, NOW) is None  # the cap is still ahead
    assert apply_ending(ledger, session, ending, session.until) == [("pay_1", 1500)]
    timed = _timed(ledger)
    assert Ending.deadline(timed, send_off=True).refund is RefundMode.NONE


def test_a_stop_or_power_cut_of_a_metered_session_refunds_unused_energy_not_time() -> None:
    ledger = Ledger()
    session = _metered(ledger, "s-1", "pay_1", 3000)
    cut = Ending.end("power_cut", send_off=True, refund=RefundMode.PRORATA).measured(500.0)
    assert apply_ending(ledger, session, cut, NOW) == [("pay_1", 2250)]


def test_a_timed_session_on_a_metered_bay_gets_unused_minutes_with_the_option() -> None:
    ledger = Ledger()
    full = Ending.metered(VEHICLE_FULL, _timed(ledger), prorata=True)
    assert apply_ending(ledger, ledger.sessions["s-t"], full, NOW) == [("pay_t", 1000)]
    other = Ledger()
    kept = Ending.metered(VEHICLE_FULL, _timed(other), prorata=False)
    assert apply_ending(other, other.sessions["s-t"], kept, NOW) == []


def test_refunds_are_priced_per_payment_newest_first() -> None:
    ledger = Ledger()
    running = _metered(ledger, "s-1", "pay_1", 1500)  # 1000 Wh at ₹15/kWh
    # A top-up sold when the price was ₹20/kWh: ₹10 bought 500 Wh.
    dear = _payment(ledger, "pay_2", 1000, price=2000)
    new = SessionRecord(
        session_id="s-2",
        bay_id="bay-1",
        state=SessionState.PAID,
        created_at=NOW,
        seconds=CAP_S,
        paid_paise=1000,
        payment_ids=["pay_2"],
        energy_paid_wh=dear.energy_wh,
        price_per_kwh_paise=2000,
    )
    ledger.sessions["s-2"] = new
    top_up(ledger, running, new, NOW)
    ending = Ending.metered(VEHICLE_FULL, running, prorata=True).measured(800.0)
    # 700 Wh unused: the newest payment's 500 Wh (₹10 whole), then 200 Wh of the first (₹3).
    assert apply_ending(ledger, running, ending, NOW) == [("pay_2", 1000), ("pay_1", 300)]


# -- counting ----------------------------------------------------------------------------------


def test_counting_adds_increases_and_carries_on_over_a_reset() -> None:
    state = count(None, 12_000.0, NOW)
    assert state == EnergyCount(0.0, 12_000.0, NOW)
    state = count(state, 12_250.0, NOW + 600)
    state = count(state, 30.0, NOW + 630)  # the plug restarted: 30 Wh since, at 3.6 kW
    state = count(state, 80.0, NOW + 690)
    assert (state.counted_wh, state.last_wh) == (330.0, 80.0)


def test_a_drop_and_a_return_to_the_old_counter_is_a_glitch_counted_from_it() -> None:
    state = count(None, 12_000.0, NOW)
    state = count(state, 12_100.0, NOW + 400)
    state = count(state, 0.0, NOW + 401)  # the sensor says 0 once (a template's float(0))
    state = count(state, 12_101.0, NOW + 402)  # and its lifetime counter again
    assert (state.counted_wh, state.dropped) == (101.0, None)


def test_a_real_reset_counting_up_past_the_old_counter_keeps_counting() -> None:
    state = count(None, 40.0, NOW)  # a counter since the plug's boot
    state = count(state, 5.0, NOW + 10)  # it restarted
    state = count(state, 45.0, NOW + 60)  # 40 Wh in 50 s (2.9 kW): drawn, no glitch
    assert (state.counted_wh, state.dropped) == (45.0, None)


def test_counting_refuses_what_the_maximum_power_cannot_explain_and_invalid_readings() -> None:
    state = count(None, 500.0, NOW)
    with pytest.raises(MeterBackwards):
        count(state, 400.0, NOW + 1)  # no reset counts 400 Wh in a second
    assert count(state, 400.0, NOW + 300).counted_wh == 400.0  # in 5 minutes at 4.8 kW it can
    with pytest.raises(MeterImplausible):
        count(state, 1_000_500.0, NOW + 2)
    with pytest.raises(MeterImplausible):
        count(state, 600.0, NOW + 10, max_power_w=1000)  # 100 Wh > 1 kW x 10 s + 10 Wh
    for bad in (math.nan, math.inf, -1.0):
        with pytest.raises(ValueError, match="invalid meter reading"):
            count(state, bad, NOW + 1)


def test_an_agents_energy_beyond_paid_or_its_power_is_implausible() -> None:
    assert plausible_wh(2010.0, 2000, 3600, 3680) is None
    assert plausible_wh(2011.0, 2000, 3600, 3680) == 2010.0
    # 1e308 Wh a minute after the start of a 2 kWh session: at most 3.68 kW for 90 s.
    assert plausible_wh(1e308, 2000, 60, 3680) == pytest.approx(3680 * 90 / 3600 + 10)
    assert plausible_wh(1e308, 0, 60, None) is None  # a timed session, no maximum named


@settings(max_examples=200, deadline=None)
@given(
    counter=st.floats(min_value=1000, max_value=1e7),
    drawn=st.lists(st.floats(min_value=0, max_value=100), max_size=10),
    blip=st.floats(min_value=0, max_value=RESOLUTION_WH),
    at=st.integers(min_value=0, max_value=10),
)
def test_a_glitch_anywhere_adds_nothing(
    counter: float, drawn: list[float], blip: float, at: int
) -> None:
    """A blip to near 0 and back, at any point of a charge, counts what the charge alone does."""
    readings, last = [counter], counter
    for wh in drawn:
        last += wh
        readings.append(last)
    at %= len(readings)  # after any reading, then back to it
    with_blip = [*readings[: at + 1], blip, *readings[at:]]

    def counted(values: list[float]) -> float:
        state: EnergyCount | None = None
        for i, value in enumerate(values):
            state = count(state, value, NOW + 60 * i)
        assert state is not None
        return state.counted_wh

    # The blip's readings take a minute each too: the charge alone is given the same time.
    assert counted(with_blip) == pytest.approx(last - counter)


# -- the money rule ----------------------------------------------------------------------------

# A metered plug's readings: (seconds since the last one, what it does).
_STEPS = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=900),
        st.one_of(
            st.tuples(st.just("rise"), st.floats(min_value=0, max_value=3000)),
            st.tuples(st.just("reset"), st.floats(min_value=0, max_value=50)),
            st.tuples(st.just("blip"), st.floats(min_value=0, max_value=5)),  # a glitch
            st.tuples(st.just("jump"), st.floats(min_value=0, max_value=1e9)),
            st.tuples(st.just("bad"), st.sampled_from([math.nan, math.inf, -5.0])),
        ),
    ),
    max_size=30,
)


def _readings(steps: list[tuple[float, tuple[str, float]]]) -> list[tuple[float, float]]:
    """The (time, counter) readings the steps make, from 12 kWh at ``NOW``."""
    at, last, readings = NOW, 12_000.0, [(NOW, 12_000.0)]
    for seconds, (kind, value) in steps:
        at += seconds
        if kind == "blip":  # a wrong value for a moment, then the counter as it was
            readings += [(at, value), (at + 1, last)]
            continue
        reading = {"rise": last + value, "reset": value}.get(kind, value)
        readings.append((at, reading))
        last = reading if math.isfinite(reading) and reading >= 0 else last
    return readings


@settings(max_examples=300, deadline=None)
@given(
    price=st.integers(min_value=100, max_value=5000),
    amounts=st.lists(st.integers(min_value=100, max_value=100_000), min_size=1, max_size=5),
    steps=_STEPS,
    reason=st.sampled_from(
        [ENERGY_REACHED, VEHICLE_FULL, TIME_CAP, METER_SILENT, METER_BACKWARDS, "stopped"]
    ),
)
def test_paid_is_used_plus_refunded_plus_kept(
    price: int, amounts: list[int], steps: list[tuple[float, tuple[str, float]]], reason: str
) -> None:
    """For any payments, readings (rises, resets, glitches, jumps) and stop: paid = used +
    refunded + kept under ₹1; and nothing is counted that the plug's maximum power could not
    draw.

    ``used`` is priced independently, oldest payment first, at each payment's own price: no
    payment is ever charged more than the Wh it served at the plan's price, rounded up.
    """
    ledger = Ledger()
    session = _metered(ledger, "s-0", "pay_0", amounts[0], price)
    payments = [ledger.payments["pay_0"]]
    payments += [_payment(ledger, f"pay_{i}", a, price) for i, a in enumerate(amounts) if i]
    for i in range(1, len(amounts)):
        new = SessionRecord(
            session_id=f"s-{i}",
            bay_id="bay-1",
            state=SessionState.PAID,
            created_at=NOW,
            seconds=0,
            paid_paise=amounts[i],
            payment_ids=[f"pay_{i}"],
            energy_paid_wh=payments[i].energy_wh,
            price_per_kwh_paise=price,
        )
        ledger.sessions[new.session_id] = new
        top_up(ledger, session, new, NOW)
    state: EnergyCount | None = None
    readings = _readings(steps)
    for reading_at, reading in readings:
        try:
            state = count(state, reading, reading_at)
        except ValueError:  # a fault: the session ends with what was measured before it
            break
    counted = state.counted_wh if state is not None else 0.0
    # Each reading adds at most the maximum power over its time and one resolution step.
    assert counted <= most_wh(DEFAULT_MAX_POWER_W, readings[-1][0] - NOW, 0) + RESOLUTION_WH * (
        len(readings) - 1
    )
    assert session.until is not None
    if reason == TIME_CAP:
        ending, at = Ending.deadline(session, send_off=True), session.until
    elif reason == "stopped":
        ending, at = Ending.stop(RefundMode.PRORATA, powered=True), NOW
    else:
        ending, at = Ending.metered(reason, session, prorata=True), NOW
    parts = apply_ending(ledger, session, ending.measured(counted), at)
    assert parts is not None
    refunded = sum(p for _, p in parts if p >= MIN_REFUND_PAISE)
    kept = sum(p for _, p in parts if p < MIN_REFUND_PAISE)
    # Used, oldest payment first, each at its own price, rounded up to the paisa.
    left = min(math.floor(counted), session.energy_paid_wh)
    used = 0
    for payment in payments:
        served = min(left, payment.energy_wh)
        left -= served
        cost = -(-payment.amount * served // payment.energy_wh)
        assert cost <= -(-served * price // 1000)  # never more than its Wh at the price
        used += cost
    assert sum(amounts) == used + refunded + kept
    assert session.paid_paise == used
    if counted >= session.energy_paid_wh:
        assert parts == []
