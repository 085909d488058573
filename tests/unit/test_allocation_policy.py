"""The allocation rules of the one policy, without a database: who sees requests, plans, drills and
obligations, who may decide and dispatch plans, and what repays a loan."""

import pytest

from stockpile.domain.access import (
    ObligationPlace, PlanPlace, Principal, RequestPlace, drill_visible, obligation_visible, plan_visible,
    require_plan_decidable, require_plan_dispatchable,
)
from stockpile.domain.errors import Conflict, Forbidden, Invalid, NotFound
from stockpile.domain.obligations import Repayment, require_repayment

NORTH, SOUTH, ELSEWHERE = 1, 2, 3
REGION = 10


def planner(*, cleared: bool = False, warehouses=(NORTH, SOUTH), regions=(REGION,)) -> Principal:
    return Principal(1, "p", frozenset({"planner"}), "military" if cleared else None,
                     frozenset(warehouses), frozenset(regions))


def plan(*requests: RequestPlace, sources=(NORTH,), military_stock: bool = False) -> PlanPlace:
    return PlanPlace(tuple(requests), frozenset(sources), military_stock)


CIVIL_TO_SOUTH = RequestPlace(SOUTH, REGION, requester_military=False)
MILITARY_TO_SOUTH = RequestPlace(SOUTH, REGION, requester_military=True)


def test_a_plan_with_a_military_requesters_request_does_not_exist_for_an_uncleared_reader():
    assert not plan_visible(planner(), plan(CIVIL_TO_SOUTH, MILITARY_TO_SOUTH))
    assert plan_visible(planner(cleared=True), plan(CIVIL_TO_SOUTH, MILITARY_TO_SOUTH))


def test_the_depot_that_dispatches_a_plan_sees_it_though_its_destination_is_elsewhere():
    source_operator = Principal(2, "o", frozenset({"operator"}), None, frozenset({NORTH}))
    assert plan_visible(source_operator, plan(CIVIL_TO_SOUTH, sources=(NORTH,)))
    assert not plan_visible(source_operator, plan(CIVIL_TO_SOUTH, sources=(NORTH, ELSEWHERE)))


def test_deciding_a_plan_out_of_sight_is_not_found_and_in_sight_out_of_the_regions_forbidden():
    with pytest.raises(NotFound):
        require_plan_decidable(planner(warehouses=(ELSEWHERE,)), plan(CIVIL_TO_SOUTH), touches_military_stock=False)
    with pytest.raises(Forbidden):
        require_plan_decidable(planner(regions=()), plan(CIVIL_TO_SOUTH), touches_military_stock=False)
    with pytest.raises(Forbidden):
        require_plan_decidable(planner(), plan(CIVIL_TO_SOUTH), touches_military_stock=True)
    require_plan_decidable(planner(cleared=True), plan(CIVIL_TO_SOUTH), touches_military_stock=True)


def test_dispatching_needs_every_source_warehouse_and_clearance_for_military_stock():
    with pytest.raises(Forbidden):
        require_plan_dispatchable(planner(), plan(CIVIL_TO_SOUTH, sources=(NORTH, ELSEWHERE)))
    with pytest.raises(Forbidden):
        require_plan_dispatchable(planner(), plan(CIVIL_TO_SOUTH, military_stock=True))
    require_plan_dispatchable(planner(cleared=True), plan(CIVIL_TO_SOUTH, military_stock=True))


def test_a_drill_is_seen_by_readers_holding_every_destination_it_planned_for():
    assert drill_visible(planner(), frozenset({SOUTH}))
    assert not drill_visible(planner(), frozenset({SOUTH, ELSEWHERE}))
    assert not drill_visible(planner(), None)


def test_an_obligation_with_a_military_party_is_never_seen_uncleared():
    loan = ObligationPlace(creditor_military=True, debtor_military=False, lot_warehouse_id=NORTH,
                           destination_ids=frozenset({SOUTH}))
    assert not obligation_visible(planner(), loan)
    assert obligation_visible(planner(cleared=True), loan)
    assert not obligation_visible(planner(cleared=True, warehouses=(ELSEWHERE,)), loan)


def repayment(**changes) -> Repayment:
    return Repayment(**{"kind": "receipt", "recorded_after_obligation": True, "credited": 30, "reversed": False,
                        "cited": False, **changes})


@pytest.mark.parametrize("changes", [
    {"kind": "transfer_receipt"}, {"kind": "rotation_in"}, {"recorded_after_obligation": False},
    {"reversed": True}, {"credited": 0}, {"credited": 29},
])
def test_a_movement_that_did_not_repay_the_loan_settles_nothing(changes):
    with pytest.raises(Invalid):
        require_repayment("m", repayment(**changes), 30, "29")


def test_a_repayment_settles_once_and_an_unseen_movement_does_not_exist():
    require_repayment("m", repayment(kind="ownership_transfer"), 30, "30")
    with pytest.raises(Conflict):
        require_repayment("m", repayment(cited=True), 30, "30")
    with pytest.raises(Invalid, match="no movement m"):
        require_repayment("m", None, 30, "")
