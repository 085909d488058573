"""Protected floors (guarantee 8): what allocation may draw from the stock a reserve target counts.

A position (lot × owner) *counts toward* a target when the target's scope, material and owner
match it and its lot is usable over the target's horizon. A target's **headroom** is its usable
stock above the protected floor: ``usable − ceil(floor_ratio × quantity)``, never below zero.
Stock that counts toward no target is unprotected; stock that dies within a target's horizon does
not protect anyone and is free to go.

The flow solver takes one pool per position (the tightest of its targets). Where targets overlap
(a depot target inside a region target) one pool cannot express every floor, so the plan is
checked against every target afterwards and trimmed — lowest priority tier first, most costly
line first — until no floor is breached. Approval checks the same again under lock.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from stockpile.domain.allocation import PRIORITIES, Line


@dataclass(frozen=True)
class Floor:
    """One reserve target as planning sees it."""

    target_id: int
    code: str
    usable: int              # thousandths of the unit counted toward the target now (balance − reserved)
    quantity: int            # the target, in thousandths of the unit
    floor_ratio: Decimal

    @property
    def protected(self) -> int:
        return math.ceil(self.floor_ratio * self.quantity)

    @property
    def headroom(self) -> int:
        return max(0, self.usable - self.protected)


def pools(memberships: Mapping[int, Sequence[int]], floors: Mapping[int, Floor],
          scale: Mapping[int, int]) -> tuple[dict[int, str | None], dict[str, int]]:
    """Each position's pool (its tightest target, as ``"target:<id>"``) and each pool's headroom in
    the smallest units of its members. ``scale[account]`` = thousandths per smallest unit of the
    position's material (1000 for whole units, 1 for three decimals); a pool mixing precisions counts
    every member's unit as the coarsest one, which can only under-use the headroom, never breach it."""
    pool_of: dict[int, str | None] = {}
    tightest_of: dict[str, int] = {}
    coarsest: dict[str, int] = {}
    for account, targets in memberships.items():
        if not targets:
            pool_of[account] = None
            continue
        tightest = min(targets, key=lambda t: (floors[t].headroom, t))
        key = f"target:{tightest}"
        pool_of[account] = key
        tightest_of[key] = tightest
        coarsest[key] = max(coarsest.get(key, 1), scale[account])
    return pool_of, {key: floors[t].headroom // coarsest[key] for key, t in tightest_of.items()}


def drawn(lines: Iterable[Line], memberships: Mapping[int, Sequence[int]], scale: Mapping[int, int]) -> dict[int, int]:
    """Thousandths each target would lose to these lines."""
    total: dict[int, int] = defaultdict(int)
    for line in lines:
        for target in memberships.get(line.supply_key, ()):
            total[target] += line.quantity * scale[line.supply_key]
    return total


def breaches(lines: Iterable[Line], memberships: Mapping[int, Sequence[int]], floors: Mapping[int, Floor],
             scale: Mapping[int, int]) -> dict[int, int]:
    """Target id → thousandths drawn beyond its headroom (empty when every floor holds)."""
    return {t: units - floors[t].headroom for t, units in drawn(lines, memberships, scale).items()
            if units > floors[t].headroom}


def trim(lines: Sequence[Line], memberships: Mapping[int, Sequence[int]], floors: Mapping[int, Floor],
         scale: Mapping[int, int], priority_of: Mapping[str, str]) -> tuple[list[Line], set[str]]:
    """Cut lines until no floor is breached: the lowest tier's most costly lines go first.

    Returns the kept lines and the requests that lost quantity to a floor."""
    kept = list(lines)
    cut: set[str] = set()
    while over := breaches(kept, memberships, floors, scale):
        target, excess = next(iter(sorted(over.items())))
        order = sorted((i for i, line in enumerate(kept) if target in memberships.get(line.supply_key, ())),
                       key=lambda i: (-PRIORITIES.index(priority_of[kept[i].request_id]), -kept[i].unit_cost, i))
        for i in order:
            per_unit = scale[kept[i].supply_key]
            take = min(-(-excess // per_unit), kept[i].quantity)
            kept[i] = replace(kept[i], quantity=kept[i].quantity - take)
            cut.add(kept[i].request_id)
            excess -= take * per_unit
            if excess <= 0:
                break
        kept = [line for line in kept if line.quantity > 0]
    return kept, cut
