"""The allocation planner: a lexicographic (by priority tier) least-cost plan from positions to requests."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockpile.domain.allocation import (
    PRIORITIES,
    REASONS,
    Allowance,
    Demand,
    PlanTooLarge,
    Solution,
    Supply,
    solve,
)
from stockpile.domain.potential import Tasked, output_by

NEED = date(2027, 3, 1)
# Warehouse sites (id = position + 1); their distances are far from any .5 km, so rounding is stable.
SITES = [(50.0, 20.0), (50.3, 20.4), (51.0, 19.0), (49.5, 21.5), (52.2, 21.0), (50.05, 20.1)]
GROUP_OF = {1: "G", 2: "G", 3: None}  # materials 1 and 2 substitute for each other


def position(key: int, available: int, *, site: int = 0, material: int = 1, sector: str = "civilian",
             expires_on: date | None = None, pool: str | None = None) -> Supply:
    lat, lon = SITES[site]
    return Supply(key=key, lot_id=f"lot-{key}", owner_id=1 if sector == "civilian" else 2, owner_sector=sector,
                  warehouse_id=site + 1, latitude=lat, longitude=lon, material_id=material,
                  substitution_group=GROUP_OF.get(material), category="medical", available=available,
                  expires_on=expires_on, floors=() if pool is None else (pool,))


def request(request_id: str, quantity: int, *, priority: str = "routine", site: int = 0, material: int | None = 1,
            group: str | None = None, sector: str = "civilian", needed_by: date = NEED) -> Demand:
    lat, lon = SITES[site]
    return Demand(request_id=request_id, priority=priority, requester_sector=sector,
                  material_id=None if group else material, substitution_group=group, category="medical",
                  latitude=lat, longitude=lon, quantity=quantity, needed_by=needed_by,
                  destination_warehouse_id=site + 1)


def anyone(demand: Demand, supply: Supply) -> Allowance:
    return Allowance(rule="any", preference_cost=0)


def own_sector(demand: Demand, supply: Supply) -> Allowance | None:
    return Allowance(rule="own", preference_cost=0) if demand.requester_sector == supply.owner_sector else None


def shipped(solution: Solution) -> dict[tuple[str, int], int]:
    return {(line.request_id, line.supply_key): line.quantity for line in solution.lines}


# --- sentences -------------------------------------------------------------------------------------------------


def test_serves_flash_before_routine_from_a_scarce_depot():
    depot = position(1, 10)
    solution = solve([request("routine-near", 8, priority="routine", site=0),
                      request("flash-far", 8, priority="flash", site=4)], [depot], {}, anyone)
    assert shipped(solution) == {("flash-far", 1): 8, ("routine-near", 1): 2}
    assert solution.unfilled == {"flash-far": 0, "routine-near": 6}
    assert solution.reasons == {"routine-near": ["capacity"]}


def test_serves_every_tier_in_order_when_stock_runs_out():
    depot = position(1, 6)
    demands = [request(priority, 3, priority=priority, site=site) for site, priority in enumerate(PRIORITIES)]
    solution = solve(demands, [depot], {}, anyone)
    assert solution.planned == {"flash": 3, "immediate": 3, "priority": 0, "routine": 0}


def test_prefers_the_nearer_depot_when_stock_is_plenty():
    near, far = position(1, 50, site=1), position(2, 50, site=2)
    solution = solve([request("r", 20, site=0)], [far, near], {}, anyone)
    assert shipped(solution) == {("r", 1): 20}
    assert solution.lines[0].distance_km == pytest.approx(43.9)


def test_prefers_lots_that_expire_first_at_the_same_depot():
    later = position(1, 10, expires_on=NEED + timedelta(days=400))
    sooner = position(2, 10, expires_on=NEED + timedelta(days=40))
    never = position(3, 10, expires_on=None)
    solution = solve([request("r", 15)], [never, later, sooner], {}, anyone)
    assert shipped(solution) == {("r", 2): 10, ("r", 1): 5}


def test_never_plans_a_lot_that_expires_on_or_before_the_need_date():
    on_the_day = position(1, 10, expires_on=NEED)
    before = position(2, 10, expires_on=NEED - timedelta(days=1))
    day_after = position(3, 4, expires_on=NEED + timedelta(days=1), site=3)
    solution = solve([request("r", 10)], [on_the_day, before, day_after], {}, anyone)
    assert shipped(solution) == {("r", 3): 4}
    assert solution.reasons == {"r": ["expiry", "capacity"]}


def test_says_expiry_when_every_allowed_lot_dies_before_the_need():
    solution = solve([request("r", 5)], [position(1, 10, expires_on=NEED - timedelta(days=3))], {}, anyone)
    assert solution.lines == [] and solution.unfilled == {"r": 5}
    assert solution.reasons == {"r": ["expiry"]}


def test_leaves_stock_the_rules_refuse_and_says_so():
    military = position(1, 100, sector="military")
    civilian = position(2, 3, sector="civilian", site=2)
    solution = solve([request("r", 10, sector="civilian")], [military, civilian], {}, own_sector)
    assert shipped(solution) == {("r", 2): 3}
    assert solution.lines[0].rule == "own"
    assert solution.reasons == {"r": ["rule", "capacity"]}


def test_says_rule_alone_when_the_rules_refuse_every_position():
    solution = solve([request("r", 10)], [position(1, 100, sector="military")], {}, own_sector)
    assert solution.planned == {"r": 0} and solution.reasons == {"r": ["rule"]}


def test_adds_the_rules_preference_cost_so_a_cheaper_rule_wins():
    def loans_cost_more(demand: Demand, supply: Supply) -> Allowance:
        if supply.owner_sector == demand.requester_sector:
            return Allowance("own", 0)
        return Allowance("loan", 500)

    military_near = position(1, 10, sector="military", site=0)
    civilian_far = position(2, 10, sector="civilian", site=2)
    solution = solve([request("r", 12)], [military_near, civilian_far], {}, loans_cost_more)
    assert shipped(solution) == {("r", 2): 10, ("r", 1): 2}
    assert {line.supply_key: line.rule for line in solution.lines} == {1: "loan", 2: "own"}


def test_keeps_a_pooled_draw_above_the_protected_floor():
    a, b = position(1, 10, pool="civil-medical"), position(2, 10, site=1, pool="civil-medical")
    solution = solve([request("r", 15)], [a, b], {"civil-medical": 7}, anyone)
    assert solution.planned == {"r": 7} and sum(line.quantity for line in solution.lines) == 7
    assert solution.reasons == {"r": ["floor"]}


def test_a_fully_protected_pool_sends_nothing_but_unprotected_stock_still_flows():
    protected, free = position(1, 50, pool="floor"), position(2, 4, site=3)
    solution = solve([request("r", 10)], [protected, free], {"floor": 0}, anyone)
    assert shipped(solution) == {("r", 2): 4}
    assert solution.reasons == {"r": ["floor", "capacity"]}


def test_says_no_stock_when_no_position_holds_the_material():
    solution = solve([request("r", 5, material=3)], [position(1, 10, material=1)], {}, anyone)
    assert solution.unfilled == {"r": 5} and solution.reasons == {"r": ["no_stock"]}


def test_a_group_request_draws_any_material_of_the_group_but_a_material_request_does_not():
    one, two = position(1, 5, material=1), position(2, 5, material=2, site=1)
    by_group = solve([request("g", 8, group="G")], [one, two], {}, anyone)
    by_material = solve([request("m", 8, material=2)], [one, two], {}, anyone)
    assert shipped(by_group) == {("g", 1): 5, ("g", 2): 3}
    assert shipped(by_material) == {("m", 2): 5}


def test_draws_from_the_k_nearest_candidate_warehouses_when_they_suffice():
    depots = [position(site + 1, 2, site=site) for site in range(4)]
    solution = solve([request("r", 4, site=0)], depots, {}, anyone, k=2)
    assert shipped(solution) == {("r", 1): 2, ("r", 2): 2}


def test_widens_the_reach_of_a_request_left_short_while_farther_stock_could_serve_it():
    depots = [position(site + 1, 2, site=site) for site in range(4)]
    solution = solve([request("r", 8, site=0)], depots, {}, anyone, k=2)
    assert solution.widened == 1
    assert shipped(solution) == {("r", 1): 2, ("r", 2): 2, ("r", 3): 2, ("r", 4): 2}
    far = {line.supply_key: line for line in solution.lines}[3]
    assert far.distance_km == pytest.approx(distance_km(request("r", 8, site=0), depots[2]), abs=0.05)
    assert far.rule == "any"


def test_a_flash_request_reaches_past_its_k_nearest_before_a_routine_request_takes_that_stock():
    near_flash = position(1, 5, site=4)
    far_from_flash = position(2, 10, site=3)
    solution = solve([request("flash", 15, priority="flash", site=4), request("routine", 10, site=3)],
                     [near_flash, far_from_flash], {}, anyone, k=1)
    assert solution.planned == {"flash": 15, "routine": 0}
    assert solution.reasons == {"routine": ["capacity"]}


def test_a_warehouse_the_rules_refuse_does_not_count_among_the_k_nearest():
    refused_near = position(1, 100, sector="military", site=5)
    allowed = [position(2, 2, site=1), position(3, 2, site=2)]
    solution = solve([request("r", 4, site=0)], [refused_near, *allowed], {}, own_sector, k=2)
    assert shipped(solution) == {("r", 2): 2, ("r", 3): 2}


def test_breaks_a_tie_in_distance_by_the_lower_warehouse_id():
    same_place = [replace(position(1, 5, site=1), warehouse_id=9), replace(position(2, 5, site=1), warehouse_id=8)]
    solution = solve([request("r", 5)], [*same_place, position(3, 5, site=2)], {}, anyone, k=1)
    assert shipped(solution) == {("r", 2): 5}


def test_reports_capacity_when_higher_tiers_took_the_stock_and_floor_when_the_pool_did():
    pooled, free = position(1, 10, pool="p"), position(2, 5, site=1)
    solution = solve([request("flash", 8, priority="flash"), request("routine", 8, priority="routine")],
                     [pooled, free], {"p": 6}, anyone)
    assert solution.planned == {"flash": 8, "routine": 3}
    assert solution.reasons == {"routine": ["floor", "capacity"]}


def test_the_plan_does_not_depend_on_the_order_of_its_inputs():
    rng = random.Random(7)
    supplies = [position(key, rng.randint(1, 9), site=rng.randrange(6), material=rng.choice([1, 2]),
                         expires_on=NEED + timedelta(days=rng.randint(1, 900))) for key in range(1, 15)]
    demands = [request(f"r{n}", rng.randint(1, 12), priority=rng.choice(PRIORITIES), site=rng.randrange(6),
                       group="G") for n in range(8)]
    first = solve(demands, supplies, {}, anyone)
    rng.shuffle(supplies)
    rng.shuffle(demands)
    again = solve(demands, supplies, {}, anyone)
    assert (again.lines, again.planned, again.reasons, again.objective) == (
        first.lines, first.planned, first.reasons, first.objective)


def test_objective_is_the_cost_of_the_lines():
    depot = position(1, 5, site=1, expires_on=NEED + timedelta(days=95))
    solution = solve([request("r", 8, priority="immediate")], [depot], {}, anyone)
    assert solution.lines[0].unit_cost == 44 + 3
    assert solution.objective == 5 * 47 and solution.fill["immediate"] == 5


def test_refuses_to_plan_more_requests_than_the_limit():
    with pytest.raises(PlanTooLarge, match="3 requests"):
        solve([request(f"r{n}", 1) for n in range(3)], [position(1, 5)], {}, anyone, max_requests=2)


def test_refuses_a_network_with_more_arcs_than_the_limit():
    supplies = [position(key, 5, site=key % 6) for key in range(1, 7)]
    with pytest.raises(PlanTooLarge, match="candidate arcs"):
        solve([request("a", 1), request("b", 1)], supplies, {}, anyone, max_arcs=10)


def test_gives_up_selecting_candidates_past_the_time_limit():
    with pytest.raises(PlanTooLarge, match="too long"):
        solve([request("a", 1), request("b", 1)], [position(1, 5)], {}, anyone, time_limit_s=0.0)


def test_plans_quantities_far_beyond_any_weighting_of_tiers():
    solution = solve([request("huge", 2**60, priority="flash")], [position(1, 5, site=4)], {}, anyone)
    assert solution.planned == {"huge": 5} and solution.unfilled == {"huge": 2**60 - 5}


def test_rejects_a_request_naming_both_a_material_and_a_group():
    both = replace(request("r", 1), substitution_group="G")
    with pytest.raises(ValueError, match="exactly one"):
        solve([both], [position(1, 5)], {}, anyone)


def test_an_empty_plan_is_empty():
    solution = solve([], [position(1, 5)], {}, anyone)
    assert (solution.lines, solution.planned, solution.objective, solution.arcs) == ([], {}, 0, 0)


# --- properties against an independent reference ---------------------------------------------------------------


def distance_km(demand: Demand, supply: Supply) -> float:
    p1, p2 = math.radians(demand.latitude), math.radians(supply.latitude)
    dl = math.radians(supply.longitude - demand.longitude)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def matches(demand: Demand, supply: Supply | Tasked) -> bool:
    if demand.substitution_group is not None:
        return supply.substitution_group == demand.substitution_group
    return supply.material_id == demand.material_id


def fresh(demand: Demand, supply: Supply) -> bool:
    return supply.expires_on is None or supply.expires_on > demand.needed_by


def unit_cost(demand: Demand, supply: Supply, allowance: Allowance) -> int:
    expiry = 122 if supply.expires_on is None else min((supply.expires_on - demand.needed_by).days, 3650) // 30
    return round(distance_km(demand, supply)) + expiry + allowance.preference_cost


def candidates(demand: Demand, supplies: list[Supply], rules, k: int) -> list[Supply]:
    """Allowed, fresh positions of the material at the k nearest warehouses that have any."""
    allowed = [s for s in supplies if matches(demand, s) and fresh(demand, s) and rules(demand, s) is not None]
    nearest = sorted({(round(distance_km(demand, s), 6), s.warehouse_id) for s in allowed})[:k]
    keep = {warehouse for _, warehouse in nearest}
    return [s for s in allowed if s.warehouse_id in keep]


def reference_optimum(demands, supplies, pools, rules, k, capacities=(), today=None,
                      capacity_cost=None) -> tuple[int, ...]:
    """(unmet flash, immediate, priority, routine, transport cost), minimised lexicographically.

    Successive shortest paths with Bellman-Ford, costs being 5-tuples compared lexicographically:
    no penalty weights at all. With one floor per position the network is exact (tests with
    overlapping floors are in test_allocation_exact.py, against HiGHS). A capacity is a chain of
    nodes, one per need date it reaches: each is fed what is made since the date before, and passes
    what is left on to the next (``capacity_cost(demand, capacity)`` per unit drawn).
    """
    zero = (0,) * 5
    add = lambda a, b: tuple(x + y for x, y in zip(a, b))  # noqa: E731
    neg = lambda a: tuple(-x for x in a)  # noqa: E731
    graph: dict[object, list[list]] = {}

    def arc(u, v, cap, cost):
        forward, backward = [v, cap, cost, None], [u, 0, neg(cost), None]
        forward[3], backward[3] = backward, forward
        graph.setdefault(u, []).append(forward)
        graph.setdefault(v, []).append(backward)

    for s in supplies:
        arc("S" if not s.floors else ("pool", s.floors[0]), ("supply", s.key), s.available, zero)
    for pool, headroom in pools.items():
        arc("S", ("pool", pool), headroom, zero)
    for d in demands:
        tier = tuple(int(t == PRIORITIES.index(d.priority)) for t in range(4))
        arc("S", ("demand", d.request_id), d.quantity, tier + (0,))
        arc(("demand", d.request_id), "T", d.quantity, zero)
        for s in candidates(d, supplies, rules, k=len(supplies) + 1):
            arc(("supply", s.key), ("demand", d.request_id), s.available,
                (0, 0, 0, 0, unit_cost(d, s, rules(d, s))))
    for c in capacities:
        reached = [d for d in demands if matches(d, c) and output_by(c, today, d.needed_by) > 0]
        made, days = 0, sorted({d.needed_by for d in reached})
        for day, later in zip(days, days[1:] + [None]):
            arc("S", ("capacity", c.key, day), output_by(c, today, day) - made, zero)
            made = output_by(c, today, day)
            if later is not None:
                arc(("capacity", c.key, day), ("capacity", c.key, later), made, zero)
            for d in reached:
                if d.needed_by == day:
                    arc(("capacity", c.key, day), ("demand", d.request_id), d.quantity,
                        (0, 0, 0, 0, capacity_cost(d, c)))
    total, to_send = zero, sum(d.quantity for d in demands)
    while to_send:
        best, via = {"S": zero}, {}
        for _ in range(len(graph)):
            changed = False
            for u in list(best):
                for edge in graph[u]:
                    v, cap, cost, _ = edge
                    if cap > 0 and (v not in best or add(best[u], cost) < best[v]):
                        best[v], via[v], changed = add(best[u], cost), (u, edge), True
            if not changed:
                break
        path, node = [], "T"
        while node != "S":
            node, edge = via[node]
            path.append(edge)
        push = min(min(edge[1] for edge in path), to_send)
        for edge in path:
            edge[1] -= push
            edge[3][1] += push
        total = add(total, tuple(push * x for x in best["T"]))
        to_send -= push
    return total


@st.composite
def instances(draw):
    sectors = ("civilian", "military")
    supplies = [
        position(key, draw(st.integers(1, 6)), site=draw(st.integers(0, 5)), material=draw(st.sampled_from([1, 2, 3])),
                 sector=draw(st.sampled_from(sectors)),
                 expires_on=draw(st.sampled_from([None, *(NEED + timedelta(days=n) for n in (3, 10, 12, 45, 400))])),
                 pool=draw(st.sampled_from([None, "p1", "p2"])))
        for key in range(1, draw(st.integers(0, 6)) + 1)]
    pools = {"p1": draw(st.integers(0, 8)), "p2": draw(st.integers(0, 8))}
    demands = []
    for n in range(draw(st.integers(1, 4))):
        by_group = draw(st.booleans())
        demands.append(request(f"r{n}", draw(st.integers(1, 8)), priority=draw(st.sampled_from(PRIORITIES)),
                               site=draw(st.integers(0, 5)), material=draw(st.sampled_from([1, 2, 3])),
                               group="G" if by_group else None, sector=draw(st.sampled_from(sectors)),
                               needed_by=draw(st.sampled_from([NEED, NEED + timedelta(days=10),
                                                               NEED + timedelta(days=40)]))))
    table = {(asker, owner): draw(st.one_of(st.none(), st.integers(-3, 30)))
             for asker in sectors for owner in sectors}

    def rules(demand: Demand, supply: Supply) -> Allowance | None:
        cost = table[(demand.requester_sector, supply.owner_sector)]
        return None if cost is None else Allowance(rule=f"{demand.requester_sector}>{supply.owner_sector}",
                                                   preference_cost=cost)

    return demands, supplies, pools, rules, draw(st.integers(1, 6))


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(instances())
def test_plans_conserve_stock_respect_floors_and_account_for_every_unit(instance):
    demands, supplies, pools, rules, k = instance
    solution = solve(demands, supplies, pools, rules, k=k)
    by_key = {s.key: s for s in supplies}
    sent, pool_sent = {}, {}
    for line in solution.lines:
        assert isinstance(line.quantity, int) and line.quantity > 0
        sent[line.supply_key] = sent.get(line.supply_key, 0) + line.quantity
        for pool in by_key[line.supply_key].floors:
            pool_sent[pool] = pool_sent.get(pool, 0) + line.quantity
    assert all(sent[key] <= by_key[key].available for key in sent)
    assert all(pool_sent[pool] <= pools[pool] for pool in pool_sent)
    for d in demands:
        lines = [line for line in solution.lines if line.request_id == d.request_id]
        assert solution.planned[d.request_id] == sum(line.quantity for line in lines)
        assert solution.planned[d.request_id] + solution.unfilled[d.request_id] == d.quantity
        assert solution.unfilled[d.request_id] >= 0
    assert set(solution.reasons) == {rid for rid, short in solution.unfilled.items() if short > 0}
    for reasons in solution.reasons.values():
        assert reasons and reasons == [reason for reason in REASONS if reason in reasons]


@PROPERTY
@given(instances())
def test_plans_only_what_the_rules_material_and_expiry_allow(instance):
    demands, supplies, pools, rules, k = instance
    solution = solve(demands, supplies, pools, rules, k=k)
    by_key, by_id = {s.key: s for s in supplies}, {d.request_id: d for d in demands}
    for line in solution.lines:
        demand, supply = by_id[line.request_id], by_key[line.supply_key]
        allowance = rules(demand, supply)
        assert allowance is not None and line.rule == allowance.rule
        assert matches(demand, supply) and fresh(demand, supply)
        assert supply in candidates(demand, supplies, rules, k=len(supplies))
        assert line.unit_cost == unit_cost(demand, supply, allowance)
        assert line.distance_km == pytest.approx(distance_km(demand, supply), abs=0.05)


@PROPERTY
@given(instances())
def test_no_lower_tier_unit_is_planned_while_a_higher_tier_request_that_could_use_it_is_short(instance):
    demands, supplies, pools, rules, k = instance
    solution = solve(demands, supplies, pools, rules, k=k)
    by_key = {s.key: s for s in supplies}
    tier = {d.request_id: PRIORITIES.index(d.priority) for d in demands}
    sent, pool_sent, pool_takers = {}, {}, {}
    for line in solution.lines:
        sent[line.supply_key] = sent.get(line.supply_key, 0) + line.quantity
        for pool in by_key[line.supply_key].floors:
            pool_sent[pool] = pool_sent.get(pool, 0) + line.quantity
            pool_takers.setdefault(pool, set()).add(line.request_id)
    for d in demands:
        if solution.unfilled[d.request_id] == 0:
            continue
        for s in candidates(d, supplies, rules, k=len(supplies)):  # at any distance, whatever k
            takers = {line.request_id for line in solution.lines if line.supply_key == s.key}
            assert all(tier[taker] <= tier[d.request_id] for taker in takers)
            spare = s.available - sent.get(s.key, 0)
            if spare:  # then only its floor pool can have stopped it, and no lower tier drew on that pool
                assert s.floors and pool_sent.get(s.floors[0], 0) == pools[s.floors[0]]
                assert all(tier[taker] <= tier[d.request_id] for taker in pool_takers.get(s.floors[0], ()))


@PROPERTY
@given(instances())
def test_plans_are_optimal_against_a_lexicographic_reference(instance):
    demands, supplies, pools, rules, k = instance
    solution = solve(demands, supplies, pools, rules, k=k)
    by_key, by_id = {s.key: s for s in supplies}, {d.request_id: d for d in demands}
    unmet = tuple(sum(solution.unfilled[d.request_id] for d in demands if d.priority == p) for p in PRIORITIES)
    transport = sum(line.quantity * unit_cost(by_id[line.request_id], by_key[line.supply_key],
                                              rules(by_id[line.request_id], by_key[line.supply_key]))
                    for line in solution.lines)
    assert unmet + (transport,) == reference_optimum(demands, supplies, pools, rules, k)
    assert solution.objective == transport
