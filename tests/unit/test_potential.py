"""Days of supply with capacity mobilised from its lead day, and capacity tasked after stock —
against hand-worked examples."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from stockpile.domain.potential import (
    Need, Output, Tasked, capacity_military, days_with_capacity, output_by, plan_taskings, survey_overdue,
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
FAR_PLANT = Tasked(key=2, material_id=7, daily=5000, lead_days=1, region_ids=frozenset({20, 1}))


def need(request_id: str, priority: str, in_days: int, unmet: int, region: int = 10) -> Need:
    return Need(request_id, priority, TODAY + timedelta(days=in_days), frozenset({7}), unmet, region)


def test_a_capacity_delivers_from_its_lead_day_to_the_need_date():
    assert output_by(REFINERY, TODAY, TODAY + timedelta(days=2)) == 0
    assert output_by(REFINERY, TODAY, TODAY + timedelta(days=3)) == 1000
    assert output_by(REFINERY, TODAY, TODAY + timedelta(days=5)) == 3000


def test_capacity_is_tasked_only_where_its_lead_time_fits_the_need_date():
    assert plan_taskings([need("a", "flash", 2, 500)], [REFINERY], TODAY) == []
    [tasking] = plan_taskings([need("a", "flash", 5, 2500)], [REFINERY], TODAY)
    # three days of output needed (days 3, 4, 5): tasked today, ready on day 3
    assert (tasking.capacity, tasking.quantity, tasking.start_on, tasking.ready_on, tasking.due_on) == (
        1, 2500, TODAY, TODAY + timedelta(days=3), TODAY + timedelta(days=5))


def test_a_tasking_starts_on_the_latest_day_that_still_delivers_by_the_need_date():
    [tasking] = plan_taskings([need("a", "routine", 10, 1500)], [REFINERY], TODAY)
    # two days of output (days 9 and 10) need the first on day 9: tasked on day 6
    assert (tasking.start_on, tasking.ready_on) == (TODAY + timedelta(days=6), TODAY + timedelta(days=9))


def test_higher_priorities_are_tasked_first_and_no_capacity_is_promised_twice():
    taskings = plan_taskings([need("routine", "routine", 4, 2000), need("flash", "flash", 4, 1500)],
                             [REFINERY], TODAY)
    assert [(t.request_id, t.quantity) for t in taskings] == [("flash", 1500), ("routine", 500)]


def test_capacity_delivering_to_the_destinations_region_is_tasked_before_a_faster_one_elsewhere():
    taskings = plan_taskings([need("a", "flash", 5, 4000)], [FAR_PLANT, REFINERY], TODAY)
    assert [(t.capacity, t.quantity) for t in taskings] == [(1, 3000), (2, 1000)]
