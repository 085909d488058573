"""Protected floors (guarantee 8): what allocation may draw from the stock a reserve target counts.

A position (lot × owner) *counts toward* a target when the target's scope, material and owner
match it and its lot is usable over the target's horizon. A target's **headroom** is its usable
stock above the protected floor: ``usable − ceil(floor_ratio × quantity)``, never below zero.
Stock that counts toward no target is unprotected; stock that dies within a target's horizon does
not protect anyone and is free to go.

Planning makes every target a position counts toward a constraint of the solve
(:func:`headroom` and :func:`targets_of`, in thousandths, so the plan and the approval weigh a draw
alike): overlapping targets that do not nest (a depot's fuel of every owner, a region's civilian
fuel) are each kept above their floor by the solve itself, never by cutting lines afterwards.
Approval checks the same again under lock (:func:`breaches`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from stockpile.domain.allocation import Line


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


def targets_of(memberships: Mapping[int, Sequence[int]], account: int) -> tuple[int, ...]:
    """Every target a position counts toward (their ids name the model's floor constraints)."""
    return tuple(sorted(set(memberships.get(account, ()))))


def headroom(floors: Mapping[int, Floor]) -> dict[int, int]:
    """Each target's headroom in thousandths: what the positions counting toward it may send together
    (a position's smallest unit counts as ``scale`` thousandths, its ``floor_unit``)."""
    return {t: f.headroom for t, f in floors.items()}


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
