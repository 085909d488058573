"""Days of supply with capacity mobilised from its lead day, and a capacity's output by a day —
against hand-worked examples."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from stockpile.domain.potential import (
    Output, Tasked, capacity_military, days_with_capacity, output_by, survey_overdue,
)

TODAY = date(2026, 12, 3)


def days(stock: str, need: str, *outputs: tuple[int, str]):
    return days_with_capacity(Decimal(stock), Decimal(need), [Output(lead, Decimal(d)) for lead, d in outputs])


def test_stock_alone_lasts_stock_over_the_daily_need():
    supply = days("1000", "100")
    assert (supply.without, supply.with_capacity, supply.sustained) == (Decimal("10.0"), Decimal("10.0"), False)


def test_capacity_from_its_lead_day_slows_the_draw_down():
    # day 4: 600 left, then −50 a day: 12 more days
    assert days("1000", "100", (4, "50")).with_capacity == Decimal("16.0")


def test_capacity_whose_lead_is_longer_than_the_stock_lasts_adds_nothing():
    assert days("1000", "100", (12, "500")).with_capacity == Decimal("10.0")


def test_capacities_that_keep_up_with_the_need_sustain_the_reserve():
    # day 4: 600 left, −50 a day; day 8: 400 left, +10 a day: never runs out
    supply = days("1000", "100", (8, "60"), (4, "50"))
    assert (supply.with_capacity, supply.sustained) == (None, True)


def test_capacities_of_one_lead_day_add_up():
    # day 2: 800 left, −40 a day: 20 more days
    assert days("1000", "100", (2, "30"), (2, "30")).with_capacity == Decimal("22.0")


def test_days_are_counted_to_a_tenth():
    supply = days("1000", "300", (1, "100"))  # 3.33… alone; day 1: 700 left, −200 a day: 4.5
    assert (supply.without, supply.with_capacity) == (Decimal("3.3"), Decimal("4.5"))


def test_no_stock_and_no_capacity_lasts_no_day():
    assert days("0", "10").with_capacity == Decimal("0.0")


def test_a_positive_daily_need_is_required():
    with pytest.raises(ValueError):
        days("10", "0")


def test_a_capacity_of_a_military_party_or_held_for_the_military_is_military():
    assert capacity_military("military", None) and capacity_military("enterprise", "military")
    assert not capacity_military("enterprise", "civilian") and not capacity_military("civilian", None)


def test_a_survey_is_overdue_only_after_its_interval():
    assert not survey_overdue(TODAY - timedelta(days=30), 30, TODAY)
    assert survey_overdue(TODAY - timedelta(days=31), 30, TODAY)


REFINERY = Tasked(key=1, material_id=7, daily=1000, lead_days=3, region_ids=frozenset({10, 1}))


def test_a_capacity_delivers_from_its_lead_day_to_the_need_date():
    assert output_by(REFINERY, TODAY, TODAY + timedelta(days=2)) == 0
    assert output_by(REFINERY, TODAY, TODAY + timedelta(days=3)) == 1000
    assert output_by(REFINERY, TODAY, TODAY + timedelta(days=5)) == 3000
