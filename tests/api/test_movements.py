"""Movements through POST /api/v1/movements: every kind's postings and balances, every refusal's
problem type, idempotency, batches, lot status, and the stock and ledger reads."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import pytest

from tests.factories import idem, list_all, lot_of, make_world, owner_balances, post_movement, receive

PROBLEM = "application/problem+json"


@pytest.fixture
async def world(client, admin, uid):
    return await make_world(client, admin, uid)


def assert_problem(response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"] == type_ and problem["status"] == status and problem["detail"]
    assert "Traceback" not in response.text
    return problem


def stock_posting(lot_id: str, owner: str, material: str, delta: str) -> dict:
    return {"account": {"type": "stock", "lot_id": lot_id, "owner": owner}, "material": material, "delta": delta}


def external_posting(kind: str, material: str, delta: str) -> dict:
    return {"account": {"type": kind, "material": material}, "material": material, "delta": delta}


def position(lot_id: str, owner: str, balance: str) -> dict:
    """A position after a movement, with nothing reserved."""
    return {"lot_id": lot_id, "owner": owner, "balance": balance, "reserved": "0.0", "available": balance}


async def ledger_of(client, headers, material: str) -> list[dict]:
    return await list_all(client, headers, "/api/v1/movements", material=material)


async def assert_ledger_consistent(pg_pool, lot_id: str) -> None:
    """Guarantee 3 for every account of the lot: stored balance == sum of its postings."""
    rows = await pg_pool.fetch(
        """SELECT a.id, a.balance, coalesce((SELECT sum(delta) FROM postings p WHERE p.account_id = a.id), 0) AS posted
             FROM accounts a WHERE a.lot_id = $1::uuid""", lot_id)
    assert rows and all(r["balance"] == r["posted"] for r in rows), [dict(r) for r in rows]


# -- receipt -----------------------------------------------------------------------------------

async def test_a_receipt_creates_the_lot_and_posts_from_supply(client, operator, world, pg_pool):
    r = await post_movement(client, operator, {
        "kind": "receipt", "warehouse": world.north, "material": world.diesel, "owner": world.civil,
        "quantity": "12000.5", "lot": {"code": "B2026-0113", "manufactured_on": "2026-01-10", "expires_on": "2028-01-10"},
        "occurred_at": "2026-11-20T08:00:00Z", "note": "delivery note 4471"})
    assert r.status_code == 201, r.text
    body = r.json()
    lot_id = lot_of(body)
    assert body["kind"] == "receipt" and body["occurred_at"] == "2026-11-20T08:00:00Z" and body["note"] == "delivery note 4471"
    assert body["recorded_at"].endswith("Z") and uuid.UUID(body["id"])
    assert body["postings"] == [stock_posting(lot_id, world.civil, world.diesel, "12000.5"),
                                external_posting("supply", world.diesel, "-12000.5")]
    assert body["balances"] == [position(lot_id, world.civil, "12000.5")]
    lot = (await client.get(f"/api/v1/lots/{lot_id}", headers=operator)).json()
    assert (lot["code"], lot["warehouse"], lot["material"], lot["manufactured_on"], lot["expires_on"], lot["status"]) == (
        "B2026-0113", world.north, world.diesel, "2026-01-10", "2028-01-10", "available")
    assert lot["balance"] == "12000.5" and lot["origin_lot_id"] is None
    await assert_ledger_consistent(pg_pool, lot_id)


async def test_a_receipt_into_a_known_lot_code_tops_up_the_same_lot(client, operator, world):
    first = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                          quantity="100", lot="TOP")
    again = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                          quantity="0.5", lot="TOP")
    other = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.military,
                          quantity="40", lot="TOP")
    assert lot_of(first) == lot_of(again) == lot_of(other)
    assert again["balances"] == [position(lot_of(first), world.civil, "100.5")]
    assert other["balances"] == [position(lot_of(first), world.military, "40.0")]
    assert await owner_balances(client, operator, lot_of(first)) == {world.civil: "100.5", world.military: "40.0"}
    lot = (await client.get(f"/api/v1/lots/{lot_of(first)}", headers=operator)).json()
    assert lot["balance"] == "140.5"


async def test_the_same_lot_code_at_another_warehouse_is_another_lot(client, operator, world):
    north = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                          quantity="10", lot="SAME")
    south = await receive(client, operator, warehouse=world.south, material=world.diesel, owner=world.civil,
                          quantity="20", lot="SAME")
    assert lot_of(north) != lot_of(south)
    assert await owner_balances(client, operator, lot_of(north)) == {world.civil: "10.0"}


async def test_a_receipt_accepts_a_json_number(client, operator, world):
    r = await post_movement(client, operator, {
        "kind": "receipt", "warehouse": world.north, "material": world.diesel, "owner": world.civil, "quantity": 12000.5,
        "lot": {"code": "NUM", "expires_on": "2030-01-01"}})
    assert r.status_code == 201, r.text
    assert r.json()["balances"][0]["balance"] == "12000.5"


async def test_a_perishable_receipt_without_expiry_expires_after_its_shelf_life(client, operator, world):
    r = await post_movement(client, operator, {
        "kind": "receipt", "warehouse": world.north, "material": world.vaccine, "owner": world.civil, "quantity": "10",
        "lot": {"code": "SHELF", "manufactured_on": "2026-03-01"}})
    assert r.status_code == 201, r.text
    lot = (await client.get(f"/api/v1/lots/{lot_of(r.json())}", headers=operator)).json()
    assert lot["expires_on"] == "2027-03-01"  # 365 days of shelf life


async def test_a_perishable_receipt_needs_an_expiry_or_a_manufacturing_date(client, operator, world):
    r = await post_movement(client, operator, {
        "kind": "receipt", "warehouse": world.north, "material": world.vaccine, "owner": world.civil, "quantity": "10",
        "lot": {"code": "NODATE"}})
    problem = assert_problem(r, 422, "validation")
    assert [e["field"] for e in problem["errors"]] == ["lot.expires_on"]
    assert await list_all(client, operator, "/api/v1/stock", material=world.vaccine) == []


async def test_a_lot_cannot_expire_before_it_was_made(client, operator, world):
    r = await post_movement(client, operator, {
        "kind": "receipt", "warehouse": world.north, "material": world.diesel, "owner": world.civil, "quantity": "10",
        "lot": {"code": "BACKWARDS", "manufactured_on": "2027-01-01", "expires_on": "2026-01-01"}})
    assert [e["field"] for e in assert_problem(r, 422, "validation")["errors"]] == ["lot.expires_on"]


async def test_a_receipt_into_a_known_lot_with_another_expiry_is_a_conflict(client, operator, world):
    first = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                          quantity="10", lot="EXP", expires_on="2030-01-01")
    r = await post_movement(client, operator, {
        "kind": "receipt", "warehouse": world.north, "material": world.diesel, "owner": world.military, "quantity": "5",
        "lot": {"code": "EXP", "expires_on": "2031-01-01"}})
    problem = assert_problem(r, 409, "conflict")
    assert problem["lot_id"] == lot_of(first)
    lot = (await client.get(f"/api/v1/lots/{lot_of(first)}", headers=operator)).json()
    assert lot["balance"] == "10.0" and [o["owner"] for o in lot["owners"]] == [world.civil]


# -- issue -------------------------------------------------------------------------------------

async def test_an_issue_picks_lots_first_expiring_first_across_several_lots(client, operator, world, pg_pool):
    late = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                         quantity="100", lot="LATE", expires_on="2031-01-01")
    soon = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                         quantity="30", lot="SOON", expires_on="2027-06-01")
    mid = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                        quantity="50", lot="MID", expires_on="2029-01-01")
    r = await post_movement(client, operator, {"kind": "issue", "warehouse": world.north, "material": world.diesel,
                                               "owner": world.civil, "quantity": "100", "reason": "consumption"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["kind"] == "issue" and body["reason"] == "consumption"
    assert body["postings"] == [
        stock_posting(lot_of(soon), world.civil, world.diesel, "-30.0"), external_posting("consumption", world.diesel, "30.0"),
        stock_posting(lot_of(mid), world.civil, world.diesel, "-50.0"), external_posting("consumption", world.diesel, "50.0"),
        stock_posting(lot_of(late), world.civil, world.diesel, "-20.0"), external_posting("consumption", world.diesel, "20.0"),
    ]
    assert sorted((b["lot_id"], b["balance"]) for b in body["balances"]) == sorted(
        [(lot_of(soon), "0.0"), (lot_of(mid), "0.0"), (lot_of(late), "80.0")])
    assert await owner_balances(client, operator, lot_of(late)) == {world.civil: "80.0"}
    await assert_ledger_consistent(pg_pool, lot_of(soon))


async def test_an_issue_takes_only_the_owners_stock(client, operator, world):
    shared = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.military,
                           quantity="100", lot="SHARED", expires_on="2027-01-01")
    await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                  quantity="10", lot="SHARED", expires_on="2027-01-01")
    r = await post_movement(client, operator, {"kind": "issue", "warehouse": world.north, "material": world.diesel,
                                               "owner": world.civil, "quantity": "10.5"})
    problem = assert_problem(r, 409, "insufficient-stock")
    assert problem["available"] == "10.0"
    assert await owner_balances(client, operator, lot_of(shared)) == {world.civil: "10.0", world.military: "100.0"}


async def test_an_issue_with_a_lot_id_takes_that_lot_even_if_another_expires_first(client, operator, world):
    first = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                          quantity="10", lot="FIRST", expires_on="2027-01-01")
    chosen = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                           quantity="10", lot="CHOSEN", expires_on="2029-01-01")
    r = await post_movement(client, operator, {"kind": "issue", "lot_id": lot_of(chosen), "owner": world.civil,
                                               "quantity": "2.5", "warehouse": world.north, "material": world.diesel})
    assert r.status_code == 201, r.text
    assert r.json()["postings"] == [stock_posting(lot_of(chosen), world.civil, world.diesel, "-2.5"),
                                    external_posting("consumption", world.diesel, "2.5")]
    assert r.json()["balances"] == [position(lot_of(chosen), world.civil, "7.5")]
    assert await owner_balances(client, operator, lot_of(first)) == {world.civil: "10.0"}


async def test_an_issue_with_a_lot_id_that_is_elsewhere_is_invalid(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="HERE"))
    r = await post_movement(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "1",
                                               "warehouse": world.south, "material": world.vaccine})
    assert {e["field"] for e in assert_problem(r, 422, "validation")["errors"]} == {"warehouse", "material"}
    assert await owner_balances(client, operator, lot) == {world.civil: "10.0"}


async def test_an_issue_from_a_lot_the_owner_holds_nothing_in_is_insufficient(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="NOTMINE"))
    r = await post_movement(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.military, "quantity": "1"})
    assert assert_problem(r, 409, "insufficient-stock")["available"] == "0.0"


async def test_an_issue_from_an_unknown_lot_is_invalid(client, operator, world):
    for lot_id in (str(uuid.uuid4()), "not-a-uuid"):
        r = await post_movement(client, operator, {"kind": "issue", "lot_id": lot_id, "owner": world.civil, "quantity": "1"})
        assert [e["field"] for e in assert_problem(r, 422, "validation")["errors"]] == ["lot_id"]


async def test_an_issue_without_a_lot_needs_warehouse_and_material(client, operator, world):
    r = await post_movement(client, operator, {"kind": "issue", "owner": world.civil, "quantity": "1"})
    assert {e["field"] for e in assert_problem(r, 422, "validation")["errors"]} == {"warehouse", "material"}


async def test_an_issue_of_more_than_is_usable_is_refused_with_the_usable_total(client, operator, world):
    fresh = await receive(client, operator, warehouse=world.north, material=world.vaccine, owner=world.civil,
                          quantity="70", lot="FRESH", expires_on="2030-01-01")
    await receive(client, operator, warehouse=world.north, material=world.vaccine, owner=world.civil,
                  quantity="500", lot="STALE", expires_on="2020-01-01")
    r = await post_movement(client, operator, {"kind": "issue", "warehouse": world.north, "material": world.vaccine,
                                               "owner": world.civil, "quantity": "71"})
    problem = assert_problem(r, 409, "insufficient-stock")
    assert problem["available"] == "70" and problem["requested"] == "71"
    assert await owner_balances(client, operator, lot_of(fresh)) == {world.civil: "70"}


async def test_an_issue_where_the_owner_holds_nothing_is_insufficient(client, operator, world):
    r = await post_movement(client, operator, {"kind": "issue", "warehouse": world.north, "material": world.diesel,
                                               "owner": world.civil, "quantity": "1"})
    assert assert_problem(r, 409, "insufficient-stock")["available"] == "0.0"


# -- adjustment, write-off, ownership transfer -------------------------------------------------

async def test_a_count_above_the_balance_posts_the_gain_from_adjustment(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="CNT"))
    r = await post_movement(client, operator, {"kind": "adjustment", "lot_id": lot, "owner": world.civil,
                                               "counted": "102.5", "reason": "annual count"})
    assert r.status_code == 201, r.text
    assert r.json()["postings"] == [stock_posting(lot, world.civil, world.diesel, "2.5"),
                                    external_posting("adjustment", world.diesel, "-2.5")]
    assert r.json()["balances"] == [position(lot, world.civil, "102.5")]
    assert await owner_balances(client, operator, lot) == {world.civil: "102.5"}


async def test_a_count_below_the_balance_posts_the_shortfall_to_loss(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="CNT"))
    r = await post_movement(client, operator, {"kind": "adjustment", "lot_id": lot, "owner": world.civil, "counted": 96})
    assert r.status_code == 201, r.text
    assert r.json()["postings"] == [stock_posting(lot, world.civil, world.diesel, "-4.0"),
                                    external_posting("loss", world.diesel, "4.0")]
    assert await owner_balances(client, operator, lot) == {world.civil: "96.0"}


async def test_a_count_of_zero_empties_the_position(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="8", lot="CNT"))
    r = await post_movement(client, operator, {"kind": "adjustment", "lot_id": lot, "owner": world.civil, "counted": "0"})
    assert r.status_code == 201 and r.json()["balances"] == [position(lot, world.civil, "0.0")]
    assert await list_all(client, operator, "/api/v1/stock", material=world.diesel) == []


async def test_a_count_that_matches_posts_nothing_and_changes_nothing(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="8", lot="CNT"))
    r = await post_movement(client, operator, {"kind": "adjustment", "lot_id": lot, "owner": world.civil, "counted": "8.0"})
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "adjustment" and r.json()["postings"] == []
    assert await owner_balances(client, operator, lot) == {world.civil: "8.0"}


async def test_a_count_finds_stock_of_an_owner_with_no_position_yet(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="8", lot="CNT"))
    r = await post_movement(client, operator, {"kind": "adjustment", "lot_id": lot, "owner": world.enterprise, "counted": "3"})
    assert r.status_code == 201, r.text
    assert r.json()["postings"] == [stock_posting(lot, world.enterprise, world.diesel, "3.0"),
                                    external_posting("adjustment", world.diesel, "-3.0")]
    assert await owner_balances(client, operator, lot) == {world.civil: "8.0", world.enterprise: "3.0"}


@pytest.mark.parametrize(("counted", "message"), [("-1", "negative"), ("1.25", "decimal places"), ("NaN", "finite")])
async def test_a_bad_count_is_invalid(client, operator, world, counted, message):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="8", lot="CNT"))
    r = await post_movement(client, operator, {"kind": "adjustment", "lot_id": lot, "owner": world.civil, "counted": counted})
    [error] = assert_problem(r, 422, "validation")["errors"]
    assert error["field"] == "counted" and message in error["message"]


async def test_a_write_off_posts_the_quantity_to_loss(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="WO"))
    r = await post_movement(client, operator, {"kind": "write_off", "lot_id": lot, "owner": world.civil,
                                               "quantity": "12.5", "reason": "contaminated"})
    assert r.status_code == 201, r.text
    assert r.json()["postings"] == [stock_posting(lot, world.civil, world.diesel, "-12.5"),
                                    external_posting("loss", world.diesel, "12.5")]
    assert r.json()["reason"] == "contaminated"
    assert await owner_balances(client, operator, lot) == {world.civil: "87.5"}


async def test_a_write_off_of_more_than_is_held_is_insufficient(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="WO"))
    r = await post_movement(client, operator, {"kind": "write_off", "lot_id": lot, "owner": world.civil, "quantity": "10.1"})
    assert assert_problem(r, 409, "insufficient-stock")["available"] == "10.0"
    r = await post_movement(client, operator, {"kind": "write_off", "lot_id": lot, "owner": world.military, "quantity": "1"})
    assert assert_problem(r, 409, "insufficient-stock")["available"] == "0.0"
    assert await owner_balances(client, operator, lot) == {world.civil: "10.0"}


async def test_an_ownership_transfer_changes_title_not_custody(client, operator, world, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="TITLE"))
    r = await post_movement(client, operator, {"kind": "ownership_transfer", "lot_id": lot, "from_owner": world.civil,
                                               "to_owner": world.military, "quantity": "40", "reason": "requisition"})
    assert r.status_code == 201, r.text
    assert r.json()["postings"] == [stock_posting(lot, world.civil, world.diesel, "-40.0"),
                                    stock_posting(lot, world.military, world.diesel, "40.0")]
    assert sorted((b["owner"], b["balance"]) for b in r.json()["balances"]) == sorted(
        [(world.civil, "60.0"), (world.military, "40.0")])
    after = (await client.get(f"/api/v1/lots/{lot}", headers=operator)).json()
    assert after["warehouse"] == world.north and after["balance"] == "100.0"
    assert {o["owner"]: o["balance"] for o in after["owners"]} == {world.civil: "60.0", world.military: "40.0"}
    await assert_ledger_consistent(pg_pool, lot)


async def test_an_ownership_transfer_to_the_same_owner_is_invalid(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="TITLE"))
    r = await post_movement(client, operator, {"kind": "ownership_transfer", "lot_id": lot, "from_owner": world.civil,
                                               "to_owner": world.civil, "quantity": "1"})
    assert [e["field"] for e in assert_problem(r, 422, "validation")["errors"]] == ["to_owner"]


@pytest.mark.parametrize("field", ["from_owner", "to_owner"])
async def test_an_ownership_transfer_names_the_unknown_owner(client, operator, world, field):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="TITLE"))
    body = {"kind": "ownership_transfer", "lot_id": lot, "from_owner": world.civil, "to_owner": world.military,
            "quantity": "1", field: f"NOBODY-{world.uid}"}
    r = await post_movement(client, operator, body)
    assert [e["field"] for e in assert_problem(r, 422, "validation")["errors"]] == [field]
    assert await owner_balances(client, operator, lot) == {world.civil: "100.0"}


async def test_an_ownership_transfer_of_more_than_is_held_is_refused_and_leaves_no_trace(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="TITLE"))
    r = await post_movement(client, operator, {"kind": "ownership_transfer", "lot_id": lot, "from_owner": world.civil,
                                               "to_owner": world.enterprise, "quantity": "11"})
    assert assert_problem(r, 409, "insufficient-stock")["available"] == "10.0"
    assert await owner_balances(client, operator, lot) == {world.civil: "10.0"}
    r = await post_movement(client, operator, {"kind": "ownership_transfer", "lot_id": lot, "from_owner": world.military,
                                               "to_owner": world.enterprise, "quantity": "1"})
    assert assert_problem(r, 409, "insufficient-stock")["available"] == "0.0"


# -- reversal ----------------------------------------------------------------------------------

async def test_a_reversal_of_an_issue_restores_the_stock(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="REV"))
    issued = (await post_movement(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil,
                                                     "quantity": "4"})).json()
    r = await post_movement(client, operator, {"kind": "reversal", "movement_id": issued["id"], "reason": "keyed twice"})
    assert r.status_code == 201, r.text
    undone = r.json()
    assert undone["kind"] == "reversal" and undone["reverses"] == issued["id"]
    assert undone["postings"] == [stock_posting(lot, world.civil, world.diesel, "4.0"),
                                  external_posting("consumption", world.diesel, "-4.0")]
    assert undone["balances"] == [position(lot, world.civil, "10.0")]
    assert await owner_balances(client, operator, lot) == {world.civil: "10.0"}


async def test_a_movement_is_reversed_only_once(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="REV"))
    issued = (await post_movement(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil,
                                                     "quantity": "4"})).json()
    first = await post_movement(client, operator, {"kind": "reversal", "movement_id": issued["id"]})
    assert first.status_code == 201
    again = await post_movement(client, operator, {"kind": "reversal", "movement_id": issued["id"]})
    assert assert_problem(again, 409, "conflict")["reversed_by"] == first.json()["id"]
    of_the_reversal = await post_movement(client, operator, {"kind": "reversal", "movement_id": first.json()["id"]})
    assert_problem(of_the_reversal, 409, "conflict")
    assert await owner_balances(client, operator, lot) == {world.civil: "10.0"}


async def test_a_reversal_of_a_receipt_whose_stock_has_left_is_insufficient(client, operator, world):
    received = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                             quantity="10", lot="REV")
    await post_movement(client, operator, {"kind": "issue", "lot_id": lot_of(received), "owner": world.civil, "quantity": "6"})
    r = await post_movement(client, operator, {"kind": "reversal", "movement_id": received["id"]})
    assert assert_problem(r, 409, "insufficient-stock")["available"] == "4.0"
    assert await owner_balances(client, operator, lot_of(received)) == {world.civil: "4.0"}


async def test_a_reversal_of_an_unknown_movement_is_not_found(client, operator):
    for movement_id in (str(uuid.uuid4()), "nope"):
        r = await post_movement(client, operator, {"kind": "reversal", "movement_id": movement_id})
        assert_problem(r, 404, "not-found")


# -- unusable lots -----------------------------------------------------------------------------

async def _unusable_lot(client, operator, world, reason: str) -> str:
    expires_on = "2020-01-01" if reason == "expired" else "2030-01-01"
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot=f"U-{reason}", expires_on=expires_on))
    if reason != "expired":
        r = await client.post(f"/api/v1/lots/{lot}/status", json={"status": reason, "reason": "lab"}, headers=operator)
        assert r.status_code == 200 and r.json()["status"] == reason
    return lot


@pytest.mark.parametrize("reason", ["expired", "quarantine", "recalled"])
async def test_unusable_stock_is_never_issued_or_transferred(client, operator, world, reason):
    lot = await _unusable_lot(client, operator, world, reason)
    direct = await post_movement(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "1"})
    problem = assert_problem(direct, 409, "unusable-lot")
    assert problem["reason"] == reason and problem["lot_id"] == lot
    picked = await post_movement(client, operator, {"kind": "issue", "warehouse": world.north, "material": world.diesel,
                                                    "owner": world.civil, "quantity": "1"})
    assert assert_problem(picked, 409, "insufficient-stock")["available"] == "0.0"
    moved = await client.post("/api/v1/transfers", headers={**operator, **idem()}, json={
        "from_warehouse": world.north, "to_warehouse": world.south,
        "lines": [{"lot_id": lot, "owner": world.civil, "quantity": "1"}]})
    assert assert_problem(moved, 409, "unusable-lot")["reason"] == reason
    assert await owner_balances(client, operator, lot) == {world.civil: "10.0"}


@pytest.mark.parametrize("reason", ["expired", "quarantine", "recalled"])
async def test_unusable_stock_can_still_be_written_off_counted_and_retitled(client, operator, world, reason):
    lot = await _unusable_lot(client, operator, world, reason)
    written = await post_movement(client, operator, {"kind": "write_off", "lot_id": lot, "owner": world.civil,
                                                     "quantity": "6", "reason": "destroyed"})
    assert written.status_code == 201, written.text
    assert written.json()["postings"][1] == external_posting("loss", world.diesel, "6.0")
    counted = await post_movement(client, operator, {"kind": "adjustment", "lot_id": lot, "owner": world.civil, "counted": "3"})
    assert counted.status_code == 201, counted.text
    retitled = await post_movement(client, operator, {"kind": "ownership_transfer", "lot_id": lot,
                                                      "from_owner": world.civil, "to_owner": world.enterprise, "quantity": "3"})
    assert retitled.status_code == 201, retitled.text
    assert await owner_balances(client, operator, lot) == {world.enterprise: "3.0"}


# -- bad input ---------------------------------------------------------------------------------

ISSUE = {"kind": "issue", "quantity": "1"}


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"quantity": "1.25"}, "quantity", "decimal places"),
    ({"quantity": 1.25}, "quantity", "decimal places"),
    ({"quantity": "1.000000000000000000000000000001"}, "quantity", "decimal places"),
    ({"quantity": "0"}, "quantity", "greater than zero"),
    ({"quantity": 0}, "quantity", "greater than zero"),
    ({"quantity": "-5"}, "quantity", "negative"),
    ({"quantity": "NaN"}, "quantity", "finite"),
    ({"quantity": "Infinity"}, "quantity", "finite"),
    ({"quantity": "1e999999"}, "quantity", "larger"),
    ({"quantity": 1e300}, "quantity", "larger"),
    ({"quantity": True}, "quantity", ""),
    ({"quantity": "ten"}, "quantity", ""),
    ({"owner": "NOBODY-X"}, "owner", "unknown"),
    ({"warehouse": "NOWHERE-X"}, "warehouse", "unknown"),
    ({"material": "NOTHING-X"}, "material", "unknown"),
    ({"surprise": 1}, "surprise", "unknown field"),
    ({"kind": "teleport"}, "kind", ""),
])
async def test_bad_input_is_a_422_problem_that_writes_nothing(client, operator, world, change, field, message):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="BAD"))
    before = await ledger_of(client, operator, world.diesel)
    body = {**ISSUE, "warehouse": world.north, "material": world.diesel, "owner": world.civil, **change}
    problem = assert_problem(await post_movement(client, operator, body), 422, "validation")
    assert any(e["field"] == field and message in e["message"] for e in problem["errors"]), problem
    assert await owner_balances(client, operator, lot) == {world.civil: "10.0"}
    assert await ledger_of(client, operator, world.diesel) == before


async def test_a_manufacturing_date_too_late_to_add_the_shelf_life_to_is_invalid(client, operator, world):
    r = await post_movement(client, operator, {
        "kind": "receipt", "warehouse": world.north, "material": world.vaccine, "owner": world.civil, "quantity": "10",
        "lot": {"code": "FAR", "manufactured_on": "9999-12-01"}})
    assert [e["field"] for e in assert_problem(r, 422, "validation")["errors"]] == ["lot.manufactured_on"]
    assert await list_all(client, operator, "/api/v1/stock", material=world.vaccine) == []


@pytest.mark.parametrize("change", [{"note": "signed\x00"}, {"reason": "\x00"}, {"lot": {"code": "L\x00T"}}])
async def test_text_postgresql_cannot_store_is_invalid_not_a_500(client, operator, world, change):
    body = {"kind": "receipt", "warehouse": world.north, "material": world.diesel, "owner": world.civil, "quantity": "1",
            "lot": {"code": "NUL", "expires_on": "2030-01-01"}, **change}
    assert_problem(await post_movement(client, operator, body), 422, "validation")
    assert await ledger_of(client, operator, world.diesel) == []


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "receipt", "quantity": "1", "lot": {"code": "X"}}, "warehouse"),
    ({"kind": "receipt", "warehouse": "W", "material": "M", "owner": "O", "quantity": "1"}, "lot"),
    ({"kind": "receipt", "warehouse": "W", "material": "M", "owner": "O", "quantity": "1", "lot": {}}, "lot.code"),
    ({"kind": "write_off", "quantity": "1", "owner": "X"}, "lot_id"),
    ({"kind": "reversal"}, "movement_id"),
    ({"quantity": "1"}, "kind"),
])
async def test_a_missing_member_is_named_in_the_errors(client, operator, body, field):
    problem = assert_problem(await post_movement(client, operator, body), 422, "validation")
    assert [e["field"] for e in problem["errors"]] == [field], problem


async def test_unknown_codes_in_a_receipt_are_each_named(client, operator, uid):
    r = await post_movement(client, operator, {"kind": "receipt", "warehouse": f"W-{uid}", "material": f"M-{uid}",
                                               "owner": f"O-{uid}", "quantity": "1", "lot": {"code": "L"}})
    assert {e["field"] for e in assert_problem(r, 422, "validation")["errors"]} == {"warehouse", "material", "owner"}


@pytest.mark.parametrize("raw", [b'{"kind": "issue",', b"not json", b"[1, 2", b"", b'"just a string"', b"null"])
async def test_malformed_json_is_a_problem_not_a_500(client, operator, raw):
    r = await client.post("/api/v1/movements", content=raw,
                          headers={**operator, **idem(), "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith(PROBLEM) and r.json()["type"] == "validation"


async def test_a_ledger_post_without_an_idempotency_key_is_refused(client, operator, world):
    r = await client.post("/api/v1/movements", headers=operator, json={
        "kind": "receipt", "warehouse": world.north, "material": world.diesel, "owner": world.civil, "quantity": "1",
        "lot": {"code": "NOKEY", "expires_on": "2030-01-01"}})
    problem = assert_problem(r, 422, "validation")
    assert [e["field"] for e in problem["errors"]] == ["Idempotency-Key"]
    assert await list_all(client, operator, "/api/v1/stock", material=world.diesel) == []


@pytest.mark.parametrize("key", ["", "x" * 201, "tab\there", "snow☃man"])
async def test_an_idempotency_key_must_be_1_to_200_printable_characters(client, operator, world, key):
    r = await client.post("/api/v1/movements", headers={**operator, "Idempotency-Key": key.encode()}, json={
        "kind": "receipt", "warehouse": world.north, "material": world.diesel, "owner": world.civil, "quantity": "1",
        "lot": {"code": "BADKEY", "expires_on": "2030-01-01"}})
    assert assert_problem(r, 422, "validation")["errors"][0]["field"] == "Idempotency-Key"
    assert await list_all(client, operator, "/api/v1/stock", material=world.diesel) == []


# -- idempotency -------------------------------------------------------------------------------

async def test_the_same_key_and_body_replays_the_first_answer_and_moves_stock_once(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="IDEM"))
    body = {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "3"}
    first = await post_movement(client, operator, body, key="issue-once")
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    again = await post_movement(client, operator, body, key="issue-once")
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await owner_balances(client, operator, lot) == {world.civil: "7.0"}
    issues = await list_all(client, operator, "/api/v1/movements", material=world.diesel, kind="issue")
    assert [m["id"] for m in issues] == [first.json()["id"]]


async def test_concurrent_requests_with_one_key_post_once_and_all_get_the_same_answer(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="IDEM"))
    body = {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "1"}
    answers = await asyncio.gather(*[post_movement(client, operator, body, key=f"burst-{world.uid}") for _ in range(8)])
    assert [r.status_code for r in answers] == [201] * 8
    assert len({r.json()["id"] for r in answers}) == 1
    assert sorted(r.headers.get("idempotent-replayed", "") for r in answers) == [""] + ["true"] * 7
    assert await owner_balances(client, operator, lot) == {world.civil: "9.0"}


async def test_concurrent_issues_never_overdraw_a_position(client, operator, world, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="RACE"))
    body = {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "3"}
    answers = await asyncio.gather(*[post_movement(client, operator, body) for _ in range(5)])
    assert sorted(r.status_code for r in answers) == [201, 201, 201, 409, 409]
    assert {r.json()["type"] for r in answers if r.status_code == 409} == {"insufficient-stock"}
    assert await owner_balances(client, operator, lot) == {world.civil: "1.0"}
    await assert_ledger_consistent(pg_pool, lot)


async def test_the_same_key_with_a_json_body_spelled_differently_is_the_same_request(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="IDEM"))
    headers = {**operator, "Idempotency-Key": f"spelling-{world.uid}", "Content-Type": "application/json"}
    first = await client.post("/api/v1/movements", headers=headers,
                              content=f'{{"kind": "issue", "lot_id": "{lot}", "owner": "{world.civil}", "quantity": "3"}}')
    again = await client.post("/api/v1/movements", headers=headers,
                              content=f'{{"quantity":"3","owner":"{world.civil}","lot_id":"{lot}","kind":"issue"}}')
    assert first.status_code == 201 and again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert await owner_balances(client, operator, lot) == {world.civil: "7.0"}


async def test_the_same_key_with_another_body_is_an_idempotency_conflict(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="IDEM"))
    key = f"conflict-{world.uid}"
    assert (await post_movement(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil,
                                                   "quantity": "3"}, key=key)).status_code == 201
    other = await post_movement(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "4"}, key=key)
    assert assert_problem(other, 409, "idempotency-conflict")["idempotency_key"] == key
    assert await owner_balances(client, operator, lot) == {world.civil: "7.0"}


async def test_idempotency_keys_are_scoped_per_principal(client, operator, make_token, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="IDEM"))
    another = {"Authorization": f"Bearer {await make_token('operator', regions=['TEST-NATION'])}"}
    body = {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "2"}
    mine = await post_movement(client, operator, body, key=f"shared-{world.uid}")
    theirs = await post_movement(client, another, body, key=f"shared-{world.uid}")
    assert mine.status_code == theirs.status_code == 201 and "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert await owner_balances(client, operator, lot) == {world.civil: "6.0"}


async def test_a_refused_request_leaves_no_trace_and_its_key_stays_usable(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="TRACE"))
    before = await ledger_of(client, operator, world.diesel)
    key = f"retry-{world.uid}"
    refused = await post_movement(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil,
                                                     "quantity": "11"}, key=key)
    assert_problem(refused, 409, "insufficient-stock")
    assert await owner_balances(client, operator, lot) == {world.civil: "10.0"}
    assert await ledger_of(client, operator, world.diesel) == before
    retried = await post_movement(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil,
                                                     "quantity": "10"}, key=key)
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert retried.json()["balances"] == [position(lot, world.civil, "0.0")]
    assert await owner_balances(client, operator, lot) == {}


async def test_a_refused_ownership_transfer_opens_no_position_for_the_new_owner(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="TRACE"))
    r = await post_movement(client, operator, {"kind": "ownership_transfer", "lot_id": lot, "from_owner": world.civil,
                                               "to_owner": world.military, "quantity": "99"})
    assert_problem(r, 409, "insufficient-stock")
    lot_view = (await client.get(f"/api/v1/lots/{lot}", headers=operator)).json()
    assert [o["owner"] for o in lot_view["owners"]] == [world.civil]


async def test_a_refused_receipt_opens_no_position_for_its_owner(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="TRACE", expires_on="2030-01-01"))
    r = await post_movement(client, operator, {"kind": "receipt", "warehouse": world.north, "material": world.diesel,
                                               "owner": world.military, "quantity": "5",
                                               "lot": {"code": "TRACE", "expires_on": "2035-01-01"}})
    assert_problem(r, 409, "conflict")
    lot_view = (await client.get(f"/api/v1/lots/{lot}", headers=operator)).json()
    assert [o["owner"] for o in lot_view["owners"]] == [world.civil]


# -- batches -----------------------------------------------------------------------------------

async def _batch(client, headers, movements: list[dict], atomic: bool = True, key: str | None = None):
    return await client.post("/api/v1/movements/batch", json={"movements": movements, "atomic": atomic},
                             headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})


def _receipt(world, quantity: str, lot: str = "BATCH", owner: str | None = None) -> dict:
    return {"kind": "receipt", "warehouse": world.north, "material": world.diesel, "owner": owner or world.civil,
            "quantity": quantity, "lot": {"code": lot, "expires_on": "2030-01-01"}}


def _issue(world, quantity: str) -> dict:
    return {"kind": "issue", "warehouse": world.north, "material": world.diesel, "owner": world.civil, "quantity": quantity}


async def test_an_atomic_batch_applies_every_movement_in_order(client, operator, world):
    r = await _batch(client, operator, [_receipt(world, "100"), _issue(world, "30"), _receipt(world, "5"),
                                        _issue(world, "75")])
    assert r.status_code == 201, r.text
    results = r.json()["results"]
    assert [(x["index"], x["status"], x["movement"]["kind"]) for x in results] == [
        (0, 201, "receipt"), (1, 201, "issue"), (2, 201, "receipt"), (3, 201, "issue")]
    lot = lot_of(results[0]["movement"])
    assert [x["movement"]["balances"][0]["balance"] for x in results] == ["100.0", "70.0", "75.0", "0.0"]
    assert await owner_balances(client, operator, lot) == {}
    ledger = await ledger_of(client, operator, world.diesel)
    assert [m["id"] for m in ledger] == [x["movement"]["id"] for x in reversed(results)]


async def test_an_atomic_batch_that_fails_names_the_index_and_writes_nothing(client, operator, world):
    r = await _batch(client, operator, [_receipt(world, "10"), _issue(world, "4"), _issue(world, "7")])
    problem = assert_problem(r, 409, "insufficient-stock")
    assert problem["index"] == 2 and "movements[2]" in problem["detail"] and problem["available"] == "6.0"
    assert await list_all(client, operator, "/api/v1/stock", material=world.diesel) == []
    assert await ledger_of(client, operator, world.diesel) == []


async def test_an_atomic_batch_with_an_invalid_item_names_its_field(client, operator, world):
    r = await _batch(client, operator, [_receipt(world, "10"), _issue(world, "1.25")])
    problem = assert_problem(r, 422, "validation")
    assert problem["index"] == 1 and [e["field"] for e in problem["errors"]] == ["movements[1].quantity"]
    assert await ledger_of(client, operator, world.diesel) == []


async def test_a_batch_item_of_the_wrong_shape_is_named_by_its_position(client, operator, world):
    r = await _batch(client, operator, [_receipt(world, "10"), {**_issue(world, "1"), "surprise": True}])
    assert [e["field"] for e in assert_problem(r, 422, "validation")["errors"]] == ["movements[1].surprise"]
    r = await _batch(client, operator, [_receipt(world, "10"), {"kind": "reversal", "movement_id": str(uuid.uuid4())}])
    assert assert_problem(r, 404, "not-found")["index"] == 1
    assert await ledger_of(client, operator, world.diesel) == []


async def test_a_non_atomic_batch_answers_each_item_and_keeps_what_succeeded(client, operator, world):
    r = await _batch(client, operator, [_receipt(world, "10"), _issue(world, "11"), _issue(world, "4"),
                                        _issue(world, "0.05")], atomic=False)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [(x["index"], x["status"]) for x in results] == [(0, 201), (1, 409), (2, 201), (3, 422)]
    assert results[1]["problem"]["type"] == "insufficient-stock" and results[1]["problem"]["available"] == "10.0"
    assert results[3]["problem"]["type"] == "validation" and "movement" not in results[3]
    assert results[2]["movement"]["balances"][0]["balance"] == "6.0"
    assert await owner_balances(client, operator, lot_of(results[0]["movement"])) == {world.civil: "6.0"}
    assert {m["kind"] for m in await ledger_of(client, operator, world.diesel)} == {"receipt", "issue"}
    assert len(await ledger_of(client, operator, world.diesel)) == 2


async def test_a_batch_mixes_every_kind_each_seeing_what_the_previous_left(client, operator, world):
    old = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                        quantity="50", lot="OLD", expires_on="2029-01-01")
    lot = lot_of(old)
    r = await _batch(client, operator, [
        {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "5"},                       # 45
        {"kind": "write_off", "lot_id": lot, "owner": world.civil, "quantity": "2"},                   # 43
        {"kind": "ownership_transfer", "lot_id": lot, "from_owner": world.civil, "to_owner": world.military,
         "quantity": "3"},                                                                              # 40 / 3
        {"kind": "adjustment", "lot_id": lot, "owner": world.civil, "counted": "41"},                  # 41
        {**_receipt(world, "10", "NEW"), "lot": {"code": "NEW", "expires_on": "2027-01-01"}},          # NEW 10
        _issue(world, "12"),                                                                            # NEW 0, OLD 39
        {"kind": "reversal", "movement_id": old["id"]},                                                 # 39 < 50
        {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "39"},                      # 0
    ], atomic=False)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201, 201, 201, 201, 201, 201, 409, 201]
    assert results[6]["problem"]["type"] == "insufficient-stock" and results[6]["problem"]["available"] == "39.0"
    assert [b["balance"] for b in results[3]["movement"]["balances"]] == ["41.0"]
    assert results[3]["movement"]["postings"][1] == external_posting("adjustment", world.diesel, "-1.0")
    new_lot = lot_of(results[4]["movement"])
    assert sorted((b["lot_id"], b["balance"]) for b in results[5]["movement"]["balances"]) == sorted(
        [(new_lot, "0.0"), (lot, "39.0")])
    assert await owner_balances(client, operator, lot) == {world.military: "3.0"}
    assert await owner_balances(client, operator, new_lot) == {}


async def test_a_batch_is_idempotent_as_a_whole(client, operator, world):
    movements = [_receipt(world, "10"), _issue(world, "1")]
    key = f"batch-{world.uid}"
    first = await _batch(client, operator, movements, key=key)
    again = await _batch(client, operator, movements, key=key)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert await owner_balances(client, operator, lot_of(first.json()["results"][0]["movement"])) == {world.civil: "9.0"}
    assert_problem(await _batch(client, operator, [_receipt(world, "11")], key=key), 409, "idempotency-conflict")


async def test_an_empty_batch_is_invalid(client, operator):
    assert_problem(await _batch(client, operator, []), 422, "validation")


# -- lot status --------------------------------------------------------------------------------

async def test_a_lot_goes_to_quarantine_then_recalled_then_back_with_its_history(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="STATUS"))
    for status, reason in (("quarantine", "suspect seal"), ("recalled", "supplier recall"), ("available", "cleared")):
        r = await client.post(f"/api/v1/lots/{lot}/status", json={"status": status, "reason": reason}, headers=operator)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status
    view = (await client.get(f"/api/v1/lots/{lot}", headers=operator)).json()
    assert view["status"] == "available"
    assert [(h["kind"], h["from"], h["to"], h["reason"]) for h in view["history"]] == [
        ("status", "available", "quarantine", "suspect seal"), ("status", "quarantine", "recalled", "supplier recall"),
        ("status", "recalled", "available", "cleared")]
    assert all(h["by"] and h["at"].endswith("Z") for h in view["history"])
    assert (await post_movement(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil,
                                                   "quantity": "1"})).status_code == 201


async def test_a_quarantined_lot_is_skipped_by_picking_until_released(client, operator, world):
    soon = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                                quantity="10", lot="SOON", expires_on="2027-01-01"))
    later = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                                 quantity="10", lot="LATER", expires_on="2029-01-01"))
    await client.post(f"/api/v1/lots/{soon}/status", json={"status": "quarantine"}, headers=operator)
    r = await post_movement(client, operator, _issue(world, "3"))
    assert [b["lot_id"] for b in r.json()["balances"]] == [later]
    await client.post(f"/api/v1/lots/{soon}/status", json={"status": "available"}, headers=operator)
    r = await post_movement(client, operator, _issue(world, "3"))
    assert [b["lot_id"] for b in r.json()["balances"]] == [soon]


async def test_setting_a_lot_to_its_current_status_adds_no_history(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="SAME"))
    r = await client.post(f"/api/v1/lots/{lot}/status", json={"status": "available"}, headers=operator)
    assert r.status_code == 200 and r.json()["history"] == []


async def test_lot_status_refusals(client, operator, auditor, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="REFUSE"))
    assert_problem(await client.post(f"/api/v1/lots/{lot}/status", json={"status": "destroyed"}, headers=operator),
                   422, "validation")
    assert_problem(await client.post(f"/api/v1/lots/{uuid.uuid4()}/status", json={"status": "recalled"}, headers=operator),
                   404, "not-found")
    assert_problem(await client.post(f"/api/v1/lots/{lot}/status", json={"status": "recalled"}, headers=auditor),
                   403, "forbidden")
    assert (await client.get(f"/api/v1/lots/{lot}", headers=operator)).json()["status"] == "available"
    assert_problem(await client.get(f"/api/v1/lots/{uuid.uuid4()}", headers=operator), 404, "not-found")
    assert_problem(await client.get("/api/v1/lots/not-a-uuid", headers=operator), 404, "not-found")


# -- reads: stock ------------------------------------------------------------------------------

@pytest.fixture
async def stocked(client, admin, operator, world):
    """North: diesel (civil, expiring 2027-03-01; military, 2029) and vaccine (civil, quarantined).
    South: diesel (enterprise). A sub-region's depot: vaccine (civil)."""
    sub, depot = f"SUB-{world.uid}", f"WH-SUB-{world.uid}"
    assert (await client.put(f"/api/v1/regions/{sub}", json={"name": "District", "parent": world.region},
                             headers=admin)).status_code == 201
    assert (await client.put(f"/api/v1/warehouses/{depot}", headers=admin, json={
        "name": "District depot", "operator": world.civil, "region": sub, "kind": "civilian", "latitude": 58.0,
        "longitude": 25.0})).status_code == 201
    lots = {
        "diesel_civil": await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                                      quantity="100", lot="D1", expires_on="2027-03-01"),
        "diesel_military": await receive(client, operator, warehouse=world.north, material=world.diesel,
                                         owner=world.military, quantity="200", lot="D2", expires_on="2029-01-01"),
        "vaccine_north": await receive(client, operator, warehouse=world.north, material=world.vaccine,
                                       owner=world.civil, quantity="500", lot="V1", expires_on="2027-06-01"),
        "diesel_south": await receive(client, operator, warehouse=world.south, material=world.diesel,
                                      owner=world.enterprise, quantity="300", lot="D3", expires_on="2028-01-01"),
        "vaccine_sub": await receive(client, operator, warehouse=depot, material=world.vaccine, owner=world.civil,
                                     quantity="50", lot="V2", expires_on="2027-02-01"),
    }
    lots = {name: lot_of(m) for name, m in lots.items()}
    r = await client.post(f"/api/v1/lots/{lots['vaccine_north']}/status", json={"status": "quarantine"}, headers=operator)
    assert r.status_code == 200
    return world, sub, depot, lots


