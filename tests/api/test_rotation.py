"""Rotation through HTTP: policies, rotation orders as operators work them (rotation_out /
rotation_in movements), cancelling, and shelf-life extensions of lots.

Orders are made here with SQL, as the planner would make them; everything else goes through the API.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from stockpile.services import alerts
from tests.factories import idem, lot_of, owner_balances, post_movement, receive

PROBLEM = "application/problem+json"
TODAY = datetime.now(timezone.utc).date()


def days(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


@pytest.fixture(scope="module")
async def planner(make_token, root_region) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token('planner', clearance='military', regions=[root_region])}"}


@pytest.fixture
async def diesel_policy(client, admin, world) -> str:
    """A policy for the world's diesel (its own material, so no other test's policy applies)."""
    code = f"ROT-{world.uid}"
    r = await client.put(f"/api/v1/rotation-policies/{code}", headers=admin,
                         json={"material": world.diesel, "trigger_days_before_expiry": 90})
    assert r.status_code == 201, r.text
    return code


async def make_order(pg_pool, *, lot_id: str, owner: str, policy: str, quantity: int, out_by: date | None = None,
                     in_by: date | None = None, state: str = "planned", out_quantity: int = 0, in_quantity: int = 0) -> str:
    """A rotation order as the planner writes it (quantities in smallest units)."""
    out_by = out_by or TODAY + timedelta(days=10)
    return await pg_pool.fetchval(
        """INSERT INTO rotation_orders (lot_id, owner_id, policy_id, quantity, out_quantity, in_quantity, out_by, in_by,
                                        outlet, state, explanation, public_explanation)
           SELECT $1::uuid, o.id, p.id, $4, $5, $6, $7, $8, p.outlet, $9, 'expires within 90 days; target T-1 has headroom',
                  'expires within 90 days; target T-1 has headroom'
             FROM parties o, rotation_policies p WHERE o.code = $2 AND p.code = $3
           RETURNING id::text""",
        lot_id, owner, policy, quantity, out_quantity, in_quantity, out_by, in_by or out_by + timedelta(days=30), state,
    )


async def order_row(pg_pool, order_id: str):
    return await pg_pool.fetchrow(
        "SELECT quantity, out_quantity, in_quantity, state FROM rotation_orders WHERE id = $1::uuid", order_id)


def assert_problem(response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"] == type_ and problem["detail"]
    return problem


def rotation_out(world, lot_id: str, quantity: str, order_id: str, owner: str | None = None) -> dict:
    return {"kind": "rotation_out", "lot_id": lot_id, "owner": owner or world.civil, "quantity": quantity,
            "rotation_order_id": order_id, "reason": "sold to the municipal bus company"}


def rotation_in(world, quantity: str, order_id: str, lot: str, material: str | None = None,
                owner: str | None = None) -> dict:
    return {"kind": "rotation_in", "warehouse": world.north, "material": material or world.diesel,
            "owner": owner or world.civil, "quantity": quantity, "rotation_order_id": order_id,
            "lot": {"code": lot, "manufactured_on": days(-1), "expires_on": days(700)}}


# -- policies ------------------------------------------------------------------------------------

async def test_a_policy_is_created_with_defaults_then_replaced(client, admin, planner, auditor, pg_pool, uid):
    code = f"ROT-FOOD-{uid}"
    try:
        r = await client.put(f"/api/v1/rotation-policies/{code}", headers=planner,
                             json={"category": "food", "trigger_fraction_remaining": "0.2"})
        assert r.status_code == 201, r.text
        assert r.json() | {"updated_at": None} == {
            "code": code, "material": None, "category": "food", "trigger_days_before_expiry": None,
            "trigger_fraction_remaining": 0.2, "max_out_share": 0.25, "max_gap_days": 30, "outlet": "sale",
            "lead_days": 14, "max_extension_days": None, "updated_at": None}

        r = await client.put(f"/api/v1/rotation-policies/{code}", headers=admin, json={
            "category": "food", "trigger_days_before_expiry": 60, "max_out_share": 0.1, "max_gap_days": 21,
            "outlet": "donation", "lead_days": 7, "max_extension_days": 180})
        assert r.status_code == 200, r.text
        replaced = r.json()
        assert (replaced["trigger_days_before_expiry"], replaced["trigger_fraction_remaining"], replaced["max_out_share"],
                replaced["max_gap_days"], replaced["outlet"], replaced["lead_days"], replaced["max_extension_days"]) == (
            60, None, 0.1, 21, "donation", 7, 180)

        r = await client.get(f"/api/v1/rotation-policies/{code}", headers=auditor)
        assert r.status_code == 200 and r.json() == replaced
        listed = await client.get("/api/v1/rotation-policies", headers=auditor, params={"limit": 1000})
        assert replaced in listed.json()["items"]
        assert await pg_pool.fetchval("SELECT count(*) FROM rotation_policies WHERE code = $1", code) == 1
    finally:  # category policies apply to every material of the category: leave none behind
        await pg_pool.execute("DELETE FROM rotation_policies WHERE code = $1", code)


async def test_a_material_policy_names_its_material(client, admin, world, diesel_policy):
    r = await client.get(f"/api/v1/rotation-policies/{diesel_policy}", headers=admin)
    assert r.status_code == 200
    assert (r.json()["material"], r.json()["category"], r.json()["trigger_days_before_expiry"]) == (world.diesel, None, 90)


@pytest.mark.parametrize(("body", "fields"), [
    ({"trigger_days_before_expiry": 30}, {"material"}),
    ({"material": "X", "category": "food", "trigger_days_before_expiry": 30}, {"material"}),
    ({"category": "food"}, {"trigger_days_before_expiry"}),
    ({"category": "food", "trigger_fraction_remaining": "1"}, {"trigger_fraction_remaining"}),
    ({"category": "food", "trigger_fraction_remaining": "0.12345"}, {"trigger_fraction_remaining"}),
    ({"category": "food", "trigger_days_before_expiry": 30, "max_out_share": "0"}, {"max_out_share"}),
    ({"category": "food", "trigger_days_before_expiry": 30, "max_out_share": 1.5}, {"max_out_share"}),
    ({"material": "NO-SUCH-MATERIAL", "trigger_days_before_expiry": 30}, {"material"}),
    ({"category": "food", "trigger_fraction_remaining": "-0.1", "max_out_share": "2"},
     {"trigger_fraction_remaining", "max_out_share"}),
])
async def test_an_unsound_policy_is_refused_field_by_field(client, admin, pg_pool, uid, body, fields):
    code = f"ROT-BAD-{uid}"
    r = await client.put(f"/api/v1/rotation-policies/{code}", headers=admin, json=body)
    problem = assert_problem(r, 422, "validation")
    assert {e["field"] for e in problem["errors"]} == fields
    assert await pg_pool.fetchval("SELECT count(*) FROM rotation_policies WHERE code = $1", code) == 0


@pytest.mark.parametrize("body", [
    {"category": "food", "trigger_days_before_expiry": 30, "outlet": "landfill"},
    {"category": "food", "trigger_days_before_expiry": -1},
    {"category": "food", "trigger_days_before_expiry": 30, "max_gap_days": 0},
    {"category": "food", "trigger_days_before_expiry": 30, "surprise": True},
])
async def test_a_malformed_policy_is_a_validation_problem(client, admin, uid, body):
    r = await client.put(f"/api/v1/rotation-policies/ROT-BAD-{uid}", headers=admin, json=body)
    assert_problem(r, 422, "validation")


async def test_an_unknown_policy_is_not_found(client, admin):
    assert_problem(await client.get("/api/v1/rotation-policies/NO-SUCH-POLICY", headers=admin), 404, "not-found")


# -- orders: reading and cancelling --------------------------------------------------------------

async def test_orders_are_listed_with_their_progress_and_whether_they_are_late(
        client, operator, auditor, world, diesel_policy, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="500", lot="OLD-1", expires_on=days(20)))
    late = await make_order(pg_pool, lot_id=lot, owner=world.civil, policy=diesel_policy, quantity=2000,
                            out_by=TODAY - timedelta(days=1), in_by=TODAY + timedelta(days=29))
    other = lot_of(await receive(client, operator, warehouse=world.south, material=world.diesel, owner=world.civil,
                                 quantity="300", lot="OLD-2", expires_on=days(40)))
    done_out = await make_order(pg_pool, lot_id=other, owner=world.civil, policy=diesel_policy, quantity=1000,
                                out_quantity=1000, out_by=TODAY - timedelta(days=5), in_by=TODAY + timedelta(days=3),
                                state="in_progress")

    r = await client.get("/api/v1/rotation-orders", headers=auditor, params={"material": world.diesel})
    assert r.status_code == 200, r.text
    items = {o["id"]: o for o in r.json()["items"]}
    assert set(items) == {late, done_out}
    assert items[late] == items[late] | {
        "lot_id": lot, "lot_code": "OLD-1", "owner": world.civil, "warehouse": world.north, "material": world.diesel,
        "policy": diesel_policy, "quantity": "200.0", "out_quantity": "0.0", "in_quantity": "0.0",
        "out_by": (TODAY - timedelta(days=1)).isoformat(), "in_by": days(29), "outlet": "sale", "state": "planned",
        "overdue": True, "explanation": "expires within 90 days; target T-1 has headroom"}
    assert items[done_out]["overdue"] is False  # all out in time; the fresh stock is not due yet
    assert [o["id"] for o in r.json()["items"]] == [done_out, late]  # by out-by date

    by_warehouse = await client.get("/api/v1/rotation-orders", headers=auditor, params={"warehouse": world.south})
    assert [o["id"] for o in by_warehouse.json()["items"]] == [done_out]
    # Due before: the next deadline is out-by while old stock is still to leave, else in-by.
    due = await client.get("/api/v1/rotation-orders", headers=auditor,
                           params={"material": world.diesel, "due_before": days(2)})
    assert [o["id"] for o in due.json()["items"]] == [late]
    planned = await client.get("/api/v1/rotation-orders", headers=auditor,
                               params={"material": world.diesel, "state": "in_progress"})
    assert [o["id"] for o in planned.json()["items"]] == [done_out]

    first = await client.get("/api/v1/rotation-orders", headers=auditor, params={"material": world.diesel, "limit": 1})
    assert [o["id"] for o in first.json()["items"]] == [done_out] and first.json()["next_cursor"]
    second = await client.get("/api/v1/rotation-orders", headers=auditor,
                              params={"material": world.diesel, "limit": 1, "cursor": first.json()["next_cursor"]})
    assert [o["id"] for o in second.json()["items"]] == [late] and second.json()["next_cursor"] is None

    one = await client.get(f"/api/v1/rotation-orders/{late}", headers=auditor)
    assert one.status_code == 200 and one.json() == items[late]


async def test_orders_follow_scope_and_need_to_know(client, operator, make_token, world, diesel_policy, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.military,
                               quantity="100", lot="MIL-1", expires_on=days(20)))
    order = await make_order(pg_pool, lot_id=lot, owner=world.military, policy=diesel_policy, quantity=500)
    uncleared = {"Authorization": f"Bearer {await make_token('operator', regions=['TEST-NATION'])}"}
    elsewhere = {"Authorization": f"Bearer {await make_token('operator', clearance='military', warehouses=[world.south])}"}
    for headers in (uncleared, elsewhere):
        assert_problem(await client.get(f"/api/v1/rotation-orders/{order}", headers=headers), 404, "not-found")
        listed = await client.get("/api/v1/rotation-orders", headers=headers, params={"material": world.diesel})
        assert listed.status_code == 200 and listed.json()["items"] == []
    assert (await client.get(f"/api/v1/rotation-orders/{order}", headers=operator)).json()["owner"] == world.military


async def test_a_planner_cancels_an_open_order_once(client, operator, planner, world, diesel_policy, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="C-1", expires_on=days(20)))
    order = await make_order(pg_pool, lot_id=lot, owner=world.civil, policy=diesel_policy, quantity=500)
    r = await client.post(f"/api/v1/rotation-orders/{order}/cancel", headers=planner,
                          json={"reason": "lot sold to the army instead"})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["cancel_reason"], r.json()["overdue"]) == (
        "cancelled", "lot sold to the army instead", False)
    assert (await order_row(pg_pool, order))["state"] == "cancelled"

    again = await client.post(f"/api/v1/rotation-orders/{order}/cancel", headers=planner, json={"reason": "twice"})
    assert_problem(again, 409, "conflict")
    assert await pg_pool.fetchval("SELECT cancel_reason FROM rotation_orders WHERE id = $1::uuid", order) == \
        "lot sold to the army instead"
    # A cancelled order takes no more movements.
    out = await post_movement(client, operator, rotation_out(world, lot, "10", order))
    assert_problem(out, 409, "conflict")
    assert await owner_balances(client, operator, lot) == {world.civil: "100.0"}


async def test_a_completed_order_cannot_be_cancelled_and_unknown_ones_are_not_found(
        client, operator, admin, world, diesel_policy, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="C-2", expires_on=days(20)))
    order = await make_order(pg_pool, lot_id=lot, owner=world.civil, policy=diesel_policy, quantity=500,
                             out_quantity=500, in_quantity=500, state="completed")
    assert_problem(await client.post(f"/api/v1/rotation-orders/{order}/cancel", headers=admin, json={"reason": "x"}),
                   409, "conflict")
    assert (await order_row(pg_pool, order))["state"] == "completed"
    for missing in (str(uuid.uuid4()), "not-a-uuid"):
        assert_problem(await client.post(f"/api/v1/rotation-orders/{missing}/cancel", headers=admin,
                                         json={"reason": "x"}), 404, "not-found")
    assert_problem(await client.post(f"/api/v1/rotation-orders/{order}/cancel", headers=admin, json={}),
                   422, "validation")


# -- working orders: rotation_out and rotation_in ------------------------------------------------

async def test_expired_stock_is_rotated_out_while_an_issue_of_it_is_refused(
        client, operator, world, diesel_policy, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="EXP-1", expires_on=days(-3)))
    order = await make_order(pg_pool, lot_id=lot, owner=world.civil, policy=diesel_policy, quantity=1000,
                             out_by=TODAY)

    issue = await post_movement(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil,
                                                   "quantity": "40"})
    assert assert_problem(issue, 409, "unusable-lot")["reason"] == "expired"

    r = await post_movement(client, operator, rotation_out(world, lot, "40", order))
    assert r.status_code == 201, r.text
    movement = r.json()
    assert (movement["kind"], movement["rotation_order_id"]) == ("rotation_out", order)
    assert movement["postings"] == [
        {"account": {"type": "stock", "lot_id": lot, "owner": world.civil}, "material": world.diesel, "delta": "-40.0"},
        {"account": {"type": "consumption", "material": world.diesel}, "material": world.diesel, "delta": "40.0"}]
    assert movement["balances"][0]["balance"] == "60.0"
    assert await owner_balances(client, operator, lot) == {world.civil: "60.0"}
    assert await pg_pool.fetchval("SELECT rotation_order_id::text FROM movements WHERE id = $1::uuid",
                                  movement["id"]) == order
    assert dict(await order_row(pg_pool, order)) == {"quantity": 1000, "out_quantity": 400, "in_quantity": 0,
                                                     "state": "in_progress"}


async def test_quarantined_stock_is_not_rotated_out(client, operator, world, diesel_policy, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="Q-1", expires_on=days(30)))
    order = await make_order(pg_pool, lot_id=lot, owner=world.civil, policy=diesel_policy, quantity=1000)
    r = await client.post(f"/api/v1/lots/{lot}/status", headers=operator, json={"status": "quarantine", "reason": "odd smell"})
    assert r.status_code == 200, r.text
    out = await post_movement(client, operator, rotation_out(world, lot, "10", order))
    assert assert_problem(out, 409, "unusable-lot")["reason"] == "quarantine"
    assert await owner_balances(client, operator, lot) == {world.civil: "100.0"}
    assert (await order_row(pg_pool, order))["out_quantity"] == 0


async def test_an_order_is_worked_out_then_in_until_it_completes(client, operator, world, diesel_policy, pg_pool):
    old = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="150", lot="OLD-7", expires_on=days(25)))
    order = await make_order(pg_pool, lot_id=old, owner=world.civil, policy=diesel_policy, quantity=1000)

    assert (await post_movement(client, operator, rotation_out(world, old, "60", order))).status_code == 201
    assert dict(await order_row(pg_pool, order)) == {"quantity": 1000, "out_quantity": 600, "in_quantity": 0,
                                                     "state": "in_progress"}
    first_in = await post_movement(client, operator, rotation_in(world, "70", order, "FRESH-7"))
    assert first_in.status_code == 201, first_in.text
    assert (first_in.json()["kind"], first_in.json()["rotation_order_id"]) == ("rotation_in", order)
    fresh = lot_of(first_in.json())
    assert first_in.json()["postings"][1] == {"account": {"type": "supply", "material": world.diesel},
                                              "material": world.diesel, "delta": "-70.0"}
    assert (await post_movement(client, operator, rotation_out(world, old, "40", order))).status_code == 201
    shown = (await client.get(f"/api/v1/rotation-orders/{order}", headers=operator)).json()
    assert (shown["out_quantity"], shown["in_quantity"], shown["state"]) == ("100.0", "70.0", "in_progress")

    last_in = await post_movement(client, operator, rotation_in(world, "30", order, "FRESH-7"))
    assert last_in.status_code == 201, last_in.text
    assert dict(await order_row(pg_pool, order)) == {"quantity": 1000, "out_quantity": 1000, "in_quantity": 1000,
                                                     "state": "completed"}
    assert await owner_balances(client, operator, old) == {world.civil: "50.0"}
    assert await owner_balances(client, operator, fresh) == {world.civil: "100.0"}
    kinds = await pg_pool.fetch("SELECT kind, count(*) AS n FROM movements WHERE rotation_order_id = $1::uuid "
                                "GROUP BY kind ORDER BY kind", order)
    assert [(k["kind"], k["n"]) for k in kinds] == [("rotation_in", 2), ("rotation_out", 2)]
    # A completed order takes nothing more, out or in.
    assert_problem(await post_movement(client, operator, rotation_out(world, old, "1", order)), 409, "conflict")
    assert_problem(await post_movement(client, operator, rotation_in(world, "1", order, "FRESH-7")), 409, "conflict")
    assert await owner_balances(client, operator, fresh) == {world.civil: "100.0"}


async def test_a_reversal_takes_its_quantity_back_off_the_order(client, operator, world, diesel_policy, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="REV-1", expires_on=days(25)))
    order = await make_order(pg_pool, lot_id=lot, owner=world.civil, policy=diesel_policy, quantity=300)
    out = (await post_movement(client, operator, rotation_out(world, lot, "30", order))).json()
    fresh_in = (await post_movement(client, operator, rotation_in(world, "30", order, "REV-NEW"))).json()
    assert (await order_row(pg_pool, order))["state"] == "completed"

    shown = await client.get(f"/api/v1/movements/{out['id']}", headers=operator)
    assert shown.json()["rotation_order_id"] == order

    r = await post_movement(client, operator, {"kind": "reversal", "movement_id": fresh_in["id"]})
    assert r.status_code == 201, r.text
    assert dict(await order_row(pg_pool, order)) == {"quantity": 300, "out_quantity": 300, "in_quantity": 0,
                                                     "state": "in_progress"}
    r = await post_movement(client, operator, {"kind": "reversal", "movement_id": out["id"]})
    assert r.status_code == 201, r.text
    assert dict(await order_row(pg_pool, order)) == {"quantity": 300, "out_quantity": 0, "in_quantity": 0,
                                                     "state": "planned"}
    assert await owner_balances(client, operator, lot) == {world.civil: "100.0"}
    # The order can be worked again.
    assert (await post_movement(client, operator, rotation_out(world, lot, "30", order))).status_code == 201
    assert (await order_row(pg_pool, order))["out_quantity"] == 300


async def test_a_completed_order_is_not_reopened_over_a_newer_one(client, operator, world, diesel_policy, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="REV-2", expires_on=days(25)))
    order = await make_order(pg_pool, lot_id=lot, owner=world.civil, policy=diesel_policy, quantity=100,
                             in_quantity=100)
    out = (await post_movement(client, operator, rotation_out(world, lot, "10", order))).json()
    assert (await order_row(pg_pool, order))["state"] == "completed"
    newer = await make_order(pg_pool, lot_id=lot, owner=world.civil, policy=diesel_policy, quantity=200)
    refused = await post_movement(client, operator, {"kind": "reversal", "movement_id": out["id"]})
    assert assert_problem(refused, 409, "conflict")["rotation_order_id"] == order
    assert (await order_row(pg_pool, order))["state"] == "completed"
    assert (await order_row(pg_pool, newer))["state"] == "planned"
    assert await owner_balances(client, operator, lot) == {world.civil: "90.0"}


async def test_going_past_the_order_is_refused_and_writes_nothing(client, operator, world, diesel_policy, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="500", lot="OVER-1", expires_on=days(25)))
    order = await make_order(pg_pool, lot_id=lot, owner=world.civil, policy=diesel_policy, quantity=1000)
    assert (await post_movement(client, operator, rotation_out(world, lot, "80", order))).status_code == 201
    movements_before = await pg_pool.fetchval("SELECT count(*) FROM movements")

    problem = assert_problem(await post_movement(client, operator, rotation_out(world, lot, "20.1", order)), 409, "conflict")
    assert (problem["remaining"], problem["requested"], problem["rotation_order_id"]) == ("20.0", "20.1", order)
    assert_problem(await post_movement(client, operator, rotation_in(world, "100.1", order, "NEW-1")), 409, "conflict")

    assert await pg_pool.fetchval("SELECT count(*) FROM movements") == movements_before
    assert await owner_balances(client, operator, lot) == {world.civil: "420.0"}
    assert dict(await order_row(pg_pool, order)) == {"quantity": 1000, "out_quantity": 800, "in_quantity": 0,
                                                     "state": "in_progress"}
    # The refused rotation_in opened no lot.
    assert await pg_pool.fetchval("SELECT count(*) FROM lots l JOIN warehouses w ON w.id = l.warehouse_id "
                                  "WHERE w.code = $1 AND l.code = 'NEW-1'", world.north) == 0


async def test_movements_must_match_the_order(client, operator, world, diesel_policy, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="M-1", expires_on=days(25)))
    other_lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                                     quantity="100", lot="M-2", expires_on=days(25)))
    await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.enterprise,
                  quantity="100", lot="M-1", expires_on=days(25))
    order = await make_order(pg_pool, lot_id=lot, owner=world.civil, policy=diesel_policy, quantity=500)

    assert_problem(await post_movement(client, operator, rotation_out(world, other_lot, "1", order)), 409, "conflict")
    assert_problem(await post_movement(client, operator, rotation_out(world, lot, "1", order, owner=world.enterprise)),
                   409, "conflict")
    assert_problem(await post_movement(client, operator, rotation_in(world, "1", order, "V-1", material=world.vaccine)),
                   409, "conflict")
    assert_problem(await post_movement(client, operator, rotation_in(world, "1", order, "F-1", owner=world.enterprise)),
                   409, "conflict")
    unknown = await post_movement(client, operator, rotation_out(world, lot, "1", str(uuid.uuid4())))
    assert {e["field"] for e in assert_problem(unknown, 422, "validation")["errors"]} == {"rotation_order_id"}
    assert await owner_balances(client, operator, lot) == {world.civil: "100.0", world.enterprise: "100.0"}
    assert dict(await order_row(pg_pool, order)) == {"quantity": 500, "out_quantity": 0, "in_quantity": 0,
                                                     "state": "planned"}


async def test_a_replayed_rotation_out_advances_the_order_once(client, operator, world, diesel_policy, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="IDEM-1", expires_on=days(25)))
    order = await make_order(pg_pool, lot_id=lot, owner=world.civil, policy=diesel_policy, quantity=1000)
    key = uuid.uuid4().hex
    first = await post_movement(client, operator, rotation_out(world, lot, "30", order), key=key)
    again = await post_movement(client, operator, rotation_out(world, lot, "30", order), key=key)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json()["id"] == first.json()["id"]
    assert (await order_row(pg_pool, order))["out_quantity"] == 300
    assert await owner_balances(client, operator, lot) == {world.civil: "70.0"}


async def test_a_batch_works_an_order_and_an_atomic_failure_leaves_it_untouched(
        client, operator, world, diesel_policy, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="B-1", expires_on=days(25)))
    order = await make_order(pg_pool, lot_id=lot, owner=world.civil, policy=diesel_policy, quantity=500)
    refused = await client.post("/api/v1/movements/batch", headers={**operator, **idem()}, json={"movements": [
        rotation_out(world, lot, "30", order), rotation_in(world, "30", order, "B-NEW"),
        rotation_out(world, lot, "30", order)]})
    assert assert_problem(refused, 409, "conflict")["index"] == 2
    assert dict(await order_row(pg_pool, order)) == {"quantity": 500, "out_quantity": 0, "in_quantity": 0,
                                                     "state": "planned"}
    assert await owner_balances(client, operator, lot) == {world.civil: "100.0"}

    r = await client.post("/api/v1/movements/batch", headers={**operator, **idem()}, json={"movements": [
        rotation_out(world, lot, "30", order), rotation_in(world, "30", order, "B-NEW"),
        rotation_out(world, lot, "30", order)], "atomic": False})
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == [201, 201, 409]
    assert dict(await order_row(pg_pool, order)) == {"quantity": 500, "out_quantity": 300, "in_quantity": 300,
                                                     "state": "in_progress"}
    assert await owner_balances(client, operator, lot) == {world.civil: "70.0"}


async def test_concurrent_rotation_outs_cannot_overshoot_the_order(client, operator, world, diesel_policy, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="500", lot="RACE-1", expires_on=days(25)))
    order = await make_order(pg_pool, lot_id=lot, owner=world.civil, policy=diesel_policy, quantity=1000)
    answers = await asyncio.gather(*[post_movement(client, operator, rotation_out(world, lot, "30", order))
                                     for _ in range(5)])
    assert sorted(a.status_code for a in answers) == [201, 201, 201, 409, 409]
    assert (await order_row(pg_pool, order))["out_quantity"] == 900
    assert await owner_balances(client, operator, lot) == {world.civil: "410.0"}


async def test_the_order_row_lock_serialises_two_transactions(pg_pool, client, operator, world, diesel_policy):
    """Two connections working one order at once: the second waits for the first and sees its progress."""
    from stockpile.domain.access import Principal
    from stockpile.services import rotation

    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="500", lot="RACE-2", expires_on=days(25)))
    order = await make_order(pg_pool, lot_id=lot, owner=world.civil, policy=diesel_policy, quantity=1000)
    facts = await pg_pool.fetchrow("SELECT o.owner_id, l.material_id, l.warehouse_id FROM rotation_orders o JOIN lots l "
                                   "ON l.id = o.lot_id WHERE o.id = $1::uuid", order)
    worker = Principal(id=0, name="test-operator", roles=frozenset({"admin"}), clearance="military")
    claimed = asyncio.Event()

    async def work(hold: bool):
        async with pg_pool.acquire() as pg, pg.transaction():
            after = await rotation.claim_order(pg, order, worker, direction="out", quantity=600, lot_id=lot,
                                               warehouse_id=facts["warehouse_id"], owner_id=facts["owner_id"],
                                               material_id=facts["material_id"], decimals=1)
            if hold:
                claimed.set()
                await asyncio.sleep(0.2)
            await rotation.save_progress(pg, after)

    first = asyncio.create_task(work(True))
    await claimed.wait()
    second = asyncio.create_task(work(False))
    await first
    with pytest.raises(Exception) as refused:
        await second
    assert "left to rotate out" in str(refused.value)
    assert (await order_row(pg_pool, order))["out_quantity"] == 600


# -- shelf-life extensions -----------------------------------------------------------------------

async def test_a_passed_test_redates_the_lot_within_the_policy_cap(client, admin, operator, world, pg_pool):
    r = await client.put(f"/api/v1/rotation-policies/ROT-VAX-{world.uid}", headers=admin, json={
        "material": world.vaccine, "trigger_days_before_expiry": 120, "outlet": "donation", "max_extension_days": 180})
    assert r.status_code == 201, r.text
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.vaccine, owner=world.civil,
                               quantity="1000", lot="VX-1", expires_on=days(10)))

    too_far = await client.post(f"/api/v1/lots/{lot}/shelf-life-extensions", headers=operator, json={
        "new_expires_on": days(191), "test_reference": "QA-2026-001", "result": "pass"})
    assert {e["field"] for e in assert_problem(too_far, 422, "validation")["errors"]} == {"new_expires_on"}
    earlier = await client.post(f"/api/v1/lots/{lot}/shelf-life-extensions", headers=operator, json={
        "new_expires_on": days(10), "test_reference": "QA-2026-001", "result": "pass"})
    assert_problem(earlier, 422, "validation")

    r = await client.post(f"/api/v1/lots/{lot}/shelf-life-extensions", headers=operator, json={
        "new_expires_on": days(190), "test_reference": "QA-2026-001", "result": "pass"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["previous_expires_on"], body["new_expires_on"], body["result"], body["test_reference"]) == (
        days(10), days(190), "pass", "QA-2026-001")
    assert body["lot"] | {"id": lot} == {"id": lot, "code": "VX-1", "expires_on": days(190), "expired": False,
                                         "status": "available"}

    second = await client.post(f"/api/v1/lots/{lot}/shelf-life-extensions", headers=admin, json={
        "new_expires_on": days(300), "test_reference": "QA-2026-044", "result": "pass"})
    assert second.status_code == 201, second.text

    shown = (await client.get(f"/api/v1/lots/{lot}", headers=operator)).json()
    assert shown["expires_on"] == days(300)
    assert [(e["previous_expires_on"], e["new_expires_on"], e["test_reference"], e["result"])
            for e in shown["shelf_life_extensions"]] == [
        (days(10), days(190), "QA-2026-001", "pass"), (days(190), days(300), "QA-2026-044", "pass")]
    assert [(h["kind"], h["from"], h["to"]) for h in shown["history"]] == [
        ("shelf_life", days(10), days(190)), ("shelf_life", days(190), days(300))]
    assert await pg_pool.fetchval("SELECT count(*) FROM shelf_life_extensions WHERE lot_id = $1::uuid", lot) == 2


async def test_without_a_policy_cap_one_extension_is_capped_by_the_shelf_life(client, admin, operator, world):
    # The world's vaccine keeps 365 days; its own policy sets no cap.
    r = await client.put(f"/api/v1/rotation-policies/ROT-VAX-{world.uid}", headers=admin, json={
        "material": world.vaccine, "trigger_days_before_expiry": 120})
    assert r.status_code == 201, r.text
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.vaccine, owner=world.civil,
                               quantity="10", lot="VX-2", expires_on=days(5)))
    over = await client.post(f"/api/v1/lots/{lot}/shelf-life-extensions", headers=operator, json={
        "new_expires_on": days(371), "test_reference": "QA-9", "result": "pass"})
    assert_problem(over, 422, "validation")
    ok = await client.post(f"/api/v1/lots/{lot}/shelf-life-extensions", headers=operator, json={
        "new_expires_on": days(370), "test_reference": "QA-9", "result": "pass"})
    assert ok.status_code == 201 and ok.json()["lot"]["expires_on"] == days(370)


async def test_a_lot_that_cannot_be_capped_is_not_extended(client, admin, operator, world, uid):
    material = f"SALT-{uid}"
    r = await client.put(f"/api/v1/materials/{material}", headers=admin, json={
        "name": "Salt", "category": "food", "unit": "kg", "decimals": 0, "storage_class": "ambient"})
    assert r.status_code == 201, r.text
    r = await client.put(f"/api/v1/rotation-policies/ROT-SALT-{uid}", headers=admin, json={
        "material": material, "trigger_days_before_expiry": 30})
    assert r.status_code == 201, r.text
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=material, owner=world.civil,
                               quantity="10", lot="S-1", expires_on=days(5)))
    refused = await client.post(f"/api/v1/lots/{lot}/shelf-life-extensions", headers=operator, json={
        "new_expires_on": days(6), "test_reference": "QA-1", "result": "pass"})
    assert_problem(refused, 422, "validation")
    shown = (await client.get(f"/api/v1/lots/{lot}", headers=operator)).json()
    assert shown["expires_on"] == days(5) and shown["shelf_life_extensions"] == []


async def test_a_failed_test_quarantines_the_lot_and_raises_an_alert_the_evaluation_keeps(
        client, operator, world, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.vaccine, owner=world.civil,
                               quantity="500", lot="VX-F", expires_on=days(12)))
    r = await client.post(f"/api/v1/lots/{lot}/shelf-life-extensions", headers=operator, json={
        "test_reference": "QA-2026-077", "result": "fail"})
    assert r.status_code == 201, r.text
    assert (r.json()["result"], r.json()["new_expires_on"], r.json()["lot"]["status"], r.json()["lot"]["expires_on"]) == (
        "fail", None, "quarantine", days(12))

    shown = (await client.get(f"/api/v1/lots/{lot}", headers=operator)).json()
    assert shown["status"] == "quarantine"
    assert [(h["kind"], h["from"], h["to"]) for h in shown["history"]] == [("status", "available", "quarantine")]
    assert [(e["result"], e["test_reference"]) for e in shown["shelf_life_extensions"]] == [("fail", "QA-2026-077")]

    alerts_open = await client.get("/api/v1/alerts", headers=operator, params={"kind": "shelf_life_failed", "state": "open"})
    mine = [a for a in alerts_open.json()["items"] if a["subject"] == f"lot:{lot}"]
    assert len(mine) == 1 and mine[0]["severity"] == "critical" and "QA-2026-077" in mine[0]["title"]
    assert await pg_pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'alert.opened' "
                                  "AND payload->'alert'->>'subject' = $1", f"lot:{lot}") == 1

    async with pg_pool.acquire() as pg, pg.transaction():
        await alerts.evaluate(pg, today=TODAY, now=datetime.now(timezone.utc), expiring_days=30)
    assert await pg_pool.fetchval("SELECT state FROM alerts WHERE kind = 'shelf_life_failed' AND subject = $1",
                                  f"lot:{lot}") == "open"

    issue = await post_movement(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "1"})
    assert_problem(issue, 409, "unusable-lot")


async def test_shelf_life_tests_follow_scope_and_refuse_bad_input(client, make_token, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.vaccine, owner=world.civil,
                               quantity="5", lot="VX-S", expires_on=days(12)))
    elsewhere = {"Authorization": f"Bearer {await make_token('operator', warehouses=[world.south])}"}
    body = {"test_reference": "QA-5", "result": "fail"}
    assert_problem(await client.post(f"/api/v1/lots/{lot}/shelf-life-extensions", headers=elsewhere, json=body),
                   403, "forbidden")
    assert_problem(await client.post(f"/api/v1/lots/{uuid.uuid4()}/shelf-life-extensions", headers=operator, json=body),
                   404, "not-found")
    assert_problem(await client.post(f"/api/v1/lots/{lot}/shelf-life-extensions", headers=operator,
                                     json={"test_reference": "QA-5", "result": "maybe"}), 422, "validation")
    assert_problem(await client.post(f"/api/v1/lots/{lot}/shelf-life-extensions", headers=operator,
                                     json={"test_reference": "QA-5", "result": "pass"}), 422, "validation")
    shown = (await client.get(f"/api/v1/lots/{lot}", headers=operator)).json()
    assert shown["status"] == "available" and shown["shelf_life_extensions"] == []


# -- demo ------------------------------------------------------------------------------------------

async def test_the_demo_sets_rotation_policies_for_fuel_grain_canned_food_and_medicines(make_database):
    import asyncpg

    from stockpile.demo import load_demo
    from stockpile.demo.data import DEMO_ROTATION_POLICIES
    from stockpile.services import commands as c
    from stockpile.services import rotation
    from stockpile.store.engine import asyncpg_dsn

    url = make_database()
    await load_demo(url, seed=7)
    dsn, kwargs = asyncpg_dsn(url)
    pg = await asyncpg.connect(dsn, **kwargs)
    try:
        rows = {r["code"]: r for r in await pg.fetch(
            """SELECT p.code, m.code AS material, p.category, p.trigger_days_before_expiry,
                      p.trigger_fraction_remaining::text AS fraction, p.max_out_share::text AS share, p.outlet,
                      p.max_extension_days
                 FROM rotation_policies p LEFT JOIN materials m ON m.id = p.material_id""")}
        assert {code: (r["material"], r["category"], r["trigger_days_before_expiry"], r["fraction"], r["share"],
                       r["outlet"], r["max_extension_days"]) for code, r in rows.items()} == {
            "ROT-FUEL": (None, "fuel", 90, None, "0.2000", "sale", None),
            "ROT-WHEAT": ("WHEAT", None, None, "0.2000", "0.2500", "exchange", None),
            "ROT-FLOUR": ("FLOUR-WHEAT", None, None, "0.2000", "0.2500", "sale", None),
            "ROT-CANNED-MEAT": ("CANNED-MEAT", None, 60, None, "0.2500", "sale", None),
            "ROT-MEDICAL": (None, "medical", 120, None, "0.2500", "donation", 365),
        }
        # Writing them again replaces them in place.
        async with pg.transaction():
            for code, selector, trigger, rest in DEMO_ROTATION_POLICIES:
                created, _ = await rotation.upsert_policy(pg, code, c.RotationPolicyIn(**selector, **trigger, **rest))
                assert not created
        assert await pg.fetchval("SELECT count(*) FROM rotation_policies") == len(DEMO_ROTATION_POLICIES)
    finally:
        await pg.close()


async def test_rotation_out_is_suspended_where_the_region_is_in_crisis_except_for_expired_stock(
        client, operator, make_token, world, diesel_policy, pg_pool):
    commander = {"Authorization": f"Bearer {await make_token('commander', clearance='military')}"}
    fresh = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                                 quantity="100", lot="CRISIS-1", expires_on=days(20)))
    dead = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                                quantity="100", lot="CRISIS-2", expires_on=days(-2)))
    fresh_order = await make_order(pg_pool, lot_id=fresh, owner=world.civil, policy=diesel_policy, quantity=1000)
    dead_order = await make_order(pg_pool, lot_id=dead, owner=world.civil, policy=diesel_policy, quantity=1000,
                                  out_by=TODAY)
    r = await client.post("/api/v1/readiness/declarations", headers=commander,
                          json={"region": world.region, "level": "emergency", "reason": "ice storm"})
    assert r.status_code == 201, r.text

    refused = await post_movement(client, operator, rotation_out(world, fresh, "10", fresh_order))
    assert assert_problem(refused, 409, "conflict")["level"] == "emergency"
    assert await owner_balances(client, operator, fresh) == {world.civil: "100.0"}
    assert (await order_row(pg_pool, fresh_order))["out_quantity"] == 0
    expired = await post_movement(client, operator, rotation_out(world, dead, "10", dead_order))
    assert expired.status_code == 201, expired.text  # expired stock may always go

    await client.post("/api/v1/readiness/declarations", headers=commander,
                      json={"region": world.region, "level": "peacetime", "reason": "storm over"})
    assert (await post_movement(client, operator, rotation_out(world, fresh, "10", fresh_order))).status_code == 201
