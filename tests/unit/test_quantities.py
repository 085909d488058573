"""Exact quantities: client amounts become integers of the material's smallest unit, or are refused.

Never rounded, never floats; what a response shows carries exactly the material's decimals.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from stockpile.domain.errors import Invalid
from stockpile.domain.quantities import MAX_UNITS, format_quantity, parse_quantity


def refusal(value: object, decimals: int, **kwargs) -> dict[str, str]:
    """The single field error a refused amount produces."""
    with pytest.raises(Invalid) as refused:
        parse_quantity(value, decimals, **kwargs)
    assert refused.value.type == "validation"
    [error] = refused.value.errors
    return error


# -- accepted amounts --------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "decimals", "units"), [
    ("12000.5", 1, 120005),
    ("1200.500", 3, 1200500),
    ("7", 0, 7),
    (" 42 ", 0, 42),
    ("0.001", 3, 1),
    ("1e3", 0, 1000),
    ("2.50", 1, 25),
    ("+3", 0, 3),
])
def test_decimal_strings_become_smallest_units(given, decimals, units):
    assert parse_quantity(given, decimals) == units


@pytest.mark.parametrize(("given", "decimals", "units"), [
    (12000, 1, 120000),
    (5, 0, 5),
    (Decimal("12000.5"), 1, 120005),
    (Decimal("0.125"), 3, 125),
    (Decimal("1.2300"), 2, 123),
])
def test_numbers_become_smallest_units(given, decimals, units):
    assert parse_quantity(given, decimals) == units


def test_trailing_zeros_beyond_the_materials_decimals_are_not_extra_precision():
    assert parse_quantity("10.000000", 1) == 100


def test_the_largest_amount_the_reserve_can_hold_is_accepted():
    assert parse_quantity(str(MAX_UNITS), 0) == MAX_UNITS
    assert parse_quantity(format_quantity(MAX_UNITS, 3), 3) == MAX_UNITS


def test_a_count_may_be_zero_when_zero_is_allowed():
    assert parse_quantity("0", 1, field="counted", allow_zero=True) == 0
    assert parse_quantity("0.000", 3, field="counted", allow_zero=True) == 0


# -- refused amounts ---------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "decimals"), [
    ("1.25", 1),
    ("0.5", 0),
    ("0.0001", 3),
    (Decimal("3.14"), 1),
    ("1e-1", 0),
])
def test_more_precision_than_the_material_allows_is_refused(given, decimals):
    assert "decimal places" in refusal(given, decimals)["message"]


def test_precision_beyond_the_default_decimal_context_is_refused_not_rounded_away():
    # 31 significant digits: a 28-digit decimal context would silently round this to 1.0.
    assert "decimal places" in refusal("1.000000000000000000000000000001", 1)["message"]
    assert "decimal places" in refusal(Decimal("12345.0000000000000000000000001"), 3)["message"]


def test_a_vanishingly_small_fraction_is_too_precise_rather_than_zero():
    assert "decimal places" in refusal("1e-999999999", 1)["message"]


@pytest.mark.parametrize("given", ["0", "0.0", "-0", Decimal(0), 0])
def test_zero_is_refused_where_an_amount_is_meant(given):
    assert "greater than zero" in refusal(given, 1)["message"]


@pytest.mark.parametrize("given", ["-1", "-0.5", -3, Decimal("-100")])
def test_negative_amounts_are_refused(given):
    assert "negative" in refusal(given, 1)["message"]


def test_negative_amounts_are_refused_even_where_zero_is_allowed():
    assert "negative" in refusal("-1", 0, field="counted", allow_zero=True)["message"]


@pytest.mark.parametrize("given", ["NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf", Decimal("NaN"), Decimal("Infinity")])
def test_nan_and_infinity_are_refused(given):
    assert "finite" in refusal(given, 2)["message"]


@pytest.mark.parametrize("given", [True, False])
def test_booleans_are_not_numbers(given):
    assert "decimal string or a number" in refusal(given, 0)["message"]


@pytest.mark.parametrize("given", [1.5, None, [1], {"amount": 1}, b"1"])
def test_floats_and_other_types_are_refused(given):
    assert "decimal string or a number" in refusal(given, 1)["message"]


@pytest.mark.parametrize("given", ["abc", "", "1,5", "1.2.3", "12 L", "0x10"])
def test_text_that_is_not_a_decimal_number_is_refused(given):
    assert "not a decimal number" in refusal(given, 1)["message"]


@pytest.mark.parametrize(("given", "decimals"), [
    (str(MAX_UNITS + 1), 0),
    ("1e20", 0),
    ("1000000000000.001", 3),
    (10**30, 2),
    ("1e400", 1),
    ("1e999999", 1),
    ("1e999999999", 0),
    (Decimal("9e999999999"), 3),
])
def test_huge_amounts_are_refused_as_larger_than_any_stock(given, decimals):
    assert "larger than any stock" in refusal(given, decimals)["message"]


def test_a_huge_negative_amount_is_refused_as_negative():
    assert "negative" in refusal("-1e999999999", 1)["message"]


def test_the_error_names_the_field_it_was_given():
    assert refusal("1.25", 1, field="lines[2].quantity")["field"] == "lines[2].quantity"
    assert refusal("abc", 1)["field"] == "quantity"


# -- formatting --------------------------------------------------------------------------------

@pytest.mark.parametrize(("units", "decimals", "text"), [
    (1200500, 3, "1200.500"),
    (120005, 1, "12000.5"),
    (5, 3, "0.005"),
    (0, 1, "0.0"),
    (0, 0, "0"),
    (42, 0, "42"),
    (-5, 1, "-0.5"),
    (-12345, 2, "-123.45"),
    (MAX_UNITS, 3, "1000000000000.000"),
])
def test_quantities_are_written_with_exactly_the_materials_decimals(units, decimals, text):
    assert format_quantity(units, decimals) == text


@pytest.mark.parametrize("decimals", [0, 1, 2, 3])
@pytest.mark.parametrize("units", [1, 7, 10, 999, 120005, 1000000])
def test_formatting_then_parsing_gives_back_the_same_units(units, decimals):
    assert parse_quantity(format_quantity(units, decimals), decimals) == units