async def _positions(client, headers, **filters) -> set[str]:
    return {p["lot_id"] for p in await list_all(client, headers, "/api/v1/stock", **filters)}


async def test_stock_positions_show_every_contract_field(client, operator, stocked):
    world, _, _, lots = stocked
    [row] = await list_all(client, operator, "/api/v1/stock", warehouse=world.north, material=world.diesel, owner=world.civil)
    assert {k: row[k] for k in ("lot_id", "lot_code", "warehouse", "material", "owner", "balance", "reserved",
                                "available", "expires_on", "status")} == {
        "lot_id": lots["diesel_civil"], "lot_code": "D1", "warehouse": world.north, "material": world.diesel,
        "owner": world.civil, "balance": "100.0", "reserved": "0.0", "available": "100.0", "expires_on": "2027-03-01",
        "status": "available"}


async def test_stock_filters_by_warehouse_material_owner_category_and_status(client, operator, stocked):
    world, _, depot, lots = stocked
    assert await _positions(client, operator, warehouse=world.north) == {
        lots["diesel_civil"], lots["diesel_military"], lots["vaccine_north"]}
    assert await _positions(client, operator, material=world.diesel) == {
        lots["diesel_civil"], lots["diesel_military"], lots["diesel_south"]}
    assert await _positions(client, operator, owner=world.civil, region=world.region) == {
        lots["diesel_civil"], lots["vaccine_north"], lots["vaccine_sub"]}
    assert await _positions(client, operator, category="medical", region=world.region) == {
        lots["vaccine_north"], lots["vaccine_sub"]}
    assert await _positions(client, operator, status="quarantine", region=world.region) == {lots["vaccine_north"]}
    assert await _positions(client, operator, status="available", warehouse=world.north) == {
        lots["diesel_civil"], lots["diesel_military"]}
    assert await _positions(client, operator, warehouse=depot, material=world.diesel) == set()


