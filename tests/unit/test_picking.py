"""First-expiring-first picking: which lots an issue without a lot draws from."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from stockpile.domain.errors import InsufficientStock
from stockpile.domain.ledger import Position, pick_first_expiring

TODAY = date(2026, 11, 22)


def lot(account_id: int, balance: int, *, expires_on: date | None = date(2028, 1, 1), status: str = "available",
        reserved: int = 0, code: str | None = None, decimals: int = 1) -> Position:
    return Position(
        account_id=account_id, lot_id=f"lot-{account_id}", lot_code=code or f"L{account_id:02d}", owner_id=1,
        owner_code="CIV", material_id=7, decimals=decimals, balance=balance, reserved=reserved, status=status,
        expires_on=expires_on,
    )


def picked(positions: list[Position], quantity: int) -> list[tuple[int, int]]:
    return [(position.account_id, take) for position, take in pick_first_expiring(positions, quantity, TODAY)]


def test_prefers_lots_that_expire_first():
    later, sooner, soonest = (lot(1, 100, expires_on=date(2029, 1, 1)), lot(2, 100, expires_on=date(2028, 1, 1)),
                              lot(3, 100, expires_on=date(2027, 1, 1)))
    assert picked([later, sooner, soonest], 50) == [(3, 50)]


def test_spans_several_lots_in_expiry_order_when_one_is_not_enough():
    positions = [lot(1, 30, expires_on=date(2029, 1, 1)), lot(2, 40, expires_on=date(2027, 6, 1)),
                 lot(3, 50, expires_on=date(2028, 1, 1))]
    assert picked(positions, 100) == [(2, 40), (3, 50), (1, 10)]


def test_takes_a_lot_exactly_and_stops_there():
    positions = [lot(1, 40, expires_on=date(2027, 1, 1)), lot(2, 40, expires_on=date(2028, 1, 1))]
    assert picked(positions, 40) == [(1, 40)]


def test_can_take_everything_that_is_usable():
    positions = [lot(1, 40, expires_on=date(2027, 1, 1)), lot(2, 60, expires_on=None)]
    assert picked(positions, 100) == [(1, 40), (2, 60)]


def test_skips_expired_lots_including_one_expiring_today():
    positions = [lot(1, 100, expires_on=TODAY - timedelta(days=30)), lot(2, 100, expires_on=TODAY),
                 lot(3, 100, expires_on=TODAY + timedelta(days=1))]
    assert picked(positions, 60) == [(3, 60)]


@pytest.mark.parametrize("status", ["quarantine", "recalled"])
def test_skips_quarantined_and_recalled_lots_even_when_they_expire_first(status):
    positions = [lot(1, 100, expires_on=date(2027, 1, 1), status=status), lot(2, 100, expires_on=date(2029, 1, 1))]
    assert picked(positions, 60) == [(2, 60)]


def test_skips_lots_with_nothing_available():
    positions = [lot(1, 0, expires_on=date(2027, 1, 1)), lot(2, 50, reserved=50, expires_on=date(2027, 2, 1)),
                 lot(3, 80, expires_on=date(2029, 1, 1))]
    assert picked(positions, 10) == [(3, 10)]


def test_takes_only_what_is_not_reserved():
    positions = [lot(1, 100, reserved=70, expires_on=date(2027, 1, 1)), lot(2, 100, expires_on=date(2029, 1, 1))]
    assert picked(positions, 50) == [(1, 30), (2, 20)]


def test_non_perishables_come_last():
    forever, far, near = lot(1, 100, expires_on=None), lot(2, 100, expires_on=date(2060, 1, 1)), lot(3, 10, expires_on=date(2027, 1, 1))
    assert picked([forever, far, near], 150) == [(3, 10), (2, 100), (1, 40)]


def test_non_perishables_alone_are_picked_by_lot_code():
    positions = [lot(1, 10, expires_on=None, code="B"), lot(2, 10, expires_on=None, code="A")]
    assert picked(positions, 15) == [(2, 10), (1, 5)]


def test_lots_expiring_the_same_day_are_picked_by_lot_code_so_the_choice_is_stable():
    same_day = date(2028, 3, 1)
    positions = [lot(1, 10, expires_on=same_day, code="Z"), lot(2, 10, expires_on=same_day, code="M"),
                 lot(3, 10, expires_on=same_day, code="A")]
    assert picked(positions, 25) == [(3, 10), (2, 10), (1, 5)]
    assert picked(list(reversed(positions)), 25) == [(3, 10), (2, 10), (1, 5)]


def test_raises_insufficient_stock_with_the_usable_total():
    positions = [lot(1, 30, reserved=10), lot(2, 50, status="recalled"), lot(3, 40, expires_on=TODAY),
                 lot(4, 15, expires_on=None)]
    with pytest.raises(InsufficientStock) as short:
        pick_first_expiring(positions, 36, TODAY)
    assert short.value.type == "insufficient-stock"
    assert short.value.extra["available"] == "3.5"  # 20 + 15 usable units of a 1-decimal material
    assert short.value.extra["requested"] == "3.6"


def test_when_nothing_is_usable_the_usable_total_is_zero():
    with pytest.raises(InsufficientStock) as short:
        pick_first_expiring([lot(1, 100, status="quarantine", decimals=3)], 1, TODAY)
    assert short.value.extra["available"] == "0.000" and short.value.extra["requested"] == "0.001"


def test_with_no_lots_at_all_there_is_nothing_available():
    with pytest.raises(InsufficientStock) as short:
        pick_first_expiring([], 5, TODAY)
    assert short.value.extra["available"] == "0"


def test_picking_reads_the_positions_and_changes_none_of_them():
    positions = [lot(1, 30, expires_on=date(2027, 1, 1)), lot(2, 30, expires_on=date(2028, 1, 1))]
    before = list(positions)
    picked(positions, 45)
    assert positions == before and [p.balance for p in positions] == [30, 30]
