"""Movements through POST /api/v1/movements: every kind's postings and balances, every refusal's
problem type, unusable lots, and who may post."""

from __future__ import annotations

import uuid

import pytest

from tests.api.ledger_checks import (
    assert_ledger_consistent, assert_problem, external_posting, issue_body, ledger_of, position, post_batch,
    receipt_body, stock_posting,
)
from tests.factories import idem, list_all, lot_of, owner_balances, post_movement, receive


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

async def test_a_count_above_the_balance_answers_the_gain_posted_from_adjustment(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="CNT"))
    r = await post_movement(client, operator, {"kind": "adjustment", "lot_id": lot, "owner": world.civil,
                                               "counted": "102.5", "reason": "annual count"})
    assert r.status_code == 201, r.text
    assert r.json()["postings"] == [stock_posting(lot, world.civil, world.diesel, "2.5"),
                                    external_posting("adjustment", world.diesel, "-2.5")]
    assert r.json()["balances"] == [position(lot, world.civil, "102.5")]
    assert await owner_balances(client, operator, lot) == {world.civil: "102.5"}


async def test_a_count_below_the_balance_answers_the_shortfall_posted_to_loss(client, operator, world):
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


async def test_a_write_off_answers_its_loss_posting_with_its_reason(client, operator, world):
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


async def test_an_ownership_transfer_to_the_same_owner_is_a_422_naming_to_owner(client, operator, world):
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


# -- who may post ------------------------------------------------------------------------------

async def test_an_auditor_may_read_but_not_post_and_nothing_is_written(client, operator, auditor, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="AUD"))
    before = await ledger_of(client, operator, world.diesel)
    for body in (receipt_body(world, "5", "AUD"), issue_body(world, "1"),
                 {"kind": "write_off", "lot_id": lot, "owner": world.civil, "quantity": "1"}):
        assert_problem(await post_movement(client, auditor, body), 403, "forbidden")
    assert_problem(await post_batch(client, auditor, [issue_body(world, "1")]), 403, "forbidden")
    assert await owner_balances(client, auditor, lot) == {world.civil: "10.0"}
    assert await ledger_of(client, auditor, world.diesel) == before


async def test_posting_without_a_token_is_unauthenticated(client, world):
    r = await client.post("/api/v1/movements", json=issue_body(world, "1"), headers=idem())
    assert_problem(r, 401, "unauthenticated")
