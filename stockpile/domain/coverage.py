"""Coverage: how much of a reserve target is usably held.

Usable stock is stock of an ``available`` lot, not expired and not expiring within the target's
horizon, less what approved plans have reserved. The state compares usable ÷ required with the
target's ratios; days of supply divide usable stock by the daily need of the population served.
"""

from __future__ import annotations

from decimal import Decimal

STATES = ("ok", "warning", "critical")


def coverage_state(ratio: Decimal, warning_ratio: Decimal, critical_ratio: Decimal) -> str:
    """``critical`` below the critical ratio, ``warning`` below the warning ratio, else ``ok``."""
    if ratio < critical_ratio:
        return "critical"
    if ratio < warning_ratio:
        return "warning"
    return "ok"


def days_of_supply(usable: Decimal, population: int | None, per_person_per_day: Decimal | None) -> Decimal | None:
    """Whole days the usable stock lasts the population served; None when either is unknown."""
    if not population or not per_person_per_day:
        return None
    return (usable / (population * per_person_per_day)).quantize(Decimal("0.1"))


def validate_ratios(warning: Decimal, critical: Decimal, floor: Decimal) -> list[dict[str, str]]:
    errors = []
    for name, value in (("warning_ratio", warning), ("critical_ratio", critical), ("floor_ratio", floor)):
        if not value.is_finite() or not Decimal(0) <= value <= Decimal(1):
            errors.append({"field": name, "message": "must be between 0 and 1"})
    if not errors and not floor <= critical <= warning:
        errors.append({"field": "critical_ratio", "message": "ratios must satisfy floor <= critical <= warning"})
    return errors
