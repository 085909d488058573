"""The ledger's rules, without a database: quantities, picking, the postings of every kind."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from stockpile.domain import ledger as rules
from stockpile.domain.errors import Conflict, InsufficientStock, Invalid, UnusableLot
from stockpile.domain.ledger import Position, Posting
from stockpile.domain.lots import receipt_expiry
from stockpile.domain.quantities import format_quantity, parse_quantity

TODAY = date(2026, 11, 22)


def pos(account_id: int, balance: int, *, reserved: int = 0, expires_on: date | None = date(2027, 1, 1),
        status: str = "available", lot: str | None = None, owner_id: int = 1, decimals: int = 1) -> Position:
    return Position(account_id=account_id, lot_id=lot or f"lot-{account_id}", lot_code=lot or f"L{account_id}",
                    owner_id=owner_id, owner_code=f"OWN{owner_id}", material_id=7, decimals=decimals,
                    balance=balance, reserved=reserved, status=status, expires_on=expires_on)


# -- quantities --------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "decimals", "units"), [
    ("12000.5", 1, 120005), (12000, 1, 120000), (Decimal("0.001"), 3, 1), ("1e3", 0, 1000), (" 7 ", 0, 7),
    ("1.500", 1, 15),
])
def test_quantities_become_exact_smallest_units(given, decimals, units):
    assert parse_quantity(given, decimals) == units


@pytest.mark.parametrize(("given", "decimals", "message"), [
    ("1.25", 1, "decimal places"), ("0", 2, "greater than zero"), ("-3", 0, "negative"), ("NaN", 0, "finite"),
    ("Infinity", 1, "finite"), ("abc", 0, "not a decimal"), (True, 0, "decimal string"), (1.5, 1, "decimal string"),
    ("1e20", 0, "larger"),
])
def test_bad_quantities_are_refused_never_rounded(given, decimals, message):
    with pytest.raises(Invalid) as refused:
        parse_quantity(given, decimals)
    assert message in refused.value.errors[0]["message"]


def test_a_count_may_be_zero():
    assert parse_quantity("0", 1, field="counted", allow_zero=True) == 0


@pytest.mark.parametrize(("units", "decimals", "text"), [(1200500, 3, "1200.500"), (-5, 1, "-0.5"), (42, 0, "42"),
                                                         (0, 2, "0.00")])
def test_quantities_are_shown_with_the_materials_decimals(units, decimals, text):
    assert format_quantity(units, decimals) == text


# -- picking -----------------------------------------------------------------------------------

def test_prefers_lots_that_expire_first():
    late, early = pos(1, 100, expires_on=date(2028, 1, 1)), pos(2, 100, expires_on=date(2027, 1, 1))
    assert [(p.account_id, q) for p, q in rules.pick_first_expiring([late, early], 150, TODAY)] == [(2, 100), (1, 50)]


def test_skips_expired_quarantined_recalled_and_fully_reserved_lots():
    candidates = [pos(1, 100, expires_on=TODAY), pos(2, 100, status="quarantine"), pos(3, 100, status="recalled"),
                  pos(4, 100, reserved=100), pos(5, 100, expires_on=date(2030, 1, 1))]
    assert [(p.account_id, q) for p, q in rules.pick_first_expiring(candidates, 60, TODAY)] == [(5, 60)]


def test_non_perishables_come_last():
    forever, perishable = pos(1, 100, expires_on=None), pos(2, 100, expires_on=date(2040, 1, 1))
    assert [p.account_id for p, _ in rules.pick_first_expiring([forever, perishable], 120, TODAY)] == [2, 1]


def test_picking_more_than_usable_names_the_usable_total():
    with pytest.raises(InsufficientStock) as short:
        rules.pick_first_expiring([pos(1, 30, reserved=10), pos(2, 50, status="recalled")], 25, TODAY)
    assert short.value.extra["available"] == "2.0" and short.value.extra["requested"] == "2.5"


# -- postings of every kind --------------------------------------------------------------------

def _balanced(postings: list[Posting]) -> list[Posting]:
    rules.assert_balanced(postings)
    return postings


def test_a_receipt_comes_from_supply():
    assert _balanced(rules.receipt_postings(pos(1, 0), 50)) == [
        Posting(7, 50, account_id=1), Posting(7, -50, external="supply")]


def test_an_issue_goes_to_consumption_from_each_picked_lot():
    picks = [(pos(1, 10), 10), (pos(2, 10), 4)]
    assert _balanced(rules.issue_postings(picks, TODAY)) == [
        Posting(7, -10, account_id=1), Posting(7, 10, external="consumption"),
        Posting(7, -4, account_id=2), Posting(7, 4, external="consumption")]


def test_an_issue_from_an_unusable_lot_is_refused():
    with pytest.raises(UnusableLot) as refused:
        rules.issue_postings([(pos(1, 10, expires_on=date(2026, 1, 1)), 1)], TODAY)
    assert refused.value.extra["reason"] == "expired"


def test_an_issue_cannot_take_reserved_stock():
    with pytest.raises(InsufficientStock) as short:
        rules.issue_postings([(pos(1, 10, reserved=8), 3)], TODAY)
    assert short.value.extra["available"] == "0.2"


def test_a_short_count_posts_the_difference_to_loss():
    assert _balanced(rules.adjustment_postings(pos(1, 100), 90)) == [
        Posting(7, -10, account_id=1), Posting(7, 10, external="loss")]


def test_an_over_count_posts_the_difference_from_adjustment():
    assert _balanced(rules.adjustment_postings(pos(1, 100), 130)) == [
        Posting(7, 30, account_id=1), Posting(7, -30, external="adjustment")]


def test_a_count_that_matches_posts_nothing():
    assert rules.adjustment_postings(pos(1, 100), 100) == []


def test_a_count_below_what_plans_reserved_is_a_conflict():
    with pytest.raises(Conflict):
        rules.adjustment_postings(pos(1, 100, reserved=50), 40)


def test_a_write_off_is_allowed_on_unusable_stock():
    assert _balanced(rules.write_off_postings(pos(1, 10, status="recalled", expires_on=date(2020, 1, 1)), 10)) == [
        Posting(7, -10, account_id=1), Posting(7, 10, external="loss")]


def test_an_ownership_transfer_moves_title_within_the_lot():
    source, target = pos(1, 60, lot="L"), pos(2, 0, lot="L", owner_id=2)
    assert _balanced(rules.ownership_transfer_postings(source, target, 25)) == [
        Posting(7, -25, account_id=1), Posting(7, 25, account_id=2)]


def test_two_dispatch_lines_on_one_position_cannot_overdraw_it_together():
    source = pos(1, 10)
    with pytest.raises(InsufficientStock):
        rules.dispatch_postings([(source, pos(8, 0), 6), (source, pos(9, 0), 6)], TODAY)
    assert _balanced(rules.dispatch_postings([(source, pos(8, 0), 6), (source, pos(9, 0), 4)], TODAY)) == [
        Posting(7, -6, account_id=1), Posting(7, 6, account_id=8), Posting(7, -4, account_id=1), Posting(7, 4, account_id=9)]


def test_a_short_transfer_receipt_posts_the_missing_quantity_to_loss():
    transit, destination = pos(8, 10), pos(3, 0)
    assert _balanced(rules.transfer_receipt_postings([(transit, destination, 7)])) == [
        Posting(7, -10, account_id=8), Posting(7, 7, account_id=3), Posting(7, 3, external="loss")]


def test_a_reversal_negates_the_original_and_respects_what_is_left():
    original = [Posting(7, 50, account_id=1), Posting(7, -50, external="supply")]
    assert _balanced(rules.reversal_postings(original, {1: pos(1, 50)})) == [
        Posting(7, -50, account_id=1), Posting(7, 50, external="supply")]
    with pytest.raises(InsufficientStock):
        rules.reversal_postings(original, {1: replace(pos(1, 50), balance=20)})


def test_unbalanced_postings_are_caught():
    with pytest.raises(ValueError):
        rules.assert_balanced([Posting(7, 5, account_id=1), Posting(7, -4, external="loss")])


@pytest.mark.parametrize(("given", "message"), [
    ("1.000000000000000000000000000001", "decimal places"),  # past 28 digits: refused, not rounded to 1.0
    ("1e999999", "larger"), (Decimal("1e999999"), "larger"),
])
def test_extreme_quantities_are_refused_exactly(given, message):
    with pytest.raises(Invalid) as refused:
        parse_quantity(given, 1)
    assert message in refused.value.errors[0]["message"]


# -- the expiry a received lot gets ------------------------------------------------------------

def test_a_perishable_lot_received_without_an_expiry_keeps_its_shelf_life_from_manufacture():
    assert receipt_expiry(date(2026, 1, 10), None, 30) == date(2026, 2, 9)


def test_a_given_expiry_is_kept_and_a_non_perishable_lot_without_one_never_expires():
    assert receipt_expiry(date(2026, 1, 10), date(2026, 6, 1), 30) == date(2026, 6, 1)
    assert receipt_expiry(None, None, None) is None


@pytest.mark.parametrize(("manufactured_on", "expires_on", "shelf_life", "field"), [
    (None, None, 30, "lot.expires_on"),                           # perishable: an expiry or a manufacture date
    (date(2026, 3, 1), date(2026, 2, 1), None, "lot.expires_on"),  # expiring before it was made
    (date(9999, 12, 1), None, 365, "lot.manufactured_on"),         # past the last date there is
])
def test_a_receipt_whose_expiry_cannot_be_known_is_refused_naming_the_field(manufactured_on, expires_on,
                                                                             shelf_life, field):
    with pytest.raises(Invalid) as refused:
        receipt_expiry(manufactured_on, expires_on, shelf_life)
    assert [e["field"] for e in refused.value.errors] == [field]
