"""Allocation rules: whose stock may be drawn, by whom, down to which floor, at what cost.

Rules are data (the ``allocation_rules`` table, versioned, editable by admins). A rule matches a
readiness level exactly and, optionally, a material category, a requesting sector and an owning
sector (``None`` matches any). For a given combination the most specific matching rule decides
(most non-``None`` members; ties go to the lowest code); no matching rule means *not allowed*.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

SECTORS = ("military", "civilian", "enterprise")
CATEGORIES = ("fuel", "food", "medical")
OBLIGATIONS = ("loan", "requisition")


@dataclass(frozen=True)
class Rule:
    code: str
    level: str
    category: str | None
    requester_sector: str | None
    owner_sector: str | None
    allowed: bool
    floor_ratio: Decimal | None = None   # None: the reserve target's own protected floor
    preference_cost: int = 0             # added per unit drawn: higher = used later
    approval_required: bool = False
    obligation: str | None = None        # 'loan' (repaid in kind) or 'requisition' (compensated)
    note: str = ""

    @property
    def specificity(self) -> int:
        return sum(x is not None for x in (self.category, self.requester_sector, self.owner_sector))

    def matches(self, level: str, category: str, requester_sector: str, owner_sector: str) -> bool:
        return (self.level == level and self.category in (None, category)
                and self.requester_sector in (None, requester_sector) and self.owner_sector in (None, owner_sector))


def resolve(rules: Iterable[Rule], level: str, category: str, requester_sector: str, owner_sector: str) -> Rule | None:
    """The rule that decides this draw, or None when no rule speaks to it (not allowed)."""
    matching = [r for r in rules if r.matches(level, category, requester_sector, owner_sector)]
    if not matching:
        return None
    return min(matching, key=lambda r: (-r.specificity, r.code))


def permits(rules: Iterable[Rule], level: str, category: str, requester_sector: str, owner_sector: str) -> Rule | None:
    """The deciding rule when it allows the draw, else None."""
    rule = resolve(rules, level, category, requester_sector, owner_sector)
    return rule if rule is not None and rule.allowed else None


def _own(level: str, cost: int = 0) -> list[Rule]:
    return [Rule(f"{level[:3].upper()}-OWN-{s[:3].upper()}", level, None, s, s, True, preference_cost=cost,
                 note=f"{s} requests draw {s} stock") for s in SECTORS]


DEFAULT_RULES: tuple[Rule, ...] = (
    # Peacetime: each sector draws only its own stock.
    *_own("peacetime"),
    # Emergency: own stock first; civil relief may borrow military food and medical stock above the
    # military floor, and requisition enterprise stock, with approval.
    *_own("emergency"),
    Rule("EME-CIV-MIL-FOOD", "emergency", "food", "civilian", "military", True, preference_cost=50,
         approval_required=True, obligation="loan", note="civil relief borrows military food above its floor"),
    Rule("EME-CIV-MIL-MED", "emergency", "medical", "civilian", "military", True, preference_cost=50,
         approval_required=True, obligation="loan", note="civil relief borrows military medical stock above its floor"),
    Rule("EME-CIV-ENT", "emergency", None, "civilian", "enterprise", True, preference_cost=30,
         approval_required=True, obligation="requisition", note="civil relief requisitions enterprise reserves"),
    # Wartime: the military requisitions civilian and enterprise fuel down to the civilian protected
    # floor; civilian food and medical floors stay protected, stock above them is lent; civil relief
    # keeps its emergency rights.
    *_own("wartime"),
    Rule("WAR-MIL-CIV-FUEL", "wartime", "fuel", "military", "civilian", True, preference_cost=20,
         approval_required=True, obligation="requisition", note="military requisitions civilian fuel above the civilian floor"),
    Rule("WAR-MIL-ENT-FUEL", "wartime", "fuel", "military", "enterprise", True, preference_cost=10,
         approval_required=True, obligation="requisition", note="military requisitions enterprise fuel"),
    Rule("WAR-MIL-CIV-FOOD", "wartime", "food", "military", "civilian", True, preference_cost=100,
         approval_required=True, obligation="loan", note="military borrows civilian food above the population's floor"),
    Rule("WAR-MIL-CIV-MED", "wartime", "medical", "military", "civilian", False,
         note="civilian medical reserves stay with the population"),
    Rule("WAR-CIV-MIL-FOOD", "wartime", "food", "civilian", "military", True, preference_cost=80,
         approval_required=True, obligation="loan", note="civil relief borrows military food above its floor"),
    Rule("WAR-CIV-ENT", "wartime", None, "civilian", "enterprise", True, preference_cost=30,
         approval_required=True, obligation="requisition", note="civil relief requisitions enterprise reserves"),
)
