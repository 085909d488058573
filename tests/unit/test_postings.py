"""The postings each kind of movement makes: exact accounts and deltas, always balanced per material."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from stockpile.domain import ledger as rules
from stockpile.domain.errors import Conflict, InsufficientStock, Invalid, UnusableLot
from stockpile.domain.ledger import Position, Posting

TODAY = date(2026, 11, 22)
DIESEL = 7


def position(account_id: int, balance: int, *, reserved: int = 0, lot: str = "lot-a", owner_id: int = 1,
             status: str = "available", expires_on: date | None = date(2028, 1, 1), material_id: int = DIESEL,
             decimals: int = 1) -> Position:
    return Position(
        account_id=account_id, lot_id=lot, lot_code=lot.upper(), owner_id=owner_id, owner_code=f"OWNER-{owner_id}",
        material_id=material_id, decimals=decimals, balance=balance, reserved=reserved, status=status,
        expires_on=expires_on,
    )


def stock(account_id: int, delta: int, material_id: int = DIESEL) -> Posting:
    return Posting(material_id, delta, account_id=account_id)


def external(kind: str, delta: int, material_id: int = DIESEL) -> Posting:
    return Posting(material_id, delta, external=kind)


def balanced(postings: list[Posting]) -> list[Posting]:
    """Guarantee 2, checked on every result: the postings sum to zero per material."""
    rules.assert_balanced(postings)
    totals: dict[int, int] = {}
    for p in postings:
        totals[p.material_id] = totals.get(p.material_id, 0) + p.delta
    assert all(total == 0 for total in totals.values())
    return postings


# -- receipt -----------------------------------------------------------------------------------

def test_a_receipt_moves_stock_from_supply_into_the_position():
    assert balanced(rules.receipt_postings(position(1, 0), 120005)) == [stock(1, 120005), external("supply", -120005)]


def test_a_receipt_tops_up_a_position_that_already_holds_stock():
    assert balanced(rules.receipt_postings(position(1, 500, reserved=200), 30)) == [stock(1, 30), external("supply", -30)]


# -- issue -------------------------------------------------------------------------------------

def test_an_issue_from_one_lot_goes_to_consumption():
    assert balanced(rules.issue_postings([(position(1, 100), 40)], TODAY)) == [stock(1, -40), external("consumption", 40)]


def test_an_issue_across_several_lots_posts_each_lot_to_consumption():
    picks = rules.pick_first_expiring(
        [position(1, 30, lot="late", expires_on=date(2029, 1, 1)), position(2, 20, lot="early", expires_on=date(2027, 1, 1))],
        45, TODAY)
    assert balanced(rules.issue_postings(picks, TODAY)) == [
        stock(2, -20), external("consumption", 20), stock(1, -25), external("consumption", 25)]


def test_an_issue_can_go_to_another_external_account():
    assert balanced(rules.issue_postings([(position(1, 100), 5)], TODAY, to="loss")) == [stock(1, -5), external("loss", 5)]


def test_an_issue_may_take_all_that_is_available():
    assert balanced(rules.issue_postings([(position(1, 100, reserved=40), 60)], TODAY)) == [
        stock(1, -60), external("consumption", 60)]


def test_an_issue_cannot_take_more_than_is_available():
    with pytest.raises(InsufficientStock) as short:
        rules.issue_postings([(position(1, 100, reserved=40), 61)], TODAY)
    assert short.value.extra == {"available": "6.0", "requested": "6.1", "lot_id": "lot-a", "owner": "OWNER-1"}


@pytest.mark.parametrize(("status", "expires_on", "reason"), [
    ("quarantine", date(2028, 1, 1), "quarantine"),
    ("recalled", date(2028, 1, 1), "recalled"),
    ("available", TODAY, "expired"),
    ("available", date(2020, 1, 1), "expired"),
])
def test_an_issue_from_an_unusable_lot_is_refused_with_the_reason(status, expires_on, reason):
    with pytest.raises(UnusableLot) as refused:
        rules.issue_postings([(position(1, 100, status=status, expires_on=expires_on), 1)], TODAY)
    assert refused.value.type == "unusable-lot"
    assert refused.value.extra == {"lot_id": "lot-a", "reason": reason}


def test_a_non_perishable_lot_never_expires():
    assert balanced(rules.issue_postings([(position(1, 10, expires_on=None), 10)], date(2199, 1, 1))) == [
        stock(1, -10), external("consumption", 10)]


# -- adjustment (physical count) ---------------------------------------------------------------

def test_a_count_above_the_balance_posts_the_gain_from_adjustment():
    assert balanced(rules.adjustment_postings(position(1, 100), 130)) == [stock(1, 30), external("adjustment", -30)]


def test_a_count_below_the_balance_posts_the_shortfall_to_loss():
    assert balanced(rules.adjustment_postings(position(1, 100), 75)) == [stock(1, -25), external("loss", 25)]


def test_a_count_equal_to_the_balance_posts_nothing():
    assert rules.adjustment_postings(position(1, 100), 100) == []


def test_a_count_of_zero_empties_the_position_into_loss():
    assert balanced(rules.adjustment_postings(position(1, 100), 0)) == [stock(1, -100), external("loss", 100)]


def test_a_count_into_an_empty_position_comes_from_adjustment():
    assert balanced(rules.adjustment_postings(position(1, 0), 12)) == [stock(1, 12), external("adjustment", -12)]


def test_a_count_may_go_down_to_what_is_reserved():
    assert balanced(rules.adjustment_postings(position(1, 100, reserved=60), 60)) == [stock(1, -40), external("loss", 40)]


def test_a_count_below_what_is_reserved_is_a_conflict():
    with pytest.raises(Conflict) as refused:
        rules.adjustment_postings(position(1, 100, reserved=60), 59)
    assert refused.value.type == "conflict" and refused.value.extra == {"reserved": "6.0"}


def test_a_count_is_allowed_on_unusable_stock():
    quarantined = position(1, 100, status="quarantine", expires_on=date(2020, 1, 1))
    assert balanced(rules.adjustment_postings(quarantined, 90)) == [stock(1, -10), external("loss", 10)]


# -- write-off ---------------------------------------------------------------------------------

def test_a_write_off_posts_the_quantity_to_loss():
    assert balanced(rules.write_off_postings(position(1, 100), 35)) == [stock(1, -35), external("loss", 35)]


@pytest.mark.parametrize(("status", "expires_on"), [
    ("quarantine", date(2028, 1, 1)), ("recalled", date(2028, 1, 1)), ("available", date(2020, 1, 1)),
])
def test_a_write_off_is_allowed_on_expired_quarantined_and_recalled_lots(status, expires_on):
    unusable = position(1, 100, status=status, expires_on=expires_on)
    assert balanced(rules.write_off_postings(unusable, 100)) == [stock(1, -100), external("loss", 100)]


def test_a_write_off_cannot_take_reserved_stock():
    with pytest.raises(InsufficientStock) as short:
        rules.write_off_postings(position(1, 100, reserved=30), 71)
    assert short.value.extra["available"] == "7.0"


# -- ownership transfer ------------------------------------------------------------------------

def test_an_ownership_transfer_moves_title_between_two_positions_in_one_lot():
    source, target = position(1, 100), position(2, 10, owner_id=2)
    assert balanced(rules.ownership_transfer_postings(source, target, 40)) == [stock(1, -40), stock(2, 40)]


def test_an_ownership_transfer_touches_no_external_account():
    postings = rules.ownership_transfer_postings(position(1, 100), position(2, 0, owner_id=2), 100)
    assert all(p.external is None for p in postings)


def test_an_ownership_transfer_is_allowed_on_unusable_stock():
    recalled = position(1, 100, status="recalled")
    assert balanced(rules.ownership_transfer_postings(recalled, replace(recalled, account_id=2, owner_id=2), 5)) == [
        stock(1, -5), stock(2, 5)]


def test_an_ownership_transfer_cannot_give_away_more_than_is_available():
    with pytest.raises(InsufficientStock) as short:
        rules.ownership_transfer_postings(position(1, 100, reserved=90), position(2, 0, owner_id=2), 11)
    assert short.value.extra["available"] == "1.0" and short.value.extra["owner"] == "OWNER-1"


def test_an_ownership_transfer_to_the_same_owner_is_invalid():
    with pytest.raises(Invalid) as refused:
        rules.ownership_transfer_postings(position(1, 100), position(1, 100), 1)
    assert refused.value.errors == [{"field": "to_owner", "message": "must differ from from_owner"}]


def test_an_ownership_transfer_never_crosses_lots():
    with pytest.raises(ValueError):
        rules.ownership_transfer_postings(position(1, 100, lot="a"), position(2, 0, lot="b", owner_id=2), 1)


# -- transfer dispatch -------------------------------------------------------------------------

def test_a_dispatch_moves_each_line_from_stock_into_its_transit_account():
    first, second = position(1, 100, lot="a"), position(2, 50, lot="b")
    lines = [(first, position(91, 0, lot="a"), 60), (second, position(92, 0, lot="b"), 50)]
    assert balanced(rules.dispatch_postings(lines, TODAY)) == [stock(1, -60), stock(91, 60), stock(2, -50), stock(92, 50)]


def test_two_dispatch_lines_on_one_position_are_both_posted_when_they_fit_together():
    source = position(1, 100)
    lines = [(source, position(91, 0), 70), (source, position(92, 0), 30)]
    assert balanced(rules.dispatch_postings(lines, TODAY)) == [stock(1, -70), stock(91, 70), stock(1, -30), stock(92, 30)]


def test_two_dispatch_lines_on_one_position_cannot_overdraw_it_together():
    source = position(1, 100, reserved=20)
    with pytest.raises(InsufficientStock) as short:
        rules.dispatch_postings([(source, position(91, 0), 50), (source, position(92, 0), 31)], TODAY)
    assert short.value.extra["available"] == "8.0" and short.value.extra["requested"] == "8.1"


@pytest.mark.parametrize(("status", "expires_on"), [
    ("quarantine", date(2028, 1, 1)), ("recalled", date(2028, 1, 1)), ("available", TODAY),
])
def test_a_dispatch_from_an_unusable_lot_is_refused(status, expires_on):
    with pytest.raises(UnusableLot):
        rules.dispatch_postings([(position(1, 100, status=status, expires_on=expires_on), position(91, 0), 1)], TODAY)


# -- transfer receipt --------------------------------------------------------------------------

def test_a_full_transfer_receipt_empties_transit_into_the_destination_lot():
    transit, destination = position(91, 60, lot="a"), position(5, 0, lot="a-dest")
    assert balanced(rules.transfer_receipt_postings([(transit, destination, 60)])) == [stock(91, -60), stock(5, 60)]


def test_a_short_transfer_receipt_posts_the_difference_to_loss():
    transit, destination = position(91, 60), position(5, 0)
    assert balanced(rules.transfer_receipt_postings([(transit, destination, 45)])) == [
        stock(91, -60), stock(5, 45), external("loss", 15)]


def test_a_transfer_receipt_of_nothing_posts_everything_to_loss():
    assert balanced(rules.transfer_receipt_postings([(position(91, 60), position(5, 0), 0)])) == [
        stock(91, -60), external("loss", 60)]


def test_a_transfer_receipt_handles_each_line_on_its_own():
    lines = [(position(91, 60), position(5, 0), 60), (position(92, 30, material_id=8), position(6, 0, material_id=8), 25)]
    assert balanced(rules.transfer_receipt_postings(lines)) == [
        stock(91, -60), stock(5, 60), stock(92, -30, 8), stock(6, 25, 8), external("loss", 5, 8)]


def test_receiving_more_than_was_dispatched_is_invalid():
    with pytest.raises(Invalid) as refused:
        rules.transfer_receipt_postings([(position(91, 60), position(5, 0), 61)])
    assert refused.value.errors[0]["field"] == "received"


# -- reversal ----------------------------------------------------------------------------------

def test_a_reversal_of_an_issue_puts_the_stock_back():
    issue = [stock(1, -40), external("consumption", 40)]
    assert balanced(rules.reversal_postings(issue, {1: position(1, 60)})) == [stock(1, 40), external("consumption", -40)]


def test_a_reversal_of_a_receipt_takes_the_stock_back_out():
    receipt = [stock(1, 50), external("supply", -50)]
    assert balanced(rules.reversal_postings(receipt, {1: position(1, 50)})) == [stock(1, -50), external("supply", 50)]


def test_a_reversal_cannot_take_back_stock_that_has_since_left():
    receipt = [stock(1, 50), external("supply", -50)]
    with pytest.raises(InsufficientStock) as short:
        rules.reversal_postings(receipt, {1: position(1, 50, reserved=10)})
    assert short.value.extra["available"] == "4.0" and short.value.extra["requested"] == "5.0"


def test_a_reversal_of_an_ownership_transfer_moves_title_back():
    moved = [stock(1, -40), stock(2, 40)]
    positions = {1: position(1, 60), 2: position(2, 40, owner_id=2)}
    assert balanced(rules.reversal_postings(moved, positions)) == [stock(1, 40), stock(2, -40)]


def test_a_reversal_of_a_count_gain_takes_the_gain_back_to_adjustment():
    gain = [stock(1, 30), external("adjustment", -30)]
    assert balanced(rules.reversal_postings(gain, {1: position(1, 130)})) == [stock(1, -30), external("adjustment", 30)]


# -- postings and balance ----------------------------------------------------------------------

def test_postings_balance_per_material_not_in_total():
    with pytest.raises(ValueError, match="unbalanced"):
        rules.assert_balanced([stock(1, 5, 7), external("supply", -5, 8)])
    rules.assert_balanced([stock(1, 5, 7), external("supply", -5, 7), stock(2, 3, 8), external("loss", -3, 8)])


def test_an_unbalanced_movement_is_caught():
    with pytest.raises(ValueError, match="unbalanced"):
        rules.assert_balanced([stock(1, 5), external("loss", -4)])


@pytest.mark.parametrize("make", [
    lambda: Posting(DIESEL, 0, account_id=1),
    lambda: Posting(DIESEL, 5),
    lambda: Posting(DIESEL, 5, account_id=1, external="loss"),
    lambda: Posting(DIESEL, 5, external="bank"),
])
def test_a_posting_names_exactly_one_known_account_and_moves_something(make):
    with pytest.raises(ValueError):
        make()
