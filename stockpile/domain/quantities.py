"""Exact quantities.

A quantity is stored as an integer count of the material's smallest unit (``10^-decimals`` of its
unit). Input may be a decimal string or a JSON number; anything finer than the material allows is
refused, never rounded. Floats are never used for stock.
"""

from __future__ import annotations

from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation

from stockpile.domain.errors import Invalid

MAX_UNITS = 10**15  # far above any real stock, far below bigint; keeps sums safe

# Scaling by the material's decimals must be exact: the default context rounds to 28 digits (so
# "1.000…0001" would pass as 1.0) and overflows on exponents past 999999.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def parse_quantity(value: object, decimals: int, *, field: str = "quantity", allow_zero: bool = False) -> int:
    """Parse a client quantity into smallest units.

    Raises ``Invalid`` for non-numbers, non-finite values, more precision than ``decimals``,
    negative amounts, zero (unless ``allow_zero``), or absurdly large amounts.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise Invalid.field(field, "must be a decimal string or a number")
    try:
        amount = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise Invalid.field(field, f"{value!r} is not a decimal number") from None
    if not amount.is_finite():
        raise Invalid.field(field, "must be a finite number")
    if amount < 0:
        raise Invalid.field(field, "must not be negative")
    if amount > Decimal(MAX_UNITS).scaleb(-decimals):  # before scaling: never build a huge integer
        raise Invalid.field(field, "is larger than any stock the reserve can hold")
    scaled = amount.scaleb(decimals, context=EXACT)
    if scaled != scaled.to_integral_value():
        raise Invalid.field(field, f"has more than {decimals} decimal places allowed for this material")
    units = int(scaled)
    if units == 0 and not allow_zero:
        raise Invalid.field(field, "must be greater than zero")
    return units


def format_quantity(units: int, decimals: int) -> str:
    """Smallest units → decimal string with exactly ``decimals`` places (``1200500, 3 → "1200.500"``)."""
    if decimals == 0:
        return str(units)
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"