async def test_stock_by_region_includes_sub_regions(client, operator, stocked):
    world, sub, _, lots = stocked
    assert await _positions(client, operator, region=world.region) == set(lots.values())
    assert await _positions(client, operator, region=sub) == {lots["vaccine_sub"]}


async def test_stock_expiring_before_a_date(client, operator, stocked):
    world, _, _, lots = stocked
    assert await _positions(client, operator, region=world.region, expiring_before="2027-06-01") == {
        lots["diesel_civil"], lots["vaccine_sub"]}
    assert await _positions(client, operator, region=world.region, expiring_before="2027-02-01") == set()


async def test_stock_pages_by_cursor_without_repeats(client, operator, stocked):
    world, _, _, lots = stocked
    pages, seen, cursor = 0, [], None
    while True:
        r = await client.get("/api/v1/stock", headers=operator,
                             params={"region": world.region, "limit": 2, **({"cursor": cursor} if cursor else {})})
        seen += [p["lot_id"] for p in r.json()["items"]]
        pages, cursor = pages + 1, r.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 5 and set(seen) == set(lots.values())


async def test_empty_positions_are_not_stock(client, operator, stocked):
    world, _, _, lots = stocked
    await post_movement(client, operator, {"kind": "write_off", "lot_id": lots["diesel_south"], "owner": world.enterprise,
                                           "quantity": "300"})
    assert await _positions(client, operator, warehouse=world.south) == set()


