"""Capacity as a source of the allocation solve: from its lead day at its daily rate, after stock
within a priority, never promised twice — against hand-worked examples."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from stockpile.domain.allocation import PRIORITIES, Allowance, Demand, Supply, solve
from stockpile.domain.potential import Tasked, output_by
from tests.unit.test_allocation_solver import GROUP_OF, NEED, PROPERTY, instances, reference_optimum

TODAY = date(2026, 12, 3)
MATERIAL = 7
REFINERY = Tasked(key=1, material_id=MATERIAL, daily=1000, lead_days=3, region_ids=frozenset({10, 1}))
FAR_PLANT = Tasked(key=2, material_id=MATERIAL, daily=5000, lead_days=1, region_ids=frozenset({20, 1}))


def request(request_id: str, priority: str, in_days: int, quantity: int, *, region: int = 10, site: int = 2) -> Demand:
    return Demand(request_id=request_id, priority=priority, requester_sector="civilian", material_id=MATERIAL,
                  substitution_group=None, category="fuel", latitude=50.0 + site / 10, longitude=20.0, quantity=quantity,
                  needed_by=TODAY + timedelta(days=in_days), destination_warehouse_id=site, destination_region_id=region)


def depot(key: int, available: int, *, site: int = 1) -> Supply:
    return Supply(key=key, lot_id=f"lot-{key}", owner_id=1, owner_sector="civilian", warehouse_id=site,
                  latitude=50.0 + site / 10, longitude=20.0, material_id=MATERIAL, substitution_group=None,
                  category="fuel", available=available, expires_on=None)


def anyone(demand: Demand, supply: Supply) -> Allowance:
    return Allowance(rule="any", preference_cost=0)


def plan(demands: list[Demand], supplies: list[Supply], capacities: list[Tasked]):
    return solve(demands, supplies, {}, anyone, capacities=capacities, today=TODAY)


def tasked(solution) -> list[tuple[str, int, int]]:
    return [(t.request_id, t.capacity, t.quantity) for t in solution.taskings]


def test_capacity_is_tasked_only_where_its_lead_time_fits_the_need_date():
    assert plan([request("a", "flash", 2, 500)], [], [REFINERY]).taskings == []
    [tasking] = plan([request("a", "flash", 5, 2500)], [], [REFINERY]).taskings
    # three days of output needed (days 3, 4, 5): tasked today, ready on day 3
    assert (tasking.capacity, tasking.quantity, tasking.start_on, tasking.ready_on, tasking.due_on) == (
        1, 2500, TODAY, TODAY + timedelta(days=3), TODAY + timedelta(days=5))


def test_a_tasking_starts_on_the_latest_day_that_still_delivers_by_the_need_date():
    [tasking] = plan([request("a", "routine", 10, 1500)], [], [REFINERY]).taskings
    # two days of output (days 9 and 10) need the first on day 9: tasked on day 6
    assert (tasking.start_on, tasking.ready_on) == (TODAY + timedelta(days=6), TODAY + timedelta(days=9))


def test_higher_priorities_are_tasked_first_and_no_capacity_is_promised_twice():
    solution = plan([request("routine", "routine", 4, 2000), request("flash", "flash", 4, 1500)], [], [REFINERY])
    assert tasked(solution) == [("flash", 1, 1500), ("routine", 1, 500)]


def test_output_is_shared_by_need_date_so_an_earlier_need_leaves_less_for_a_later_one():
    # by day 4: 2,000 (days 3 and 4); by day 6: 4,000 in all, whatever was drawn by day 4 included
    solution = plan([request("early", "flash", 4, 1500), request("late", "routine", 6, 3000)], [], [REFINERY])
    assert tasked(solution) == [("early", 1, 1500), ("late", 1, 2500)]
    early, late = solution.taskings
    # served earliest need first: 1,500 takes days 3 and 4, all 4,000 days 3 to 6 — both tasked today
    assert (early.start_on, late.start_on) == (TODAY, TODAY)
    single = plan([request("late", "routine", 6, 2000)], [], [REFINERY]).taskings
    assert [t.start_on for t in single] == [TODAY + timedelta(days=2)]  # alone: days 5 and 6


def test_capacity_delivering_to_the_destinations_region_is_tasked_before_a_faster_one_elsewhere():
    solution = plan([request("a", "flash", 5, 4000)], [], [FAR_PLANT, REFINERY])
    assert [(t.capacity, t.quantity) for t in solution.taskings] == [(1, 3000), (2, 1000)]


def test_within_a_priority_stock_is_used_before_capacity():
    solution = plan([request("a", "flash", 5, 1200)], [depot(1, 1000)], [REFINERY])
    assert [(line.supply_key, line.quantity) for line in solution.lines] == [(1, 1000)]
    assert tasked(solution) == [("a", 1, 200)]
    assert (solution.planned, solution.unfilled) == ({"a": 1000}, {"a": 200})


def test_stock_goes_to_the_higher_priority_when_capacity_could_serve_either():
    solution = plan([request("routine", "routine", 5, 1000), request("flash", "flash", 5, 1000)],
                    [depot(1, 1000)], [REFINERY])
    assert [(line.request_id, line.quantity) for line in solution.lines] == [("flash", 1000)]
    assert tasked(solution) == [("routine", 1, 1000)]


def test_a_higher_priority_moves_onto_capacity_to_free_stock_for_a_need_capacity_cannot_reach_in_time():
    # Stock first would give the flash request the depot's 1,000 and leave the immediate one, needed
    # in two days (before the refinery's lead of three), with nothing; capacity reaches the flash
    # request (due on day 5: 3,000 by then), so the solve tasks it there and keeps the stock for
    # the immediate request.
    flash, immediate = request("flash", "flash", 5, 1000), request("immediate", "immediate", 2, 1000)
    solution = plan([flash, immediate], [depot(1, 1000)], [REFINERY])
    assert [(line.request_id, line.supply_key, line.quantity) for line in solution.lines] == [("immediate", 1, 1000)]
    assert tasked(solution) == [("flash", 1, 1000)]
    assert solution.unfilled == {"flash": 1000, "immediate": 0}
    # without the capacity, stock serves flash first
    alone = plan([flash, immediate], [depot(1, 1000)], [])
    assert alone.planned == {"flash": 1000, "immediate": 0}


def test_a_substitution_group_request_draws_on_capacity_of_any_material_in_the_group():
    group_request = Demand(request_id="g", priority="flash", requester_sector="civilian", material_id=None,
                           substitution_group="diesel", category="fuel", latitude=50.2, longitude=20.0, quantity=1000,
                           needed_by=TODAY + timedelta(days=5), destination_warehouse_id=2, destination_region_id=10)
    in_group = Tasked(key=3, material_id=8, daily=1000, lead_days=3, substitution_group="diesel")
    assert tasked(plan([group_request], [], [REFINERY, in_group])) == [("g", 3, 1000)]


@st.composite
def instances_with_capacity(draw):
    demands, supplies, pools, rules, k = draw(instances())
    capacities = [Tasked(key=key, material_id=(material := draw(st.sampled_from([1, 2, 3]))),
                         daily=draw(st.integers(1, 4)), lead_days=draw(st.sampled_from([0, 3, 7, 14, 50])),
                         region_ids=frozenset(draw(st.sampled_from([(), (1,)]))),
                         substitution_group=GROUP_OF.get(material))
                  for key in range(1, draw(st.integers(0, 3)) + 1)]
    regions = draw(st.lists(st.sampled_from([None, 1]), min_size=len(demands), max_size=len(demands)))
    demands = [replace(d, destination_region_id=region) for d, region in zip(demands, regions)]
    return demands, supplies, pools, rules, k, capacities, draw(st.integers(0, 30))


def capacity_cost(dearest_preference: int, capacities: list[Tasked]):
    """A unit from capacity, as the solve prices it: dearer than any unit of stock (≤ 20,016 km, 122
    for a lot that never expires, the dearest preference), one such step more per priority above
    routine, then elsewhere than the destination's region, then slower."""
    dearest = 20016 + 122 + dearest_preference
    slowest = max(c.lead_days for c in capacities)

    def cost(demand: Demand, capacity: Tasked) -> int:
        tier = PRIORITIES.index(demand.priority)
        return (dearest + 1 + (3 - tier) * (dearest + 1 + 2 * (slowest + 1))
                + (demand.destination_region_id not in capacity.region_ids) * (slowest + 1) + capacity.lead_days)
    return cost


