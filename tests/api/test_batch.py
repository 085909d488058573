"""Batches through POST /api/v1/movements/batch: movements apply in order, each seeing the balances
the previous ones left; atomic batches write all or nothing and name the failing item; non-atomic
batches answer each item and write only what succeeded; a batch is idempotent as a whole."""

from __future__ import annotations

import uuid

from tests.api.ledger_checks import assert_problem, external_posting, issue_body, ledger_of, post_batch, receipt_body
from tests.factories import idem, lot_of, make_world, owner_balances, receive


async def _balances(pg_pool, material: str) -> dict[tuple[str, str], int]:
    rows = await pg_pool.fetch(
        """SELECT l.code, p.code AS owner, a.balance FROM accounts a JOIN lots l ON l.id = a.lot_id
             JOIN parties p ON p.id = a.owner_id JOIN materials m ON m.id = a.material_id
            WHERE m.code = $1 AND a.type = 'stock'""", material)
    return {(r["code"], r["owner"]): r["balance"] for r in rows}


async def test_an_atomic_batch_applies_every_movement_in_order(client, operator, world):
    r = await post_batch(client, operator, [receipt_body(world, "100"), issue_body(world, "30"), receipt_body(world, "5"),
                                        issue_body(world, "75")])
    assert r.status_code == 201, r.text
    results = r.json()["results"]
    assert [(x["index"], x["status"], x["movement"]["kind"]) for x in results] == [
        (0, 201, "receipt"), (1, 201, "issue"), (2, 201, "receipt"), (3, 201, "issue")]
    lot = lot_of(results[0]["movement"])
    assert [x["movement"]["balances"][0]["balance"] for x in results] == ["100.0", "70.0", "75.0", "0.0"]
    assert await owner_balances(client, operator, lot) == {}
    ledger = await ledger_of(client, operator, world.diesel)
    assert [m["id"] for m in ledger] == [x["movement"]["id"] for x in reversed(results)]


async def test_an_atomic_batch_that_fails_names_the_index_and_writes_nothing(client, operator, world, pg_pool):
    held = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                         quantity="10", lot="HELD")
    lot = lot_of(held)
    r = await post_batch(client, operator, [
        {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "6"},
        receipt_body(world, "1", "NEW-IN-BATCH"),
        {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "6"},
    ])
    problem = assert_problem(r, 409, "insufficient-stock")
    assert problem["index"] == 2 and "movements[2]" in problem["detail"] and problem["available"] == "4.0"
    assert await owner_balances(client, operator, lot) == {world.civil: "10.0"}
    assert [m["id"] for m in await ledger_of(client, operator, world.diesel)] == [held["id"]]
    assert await pg_pool.fetchval("SELECT count(*) FROM lots WHERE code = 'NEW-IN-BATCH'") == 0  # no lot left behind


async def test_an_atomic_batch_with_an_invalid_item_names_its_field(client, operator, world):
    r = await post_batch(client, operator, [receipt_body(world, "10"), issue_body(world, "1.25")])
    problem = assert_problem(r, 422, "validation")
    assert problem["index"] == 1 and [e["field"] for e in problem["errors"]] == ["movements[1].quantity"]
    assert await ledger_of(client, operator, world.diesel) == []


async def test_a_batch_item_of_the_wrong_shape_is_named_by_its_position(client, operator, world):
    r = await post_batch(client, operator, [receipt_body(world, "10"), {**issue_body(world, "1"), "surprise": True}])
    assert [e["field"] for e in assert_problem(r, 422, "validation")["errors"]] == ["movements[1].surprise"]
    r = await post_batch(client, operator, [receipt_body(world, "10"), {"kind": "reversal", "movement_id": str(uuid.uuid4())}])
    assert assert_problem(r, 404, "not-found")["index"] == 1
    assert await ledger_of(client, operator, world.diesel) == []


async def test_a_non_atomic_batch_answers_each_item_and_keeps_what_succeeded(client, operator, world):
    movements = [receipt_body(world, "10"), issue_body(world, "11"), issue_body(world, "4"), issue_body(world, "0.05")]
    key = f"each-{world.uid}"
    r = await post_batch(client, operator, movements, atomic=False, key=key)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [(x["index"], x["status"]) for x in results] == [(0, 201), (1, 409), (2, 201), (3, 422)]
    assert results[1]["problem"]["type"] == "insufficient-stock" and results[1]["problem"]["available"] == "10.0"
    assert results[3]["problem"]["type"] == "validation" and "movement" not in results[3]
    assert results[2]["movement"]["balances"][0]["balance"] == "6.0"
    assert await owner_balances(client, operator, lot_of(results[0]["movement"])) == {world.civil: "6.0"}
    ledger = await ledger_of(client, operator, world.diesel)
    assert sorted(m["id"] for m in ledger) == sorted(x["movement"]["id"] for x in results if x["status"] == 201)
    replay = await post_batch(client, operator, movements, atomic=False, key=key)  # answered as the first time
    assert replay.json() == r.json() and replay.headers["idempotent-replayed"] == "true"
    assert await ledger_of(client, operator, world.diesel) == ledger