def forged_cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("params", [
    {"category": "toys"}, {"status": "lost"}, {"expiring_before": "soon"}, {"limit": 0}, {"cursor": "%%%"},
    {"cursor": forged_cursor("abc")}, {"cursor": forged_cursor([1, 2])}, {"cursor": forged_cursor(2**70)},
    {"cursor": forged_cursor(1.5)}, {"cursor": forged_cursor({"after": 1})}, {"warehouse": "WH\x00"},
])
async def test_bad_stock_filters_are_a_validation_problem(client, operator, params):
    assert_problem(await client.get("/api/v1/stock", params=params, headers=operator), 422, "validation")


# -- reads: the ledger -------------------------------------------------------------------------

@pytest.fixture
async def ledger(client, operator, world):
    """Five movements with known times: receipts north (civil) and south (military), an issue, a
    write-off and an ownership transfer."""
    def at(day: int) -> str:
        return f"2026-03-{day:02d}T10:00:00Z"

    posted = []
    for body in (
        {**_receipt(world, "100", "L1"), "occurred_at": at(1)},
        {"kind": "receipt", "warehouse": world.south, "material": world.diesel, "owner": world.military,
         "quantity": "50", "lot": {"code": "L2", "expires_on": "2030-01-01"}, "occurred_at": at(2)},
    ):
        r = await post_movement(client, operator, body)
        assert r.status_code == 201, r.text
        posted.append(r.json())
    north_lot = lot_of(posted[0])
    for body in (
        {"kind": "issue", "lot_id": north_lot, "owner": world.civil, "quantity": "10", "occurred_at": at(3)},
        {"kind": "write_off", "lot_id": north_lot, "owner": world.civil, "quantity": "5", "occurred_at": at(4)},
        {"kind": "ownership_transfer", "lot_id": north_lot, "from_owner": world.civil, "to_owner": world.enterprise,
         "quantity": "20", "occurred_at": at(5)},
    ):
        r = await post_movement(client, operator, body)
        assert r.status_code == 201, r.text
        posted.append(r.json())
    return world, posted


