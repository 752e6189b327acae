"""A plan's price bands (issue #25), plain Python: as sold in a band, checked, stored as text."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from custom_components.qr_charging.catalog import (
    Plan,
    make_energy_plan,
    make_plan,
    make_rate_plan,
    plan_from_data,
    plan_to_data,
    with_bands,
)
from custom_components.qr_charging.catalog_errors import CatalogError

KOLKATA = ZoneInfo("Asia/Kolkata")
FIXED = make_plan("p30", "Half hour", 30, 2000)
RATE = make_rate_plan("pm", "Per minute", 50, 10, 120)
ENERGY = make_energy_plan(
    "kwh", "Per unit", price_per_kwh_paise=1500, min_paise=1000, max_paise=50000, cap_minutes=120
)


def test_a_plan_in_a_band_scales_every_price_half_a_paisa_up() -> None:
    (solar,) = with_bands(RATE, "09:00-16:00 70%").bands
    assert RATE.in_band(solar).minute_paise == 35  # shown per minute
    assert FIXED.in_band(solar).price_paise == 1400
    assert ENERGY.in_band(solar).price_per_kwh_paise == 1050
    (odd,) = with_bands(RATE, "09:00-16:00 33%").bands
    assert RATE.in_band(odd).minute_paise == 17  # 16.5 paise: half up
    assert RATE.in_band(odd).quote(20).price_paise == 330  # a total is rounded once
    assert RATE.in_band(None) is RATE
    # Minutes, bounds and amounts are what the plan sells, whatever the band.
    assert RATE.in_band(solar).quote(20).price_paise == 700
    assert ENERGY.in_band(solar).quote_energy(3000).energy_wh == 2858


def test_the_band_of_a_moment_is_by_the_sites_wall_clock() -> None:
    plan = with_bands(FIXED, "09:00-16:00 70%, 18:00-24:00 120%")

    def at(hour: int, minute: int, second: int = 0) -> int | None:
        moment = datetime(2026, 3, 9, hour, minute, second, tzinfo=KOLKATA).timestamp()
        band = plan.band_at(KOLKATA, moment)
        return band.percent if band else None

    assert [at(8, 59, 59), at(9, 0), at(15, 59, 59), at(16, 0)] == [None, 70, 70, None]
    assert [at(23, 59, 59), at(0, 0)] == [120, None]


@pytest.mark.parametrize(
    ("plan", "lowest", "refused"),
    [
        (FIXED, "5%", "4%"),  # ₹20 at 5% is ₹1
        (RATE, "20%", "19%"),  # ten minutes at 19% are 95 paise (rounded once, not per minute)
        (ENERGY, "1%", None),  # ₹15 a unit at 1% is 15 paise; amounts stay ₹10 at least
    ],
)
def test_a_band_must_sell_its_cheapest_purchase_for_a_rupee_at_least(
    plan: Plan, lowest: str, refused: str | None
) -> None:
    assert with_bands(plan, f"00:00-24:00 {lowest}").bands
    if refused is not None:
        with pytest.raises(CatalogError) as err:
            with_bands(plan, f"00:00-24:00 {refused}")
        assert (err.value.field, err.value.key) == ("bands", "band_below_minimum")


def test_a_per_kwh_price_banded_to_nothing_or_past_its_maximum_is_refused() -> None:
    cheap = make_energy_plan(
        "k", "k", price_per_kwh_paise=1, min_paise=100, max_paise=1000, cap_minutes=60
    )
    with pytest.raises(CatalogError, match="band_below_minimum"):
        with_bands(cheap, "00:00-24:00 10%")
    dear = make_energy_plan(
        "k", "k", price_per_kwh_paise=10_000, min_paise=100, max_paise=1000, cap_minutes=60
    )
    with pytest.raises(CatalogError, match="invalid_band_percent"):
        with_bands(dear, "00:00-24:00 101%")


@pytest.mark.parametrize("plan", [FIXED, RATE, ENERGY])
def test_bands_are_stored_as_text_only_when_set(plan: Plan) -> None:
    assert "bands" not in plan_to_data(plan)
    assert plan_from_data(plan_to_data(plan)) == plan
    banded = with_bands(plan, "18:00-24:00 120%, 09:00-16:00 70%")
    data = plan_to_data(banded)
    assert data == plan_to_data(plan) | {"bands": "09:00-16:00 70%, 18:00-24:00 120%"}
    assert plan_from_data(data) == banded