@PROPERTY
@given(instances_with_capacity())
def test_plans_with_capacity_are_optimal_against_a_lexicographic_reference(instance):
    demands, supplies, pools, rules, k, capacities, dearest = instance
    today = NEED - timedelta(days=5)
    solution = solve(demands, supplies, pools, rules, capacities=capacities, today=today, dearest_preference=dearest, k=k)
    tasked_to = {d.request_id: 0 for d in demands}
    for t in solution.taskings:
        assert isinstance(t.quantity, int) and t.quantity > 0
        tasked_to[t.request_id] += t.quantity
    for d in demands:
        assert solution.planned[d.request_id] + solution.unfilled[d.request_id] == d.quantity
        assert tasked_to[d.request_id] <= solution.unfilled[d.request_id]
    by_id = {d.request_id: d for d in demands}
    for c in capacities:  # what is drawn for the needs due by each date is made by then
        drawn = [(by_id[t.request_id].needed_by, t.quantity) for t in solution.taskings if t.capacity == c.key]
        for day, _ in drawn:
            assert sum(q for due, q in drawn if due <= day) <= output_by(c, today, day)
    unmet = tuple(sum(d.quantity - solution.planned[d.request_id] - tasked_to[d.request_id]
                      for d in demands if d.priority == p) for p in PRIORITIES)
    reference = reference_optimum(demands, supplies, pools, rules, k, capacities, today,
                                  capacity_cost(dearest, capacities) if capacities else None)
    assert unmet + (solution.objective,) == reference
