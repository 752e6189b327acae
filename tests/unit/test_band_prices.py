"""A rate plan sold in a price band (#25): the total is rounded once, wherever it is computed.

The page's button (``templates/price.js.j2``, run in Node), the link's amount (``Plan.quote``)
and a static QR payment's time (``Plan.seconds_for``) agree to the paisa and the second.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.qr_charging.catalog import Plan, make_rate_plan, with_bands
from custom_components.qr_charging.sites import PriceBand, Span

PRICE_JS = Path(__file__).parents[2] / "custom_components/qr_charging/templates/price.js.j2"
NODE = shutil.which("node")
# A stand-in for the page's document: one Pay form per case, each input at its minutes.
PAGE = """
const cases = JSON.parse(process.argv[1]), shown = [];
const inputs = cases.map(([rate, pct, minutes], i) => {
  const button = {getAttribute: () => "{amount}", set textContent(t) { shown[i] = t; }};
  return {value: String(minutes), form: {querySelector: () => button},
          getAttribute: (name) => String(name === "data-rate" ? rate : pct),
          addEventListener: () => {}};
});
globalThis.document = {querySelectorAll: () => inputs};
"""

RATES = st.integers(1, 10_000)
PERCENTS = st.integers(1, 300)
MINUTES = st.integers(1, 24 * 60)


def _sold(rate: int, percent: int, low: int = 1, high: int = 24 * 60) -> Plan:
    plan = Plan("pm", "Per minute", kind="rate", rate_paise=rate, min_minutes=low, max_minutes=high)
    return plan.in_band(PriceBand(Span(9 * 60, 16 * 60), percent))


def test_a_rate_band_prices_the_minutes_not_each_minute_rounded() -> None:
    """70 % of ₹0.25/min for 4 h is ₹42.00, not 240 x 18 p = ₹43.20; ₹42 buys the 4 h."""
    sold = _sold(25, 70, 10, 240)

    assert sold.quote(240).price_paise == 4200
    assert sold.seconds_for(4200) == 240 * 60
    assert sold.minute_paise == 18  # what the page shows per minute: a display only


def test_a_static_qr_paying_the_minimum_price_buys_the_minimum_minutes() -> None:
    """7 p/min at 101 %: 15 minutes cost 106 p (106.05 rounded once); 106 p buys 15 minutes,
    not the 899 s that 106 p buys pro rata."""
    plan = with_bands(make_rate_plan("pm", "Per minute", 7, 15, 60), "09:00-16:00 101%")
    ((_, sold),) = plan.banded

    assert sold.quote(15).price_paise == 106
    assert sold.seconds_for(106) == 15 * 60
    assert sold.seconds_for(107) == 15 * 60 + 8  # pro rata beyond the covered minutes


@settings(max_examples=300, deadline=None)
@given(rate=RATES, percent=PERCENTS, minutes=MINUTES)
def test_link_amount_and_static_qr_time_agree_at_the_band_rate(
    rate: int, percent: int, minutes: int
) -> None:
    sold = _sold(rate, percent)
    exact = rate * minutes * percent  # hundredths of a paisa: base x percent

    price = sold.quote(minutes).price_paise
    # Rounded once, half a paisa up: never more than half a paisa over base x percent.
    assert price * 100 - 50 <= exact < price * 100 + 50
    seconds = sold.seconds_for(price)
    if price == 0 or seconds is None:
        assert price < sold.quote(1).price_paise or price == 0
        return
    # The link's price buys at least its minutes, though rounded half a paisa down.
    assert seconds >= minutes * 60
    # The QR's time at the band's exact rate, to the second (never above base x percent), or
    # the whole minutes whose rounded price the amount covers.
    prorata = seconds * rate * percent <= price * 6000
    assert prorata or (seconds % 60 == 0 and sold.rate_total(seconds // 60) <= price)
    assert seconds == sold.max_minutes * 60 or price * 6000 < (seconds + 1) * rate * percent


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
@settings(max_examples=5, deadline=None)
@given(cases=st.lists(st.tuples(RATES, PERCENTS, MINUTES), min_size=1, max_size=300))
def test_the_pages_total_is_the_links_amount(cases: list[tuple[int, int, int]]) -> None:
    script = PRICE_JS.read_text().split("<script>")[1].split("</script>")[0]
    assert NODE is not None
    run = subprocess.run(
        [NODE, "-e", PAGE + script + "console.log(JSON.stringify(shown));", json.dumps(cases)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    shown = json.loads(run.stdout)

    for (rate, percent, minutes), label in zip(cases, shown, strict=True):
        paise = _sold(rate, percent).quote(minutes).price_paise
        assert label == (f"₹{paise / 100:.2f}" if paise % 100 else f"₹{paise // 100}")