async def test_a_batch_mixes_every_kind_each_seeing_what_the_previous_left(client, operator, world):
    old = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                        quantity="50", lot="OLD", expires_on="2029-01-01")
    lot = lot_of(old)
    r = await post_batch(client, operator, [
        {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "5"},                       # 45
        {"kind": "write_off", "lot_id": lot, "owner": world.civil, "quantity": "2"},                   # 43
        {"kind": "ownership_transfer", "lot_id": lot, "from_owner": world.civil, "to_owner": world.military,
         "quantity": "3"},                                                                              # 40 / 3
        {"kind": "adjustment", "lot_id": lot, "owner": world.civil, "counted": "41"},                  # 41
        {**receipt_body(world, "10", "NEW"), "lot": {"code": "NEW", "expires_on": "2027-01-01"}},          # NEW 10
        issue_body(world, "12"),                                                                            # NEW 0, OLD 39
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
    movements = [receipt_body(world, "10"), issue_body(world, "1")]
    key = f"batch-{world.uid}"
    first = await post_batch(client, operator, movements, key=key)
    again = await post_batch(client, operator, movements, key=key)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert await owner_balances(client, operator, lot_of(first.json()["results"][0]["movement"])) == {world.civil: "9.0"}
    assert_problem(await post_batch(client, operator, [receipt_body(world, "11")], key=key), 409, "idempotency-conflict")


async def test_an_empty_batch_is_invalid(client, operator):
    assert_problem(await post_batch(client, operator, []), 422, "validation")


async def test_an_issue_in_a_batch_picks_first_expiring_among_lots_received_earlier_in_it(client, admin, operator, uid, pg_pool):
    w = await make_world(client, admin, uid)
    body = {"atomic": True, "movements": [
        {"kind": "receipt", "warehouse": w.north, "material": w.diesel, "owner": w.civil, "quantity": "100",
         "lot": {"code": "EARLY", "expires_on": "2028-01-01"}},
        {"kind": "receipt", "warehouse": w.north, "material": w.diesel, "owner": w.civil, "quantity": "50",
         "lot": {"code": "LATE", "expires_on": "2029-01-01"}},
        {"kind": "issue", "warehouse": w.north, "material": w.diesel, "owner": w.civil, "quantity": "120"},
        {"kind": "receipt", "warehouse": w.north, "material": w.diesel, "owner": w.civil, "quantity": "7",
         "lot": {"code": "EARLY", "expires_on": "2028-01-01"}},
    ]}
    r = await client.post("/api/v1/movements/batch", json=body, headers={**operator, **idem()})
    assert r.status_code == 201, r.text
    issue = r.json()["results"][2]["movement"]
    assert sorted(p["delta"] for p in issue["postings"] if p["account"]["type"] == "stock") == ["-100.0", "-20.0"]
    assert {b["balance"] for b in issue["balances"]} == {"0.0", "30.0"}
    assert r.json()["results"][3]["movement"]["balances"][0]["balance"] == "7.0"
    assert await _balances(pg_pool, w.diesel) == {("EARLY", w.civil): 70, ("LATE", w.civil): 300}


async def test_refused_receipts_in_a_non_atomic_batch_leave_no_lot_behind(client, admin, operator, make_token, uid, pg_pool):
    w = await make_world(client, admin, uid)
    outsider = {"Authorization": f"Bearer {await make_token('operator', warehouses=[w.south])}"}
    body = {"atomic": False, "movements": [
        {"kind": "receipt", "warehouse": w.north, "material": w.diesel, "owner": w.civil, "quantity": "1",
         "lot": {"code": "OUT-OF-SCOPE", "expires_on": "2030-01-01"}},
        {"kind": "receipt", "warehouse": w.south, "material": w.diesel, "owner": w.civil, "quantity": "1.25",
         "lot": {"code": "TOO-PRECISE", "expires_on": "2030-01-01"}},
        {"kind": "receipt", "warehouse": w.south, "material": w.diesel, "owner": w.civil, "quantity": "1",
         "lot": {"code": "FINE", "expires_on": "2030-01-01"}},
    ]}
    r = await client.post("/api/v1/movements/batch", json=body, headers={**outsider, **idem()})
    assert [x["status"] for x in r.json()["results"]] == [403, 422, 201]
    codes = {c for (c,) in await pg_pool.fetch(
        "SELECT l.code FROM lots l JOIN materials m ON m.id = l.material_id WHERE m.code = $1", w.diesel)}
    assert codes == {"FINE"}
