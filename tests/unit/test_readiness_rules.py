"""Readiness levels and the seeded allocation rules, resolved for every combination."""

import itertools
from decimal import Decimal

import pytest

from stockpile.domain import readiness
from stockpile.domain.errors import Conflict, Forbidden
from stockpile.domain.rules import CATEGORIES, DEFAULT_RULES, SECTORS, Rule, permits, resolve

# The policy the seeds encode, written out as (level, category, requester, owner) → obligation
# (None: allowed without one); every combination not listed, other than a sector drawing its own
# stock, is refused.
CROSS_OWNER = {
    ("emergency", "food", "civilian", "military"): "loan",
    ("emergency", "medical", "civilian", "military"): "loan",
    **{("emergency", c, "civilian", "enterprise"): "requisition" for c in CATEGORIES},
    ("wartime", "fuel", "military", "civilian"): "requisition",
    ("wartime", "fuel", "military", "enterprise"): "requisition",
    ("wartime", "food", "military", "civilian"): "loan",
    ("wartime", "food", "civilian", "military"): "loan",
    **{("wartime", c, "civilian", "enterprise"): "requisition" for c in CATEGORIES},
}


@pytest.mark.parametrize("level,category,requester,owner",
                         list(itertools.product(readiness.LEVELS, CATEGORIES, SECTORS, SECTORS)))
def test_seeded_rules_decide_every_level_category_and_sector_pair(level, category, requester, owner):
    rule = permits(DEFAULT_RULES, level, category, requester, owner)
    if requester == owner:
        assert rule is not None and rule.obligation is None and not rule.approval_required
    elif (level, category, requester, owner) in CROSS_OWNER:
        assert rule is not None
        assert rule.obligation == CROSS_OWNER[(level, category, requester, owner)]
        assert rule.approval_required and rule.preference_cost > 0  # own stock is always preferred
    else:
        assert rule is None


def test_civilian_medical_reserves_stay_with_the_population_in_wartime():
    rule = resolve(DEFAULT_RULES, "wartime", "medical", "military", "civilian")
    assert rule is not None and rule.code == "WAR-MIL-CIV-MED" and not rule.allowed


def test_the_most_specific_rule_decides_and_ties_go_to_the_lowest_code():
    broad = Rule("A-BROAD", "emergency", None, "civilian", None, True, preference_cost=5)
    narrow = Rule("Z-NARROW", "emergency", "fuel", "civilian", "military", False)
    twin = Rule("B-TWIN", "emergency", None, "civilian", None, True, preference_cost=9)
    assert resolve([broad, narrow, twin], "emergency", "fuel", "civilian", "military") is narrow
    assert resolve([broad, narrow, twin], "emergency", "food", "civilian", "military") is broad
    assert resolve([broad, narrow], "wartime", "food", "civilian", "military") is None


def test_a_region_inherits_the_highest_level_of_its_ancestors():
    parents = {1: None, 2: 1, 3: 2, 4: 1}
    levels = readiness.effective_levels(parents, {2: "emergency", 3: "peacetime"})
    assert levels == {1: "peacetime", 2: "emergency", 3: "emergency", 4: "peacetime"}
    levels = readiness.effective_levels(parents, {1: "wartime", 2: "emergency"})
    assert set(levels.values()) == {"wartime"}


def test_a_parent_cycle_does_not_hang_the_resolution():
    levels = readiness.effective_levels({1: 2, 2: 1}, {1: "emergency"})  # master data refuses cycles; still no hang
    assert levels[1] == "emergency" and set(levels) == {1, 2}


def test_only_wartime_waits_for_a_second_commander():
    assert [readiness.needs_confirmation(level) for level in readiness.LEVELS] == [False, False, True]


def test_the_declaring_commander_cannot_confirm_their_own_wartime_declaration():
    with pytest.raises(Forbidden):
        readiness.check_confirmation("pending_confirmation", declared_by=7, confirmer=7)
    with pytest.raises(Conflict):
        readiness.check_confirmation("effective", declared_by=7, confirmer=8)
    readiness.check_confirmation("pending_confirmation", declared_by=7, confirmer=8)


def test_rule_floors_are_ratios():
    assert all(r.floor_ratio is None or Decimal(0) <= r.floor_ratio <= 1 for r in DEFAULT_RULES)
    assert len({r.code for r in DEFAULT_RULES}) == len(DEFAULT_RULES)
