"""Coverage: how much of a reserve target is usably held.

Usable stock is stock of an ``available`` lot, not expired and not expiring within the target's
horizon, less what approved plans have reserved. The state compares usable ÷ required with the
target's ratios; days of supply divide usable stock by the daily need of the population served.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal


def horizon_cuts(horizons: Iterable[int]) -> list[int]:
    """The distinct horizons of all targets as ascending cuts ``horizon + 1``.

    Stock expiring ``d`` days from today outlives a horizon ``h`` when ``d > h``, i.e. ``d >= h + 1``.
    Counting the cuts a lot outlives (:func:`cuts_outlived`) lets one pass over the stock serve
    every horizon at once: a lot counts for a target whose cut is the ``n``-th when it outlives at
    least ``n`` cuts. The SQL does the same with ``width_bucket(d, cuts)``.
    """
    return sorted({h + 1 for h in horizons})


def cuts_outlived(expires_on: date | None, today: date, cuts: list[int]) -> int:
    """How many of ``cuts`` stock expiring on ``expires_on`` outlives (all of them if it never expires)."""
    if expires_on is None:
        return len(cuts)
    return bisect_right(cuts, (expires_on - today).days)


def outlives_horizon(expires_on: date | None, today: date, horizon_days: int) -> bool:
    """Stock that dies within the horizon protects no one at its end: it must expire after it."""
    return expires_on is None or (expires_on - today).days > horizon_days


@dataclass(frozen=True)
class Holding:
    """One stock position (lot × owner) as coverage sees it (smallest units, like the ledger)."""

    warehouse: str
    region: str
    material: str
    owner: str
    sector: str
    balance: int
    reserved: int
    status: str
    expires_on: date | None


@dataclass(frozen=True)
class TargetScope:
    """What a reserve target counts: a warehouse or a region (with its sub-regions), some materials,
    one owner, one sector or everyone, and a horizon."""

    materials: frozenset[str]
    horizon_days: int
    warehouse: str | None = None
    regions: frozenset[str] = frozenset()  # the scope region and every region under it
    owner: str | None = None
    sector: str | None = None

    def counts(self, p: Holding) -> bool:
        in_scope = p.warehouse == self.warehouse if self.warehouse is not None else p.region in self.regions
        return (in_scope and p.material in self.materials
                and (self.owner is None or p.owner == self.owner)
                and (self.sector is None or p.sector == self.sector))


def usable_units(p: Holding, today: date, horizon_days: int) -> int:
    """Usable stock of a position: available status, alive past the horizon, less what is reserved
    (reserved stock is promised to a plan that takes it elsewhere)."""
    if p.status != "available" or not outlives_horizon(p.expires_on, today, horizon_days):
        return 0
    return p.balance - p.reserved


def usable_quantity(target: TargetScope, positions: Iterable[Holding], decimals: dict[str, int],
                    today: date) -> Decimal:
    """The reference rule, position by position, in the materials' units (``decimals`` per material).
    The service computes the same set-wise in SQL (``stockpile.store.coverage``)."""
    total = Decimal(0)
    for p in positions:
        if target.counts(p):
            total += Decimal(usable_units(p, today, target.horizon_days)).scaleb(-decimals[p.material])
    return total


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
    """Each ratio in [0, 1] and ``floor <= critical <= warning`` (also a CHECK in PostgreSQL)."""
    errors = []
    for name, value in (("warning_ratio", warning), ("critical_ratio", critical), ("floor_ratio", floor)):
        if not value.is_finite() or not Decimal(0) <= value <= Decimal(1):
            errors.append({"field": name, "message": "must be between 0 and 1"})
    if not errors and not floor <= critical <= warning:
        errors.append({"field": "critical_ratio", "message": "ratios must satisfy floor <= critical <= warning"})
    return errors
