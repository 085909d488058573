"""The plan is exact under every floor: overlapping reserve targets that do not nest (a depot's
stock of a category over every owner, a region's stock of a sector and category) are each a
constraint of the solve, tiers are served lexicographically across all of them, quantities are
integral, and small ``k`` only changes where the search starts, never how much each tier gets.

The reference is HiGHS, in a separate process (tests/unit/highs_lexicographic.py), solving the same
instance with every allowed arc at any distance as a lexicographic MIP."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockpile.domain.allocation import PRIORITIES, Allowance, Demand, Supply, solve
from tests.unit.test_allocation_solver import NEED, SITES, distance_km, fresh, matches, unit_cost

REGION = {0: "R1", 1: "R1", 2: "R1", 5: "R1", 3: "R2", 4: "R2"}
# material → (substitution group, category, what one smallest unit counts for against a floor)
MATERIALS = {1: ("G", "fuel", 10), 2: ("G", "fuel", 1), 3: (None, "food", 10)}
SECTORS = ("military", "civilian", "enterprise")


@pytest.fixture(scope="module")
def highs():
    """One HiGHS process for the module, fed one JSON instance per line."""
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("highs_lexicographic.py"))],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def reference(instance: dict) -> dict:
        process.stdin.write(json.dumps(instance) + "\n")
        process.stdin.flush()
        while (answer := process.stdout.readline()) and not answer.startswith("{"):
            pass  # HiGHS prints its banner on stdout
        assert answer, "the HiGHS process ended"
        return json.loads(answer)

    yield reference
    process.stdin.close()
    process.wait(timeout=30)


def supply(key: int, available: int, *, site: int, material: int, sector: str, expires_on=None) -> Supply:
    group, category, unit = MATERIALS[material]
    lat, lon = SITES[site]
    return Supply(key=key, lot_id=f"lot-{key}", owner_id=SECTORS.index(sector), owner_sector=sector,
                  warehouse_id=site + 1, latitude=lat, longitude=lon, material_id=material, substitution_group=group,
                  category=category, available=available, expires_on=expires_on,
                  floors=(f"depot:{site}:{category}", f"region:{REGION[site]}:{sector}:{category}"), floor_unit=unit)


def demand(request_id: str, quantity: int, *, priority: str, site: int, material: int, by_group: bool,
           sector: str, needed_by=NEED) -> Demand:
    group, category, _ = MATERIALS[material]
    lat, lon = SITES[site]
    return Demand(request_id=request_id, priority=priority, requester_sector=sector,
                  material_id=None if by_group and group else material,
                  substitution_group=group if by_group and group else None, category=category,
                  latitude=lat, longitude=lon, quantity=quantity, needed_by=needed_by, destination_warehouse_id=site + 1)


@st.composite
def instances(draw):
    supplies = [supply(key, draw(st.integers(1, 9)), site=draw(st.integers(0, 5)), material=draw(st.sampled_from([1, 2, 3])),
                       sector=draw(st.sampled_from(SECTORS)),
                       expires_on=draw(st.sampled_from([None, NEED + timedelta(days=5), NEED + timedelta(days=400)])))
                for key in range(1, draw(st.integers(1, 9)) + 1)]
    targets = sorted({target for s in supplies for target in s.floors})
    # Headroom in floor units: from a target at its floor to more than all its stock.
    headroom = {target: draw(st.integers(0, 120)) for target in targets}
    demands = [demand(f"r{n}", draw(st.integers(1, 12)), priority=draw(st.sampled_from(PRIORITIES)),
                      site=draw(st.integers(0, 5)), material=draw(st.sampled_from([1, 2, 3])), by_group=draw(st.booleans()),
                      sector=draw(st.sampled_from(SECTORS[:2])),
                      needed_by=draw(st.sampled_from([NEED, NEED + timedelta(days=10)])))
               for n in range(draw(st.integers(1, 6)))]
    table = {(asker, owner): draw(st.one_of(st.none(), st.integers(0, 40))) for asker in SECTORS[:2] for owner in SECTORS}

    def rules(d: Demand, s: Supply) -> Allowance | None:
        cost = table[(d.requester_sector, s.owner_sector)]
        return None if cost is None else Allowance(rule=f"{d.requester_sector}>{s.owner_sector}", preference_cost=cost)

    return demands, supplies, headroom, rules, draw(st.sampled_from([1, 2, 50]))


def as_reference(demands, supplies, headroom, rules) -> dict:
    """The instance with every allowed arc, whatever the distance."""
    arcs = [[d, s, unit_cost(dm, sp, rules(dm, sp))] for d, dm in enumerate(demands) for s, sp in enumerate(supplies)
            if matches(dm, sp) and fresh(dm, sp) and rules(dm, sp) is not None]
    floors = [[headroom[t], [[s, sp.floor_unit] for s, sp in enumerate(supplies) if t in sp.floors]] for t in sorted(headroom)]
    return {"quantity": [d.quantity for d in demands], "tier": [PRIORITIES.index(d.priority) for d in demands],
            "available": [s.available for s in supplies], "arcs": arcs, "floors": floors}


EXACT = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@EXACT
@given(instances())
def test_fill_per_tier_is_the_lexicographic_optimum_at_any_reach_and_cost_within_a_thousandth_of_it(highs, instance):
    demands, supplies, headroom, rules, k = instance
    plan = solve(demands, supplies, headroom, rules, k=k)
    reference = highs(as_reference(demands, supplies, headroom, rules))
    assert [plan.fill[p] for p in PRIORITIES] == reference["fills"]
    # The LP relaxation can sit below every integral plan (a whole unit against a floor counted in
    # thousandths); the integral optimum cannot.
    assert reference["mip_cost"] - 1e-6 <= plan.objective <= reference["mip_cost"] * 1.001 + 1e-6
    assert plan.objective >= reference["lp_cost"] - 1e-6


@EXACT
@given(instances())
def test_no_target_is_drawn_below_its_floor_and_every_quantity_is_integral(instance):
    demands, supplies, headroom, rules, k = instance
    plan = solve(demands, supplies, headroom, rules, k=k)
    by_key = {s.key: s for s in supplies}
    drawn, sent = dict.fromkeys(headroom, 0), {}
    for line in plan.lines:
        assert type(line.quantity) is int and line.quantity > 0
        sent[line.supply_key] = sent.get(line.supply_key, 0) + line.quantity
        for target in by_key[line.supply_key].floors:
            drawn[target] += line.quantity * by_key[line.supply_key].floor_unit
    assert all(drawn[t] <= headroom[t] for t in headroom)
    assert all(sent[key] <= by_key[key].available for key in sent)
    assert all(plan.planned[d.request_id] + plan.unfilled[d.request_id] == d.quantity for d in demands)


@EXACT
@given(instances())
def test_no_lower_tier_draws_on_stock_a_short_higher_tier_request_could_use_at_any_distance(instance):
    demands, supplies, headroom, rules, k = instance
    plan = solve(demands, supplies, headroom, rules, k=k)
    tier = {d.request_id: PRIORITIES.index(d.priority) for d in demands}
    by_key, by_id = {s.key: s for s in supplies}, {d.request_id: d for d in demands}
    for d in demands:
        if plan.unfilled[d.request_id] == 0:
            continue
        assert plan.reasons[d.request_id]
        usable = {s.key for s in supplies if matches(d, s) and fresh(d, s) and rules(d, s) is not None}
        # one unit of such a line could go to d instead: the same position, so the same floors
        assert not [line for line in plan.lines if line.supply_key in usable and tier[line.request_id] > tier[d.request_id]]
    for line in plan.lines:
        d, s = by_id[line.request_id], by_key[line.supply_key]
        assert line.rule == rules(d, s).rule and fresh(d, s) and matches(d, s)
        assert line.distance_km == pytest.approx(distance_km(d, s), abs=0.05)


def test_the_flash_request_gets_the_stock_two_overlapping_floors_allow_before_a_routine_one():
    """The issue's case: WH1 (R1) holds 1,000 civilian and 1,000 enterprise units, WH2 (R1) 1,000
    civilian, WH3 (R2) 1,000 civilian with no target; every owner's stock at WH1 may give 1,000, the
    civilian stock of R1 600. Flash asks 2,000 near WH1, routine 1,000 in R2."""
    def at(key, site, sector, targets):
        return Supply(key=key, lot_id=f"lot-{key}", owner_id=key, owner_sector=sector, warehouse_id=site + 1,
                      latitude=SITES[site][0], longitude=SITES[site][1], material_id=3, substitution_group=None,
                      category="fuel", available=1000, expires_on=None, floors=targets)

    supplies = [at(1, 0, "civilian", ("WH1-fuel", "R1-civilian-fuel")), at(2, 0, "enterprise", ("WH1-fuel",)),
                at(3, 1, "civilian", ("R1-civilian-fuel",)), at(4, 3, "civilian", ())]
    flash = Demand("flash", "flash", "civilian", 3, None, "fuel", *SITES[5], 2000, NEED, 6)
    routine = Demand("routine", "routine", "civilian", 3, None, "fuel", *SITES[4], 1000, NEED, 5)
    for k in (1, 50):
        plan = solve([flash, routine], supplies, {"WH1-fuel": 1000, "R1-civilian-fuel": 600},
                     lambda d, s: Allowance("any", 0), k=k)
        assert plan.planned == {"flash": 2000, "routine": 600}
        sent = {key: sum(line.quantity for line in plan.lines if line.supply_key == key) for key in (1, 2, 3, 4)}
        assert sent[1] + sent[2] == 1000 and sent[1] + sent[3] == 600 and sent[4] == 1000
        assert plan.reasons == {"routine": ["floor", "capacity"]}


def test_a_fractional_lp_vertex_is_made_integral_by_a_mip_on_its_fractional_part():
    """Whole units count 10 against a depot floor kept in tenths with 15 tenths of headroom: the LP
    would send 1.5 units from the depot next door and 0.5 from farther; the plan sends 1 and 1."""
    def at(key, site, material, available):
        group, category, unit = MATERIALS[material]
        return Supply(key=key, lot_id=f"lot-{key}", owner_id=1, owner_sector="military", warehouse_id=site + 1,
                      latitude=SITES[site][0], longitude=SITES[site][1], material_id=material, substitution_group=group,
                      category=category, available=available, expires_on=None, floors=(f"depot:{site}", "region"),
                      floor_unit=unit)

    supplies = [at(2, 1, 1, 2), at(3, 0, 1, 2), at(8, 0, 2, 5)]
    request = demand("r0", 2, priority="flash", site=0, material=1, by_group=False, sector="military")
    plan = solve([request], supplies, {"depot:0": 15, "depot:1": 100, "region": 100}, lambda d, s: Allowance("own", 0))
    assert [(line.supply_key, line.quantity) for line in plan.lines] == [(2, 1), (3, 1)]
    assert plan.integral_by == "mip-fractional-part"
    assert plan.lp_cost == pytest.approx(1.5 * 122 + 0.5 * 166) and plan.objective == 122 + 166