async def test_the_ledger_lists_newest_first_and_pages_by_cursor(client, operator, ledger):
    world, posted = ledger
    ids, cursor = [], None
    while True:
        r = await client.get("/api/v1/movements", headers=operator,
                             params={"material": world.diesel, "limit": 2, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200 and len(r.json()["items"]) <= 2
        ids += [m["id"] for m in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert ids == [m["id"] for m in reversed(posted)]


async def test_a_page_holds_100_items_unless_a_limit_is_given(client, operator, world):
    r = await _batch(client, operator, [_receipt(world, "1") for _ in range(101)])
    assert r.status_code == 201, r.text
    first = (await client.get("/api/v1/movements", params={"material": world.diesel}, headers=operator)).json()
    assert len(first["items"]) == 100 and first["next_cursor"]
    rest = (await client.get("/api/v1/movements", params={"material": world.diesel, "cursor": first["next_cursor"]},
                             headers=operator)).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert rest["items"][0]["id"] == r.json()["results"][0]["movement"]["id"]
    assert await owner_balances(client, operator, lot_of(rest["items"][0])) == {world.civil: "101.0"}


async def test_one_movement_reads_back_with_its_postings(client, operator, ledger):
    _, posted = ledger
    issue = posted[2]
    r = await client.get(f"/api/v1/movements/{issue['id']}", headers=operator)
    assert r.status_code == 200
    read = r.json()
    assert {k: read[k] for k in ("id", "kind", "occurred_at", "postings", "reverses")} == {
        k: issue[k] for k in ("id", "kind", "occurred_at", "postings", "reverses")}
    assert read["recorded_by"]
    assert_problem(await client.get(f"/api/v1/movements/{uuid.uuid4()}", headers=operator), 404, "not-found")
    assert_problem(await client.get("/api/v1/movements/garbage", headers=operator), 404, "not-found")


async def test_the_ledger_filters_by_warehouse_owner_and_kind(client, operator, ledger):
    world, posted = ledger
    ids = [m["id"] for m in posted]

    async def listed(**filters) -> list[str]:
        return [m["id"] for m in await list_all(client, operator, "/api/v1/movements", **filters)]

    assert await listed(warehouse=world.south) == [ids[1]]
    assert await listed(warehouse=world.north) == [ids[4], ids[3], ids[2], ids[0]]
    assert await listed(owner=world.enterprise) == [ids[4]]
    assert await listed(owner=world.civil) == [ids[4], ids[3], ids[2], ids[0]]
    assert await listed(material=world.diesel, kind="receipt") == [ids[1], ids[0]]
    assert await listed(material=world.diesel, kind="write_off") == [ids[3]]
    assert await listed(material=world.vaccine) == []


async def test_the_ledger_filters_by_when_it_happened(client, operator, ledger):
    world, posted = ledger
    ids = [m["id"] for m in posted]
    between = await list_all(client, operator, "/api/v1/movements", material=world.diesel,
                             since="2026-03-02T00:00:00Z", until="2026-03-04T00:00:00Z")
    assert [m["id"] for m in between] == [ids[2], ids[1]]
    since = await list_all(client, operator, "/api/v1/movements", material=world.diesel, since="2026-03-04T10:00:00Z")
    assert [m["id"] for m in since] == [ids[4], ids[3]]


@pytest.mark.parametrize("params", [
    {"kind": "gift"}, {"since": "yesterday"}, {"cursor": "%%%"}, {"limit": 1001}, {"cursor": forged_cursor("abc")},
    {"cursor": forged_cursor(-1)}, {"cursor": forged_cursor(2**63)}, {"cursor": forged_cursor(["x"])}, {"owner": "\x00"},
])
async def test_bad_ledger_filters_are_a_validation_problem(client, operator, params):
    assert_problem(await client.get("/api/v1/movements", params=params, headers=operator), 422, "validation")


# -- who may post ------------------------------------------------------------------------------

async def test_an_auditor_may_read_but_not_post_and_nothing_is_written(client, operator, auditor, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="AUD"))
    before = await ledger_of(client, operator, world.diesel)
    for body in (_receipt(world, "5", "AUD"), _issue(world, "1"),
                 {"kind": "write_off", "lot_id": lot, "owner": world.civil, "quantity": "1"}):
        assert_problem(await post_movement(client, auditor, body), 403, "forbidden")
    assert_problem(await _batch(client, auditor, [_issue(world, "1")]), 403, "forbidden")
    assert await owner_balances(client, auditor, lot) == {world.civil: "10.0"}
    assert await ledger_of(client, auditor, world.diesel) == before


async def test_posting_without_a_token_is_unauthenticated(client, world):
    r = await client.post("/api/v1/movements", json=_issue(world, "1"), headers=idem())
    assert_problem(r, 401, "unauthenticated")
