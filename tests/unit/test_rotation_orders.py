"""The rules of working a rotation order and of re-dating a lot, without a database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from stockpile.domain.errors import Conflict, Invalid
from stockpile.domain.rotation_orders import (
    OrderProgress, check_extension, extension_cap_days, is_overdue, policy_errors, record_in, record_out, undo,
)

TODAY = date(2026, 6, 1)
fmt = str


def order(out_quantity=0, in_quantity=0, state="planned", quantity=100) -> OrderProgress:
    return OrderProgress("o-1", quantity, out_quantity, in_quantity, state)


def test_the_first_movement_puts_an_order_in_progress():
    assert record_out(order(), 40, fmt) == order(40, 0, "in_progress")
    assert record_in(order(), 40, fmt) == order(0, 40, "in_progress")


def test_an_order_completes_when_out_and_in_both_cover_its_quantity():
    assert record_in(order(100, 60, "in_progress"), 40, fmt).state == "completed"
    assert record_out(order(60, 100, "in_progress"), 40, fmt).state == "completed"
    assert record_out(order(0, 0), 100, fmt).state == "in_progress"  # nothing in yet


def test_no_movement_goes_past_what_is_left_of_the_order():
    with pytest.raises(Conflict) as refused:
        record_out(order(70, 0, "in_progress"), 31, fmt)
    assert (refused.value.extra["remaining"], refused.value.extra["requested"]) == ("30", "31")
    with pytest.raises(Conflict):
        record_in(order(0, 100, "in_progress"), 1, fmt)


@pytest.mark.parametrize("state", ["completed", "cancelled"])
def test_a_closed_order_takes_no_movements(state):
    with pytest.raises(Conflict):
        record_out(order(0, 0, state), 1, fmt)
    with pytest.raises(Conflict):
        record_in(order(0, 0, state), 1, fmt)


def test_a_reversal_reopens_a_completed_order_and_leaves_a_cancelled_one_cancelled():
    assert undo(order(100, 100, "completed"), "in", 30) == order(100, 70, "in_progress")
    assert undo(order(30, 0, "in_progress"), "out", 30) == order(0, 0, "planned")
    assert undo(order(30, 0, "cancelled"), "out", 30) == order(0, 0, "cancelled")
    with pytest.raises(ValueError):
        undo(order(10, 0, "in_progress"), "out", 11)


@pytest.mark.parametrize(("state", "out_q", "in_q", "out_by", "in_by", "late"), [
    ("planned", 0, 0, date(2026, 5, 31), date(2026, 6, 30), True),     # old stock should have left yesterday
    ("planned", 0, 0, date(2026, 6, 1), date(2026, 6, 30), False),     # due today is not late yet
    ("in_progress", 100, 0, date(2026, 5, 1), date(2026, 6, 30), False),  # out in full; fresh stock not due
    ("in_progress", 100, 50, date(2026, 5, 1), date(2026, 5, 31), True),  # fresh stock late
    ("cancelled", 0, 0, date(2026, 5, 1), date(2026, 5, 2), False),
    ("completed", 100, 100, date(2026, 5, 1), date(2026, 5, 2), False),
])
def test_an_open_order_is_overdue_when_a_deadline_passed_with_work_left(state, out_q, in_q, out_by, in_by, late):
    assert is_overdue(state, 100, out_q, in_q, out_by, in_by, TODAY) is late


def test_a_policy_needs_one_selector_a_trigger_and_sound_ratios():
    assert policy_errors(material="M", category=None, trigger_days_before_expiry=30, trigger_fraction_remaining=None,
                         max_out_share=Decimal("1")) == []
    fields = [e["field"] for e in policy_errors(material=None, category=None, trigger_days_before_expiry=None,
                                                trigger_fraction_remaining=Decimal("1"), max_out_share=Decimal("0"))]
    assert fields == ["material", "trigger_fraction_remaining", "max_out_share"]
    fields = [e["field"] for e in policy_errors(material="M", category="food", trigger_days_before_expiry=None,
                                                trigger_fraction_remaining=None, max_out_share=Decimal("0.25"))]
    assert fields == ["material", "trigger_days_before_expiry"]


def test_an_extension_is_later_and_within_the_cap():
    check_extension(date(2026, 6, 10), date(2026, 12, 7), 180)  # exactly the cap
    for new in (date(2026, 6, 10), date(2026, 6, 1), date(2026, 12, 8)):
        with pytest.raises(Invalid):
            check_extension(date(2026, 6, 10), new, 180)
    with pytest.raises(Invalid):
        check_extension(None, date(2027, 1, 1), 180)  # non-perishable
    with pytest.raises(Invalid):
        check_extension(date(2026, 6, 10), date(2026, 6, 11), None)  # nothing caps it


def test_the_policy_cap_wins_over_the_shelf_life():
    assert extension_cap_days(365, 1095) == 365
    assert extension_cap_days(None, 1095) == 1095
    assert extension_cap_days(None, None) is None
