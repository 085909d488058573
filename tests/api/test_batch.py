"""Batches: movements apply in order, each seeing the balances the previous ones left; atomic
batches write all or nothing; non-atomic batches answer each item and write only what succeeded."""

from __future__ import annotations

from tests.factories import idem, make_world, receive


async def _balances(pg_pool, material: str) -> dict[tuple[str, str], int]:
    rows = await pg_pool.fetch(
        """SELECT l.code, p.code AS owner, a.balance FROM accounts a JOIN lots l ON l.id = a.lot_id
             JOIN parties p ON p.id = a.owner_id JOIN materials m ON m.id = a.material_id
            WHERE m.code = $1 AND a.type = 'stock'""", material)
    return {(r["code"], r["owner"]): r["balance"] for r in rows}


async def test_movements_in_a_batch_see_the_balances_left_by_earlier_ones(client, admin, operator, uid, pg_pool):
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


async def test_an_atomic_batch_that_overdraws_writes_nothing_and_names_the_index(client, admin, operator, uid, pg_pool):
    w = await make_world(client, admin, uid)
    lot = (await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="10",
                         lot="A"))["postings"][0]["account"]["lot_id"]
    movements_before = await pg_pool.fetchval("SELECT count(*) FROM movements")
    body = {"atomic": True, "movements": [
        {"kind": "issue", "lot_id": lot, "owner": w.civil, "quantity": "6"},
        {"kind": "receipt", "warehouse": w.north, "material": w.diesel, "owner": w.civil, "quantity": "1",
         "lot": {"code": "NEW-IN-BATCH", "expires_on": "2030-01-01"}},
        {"kind": "issue", "lot_id": lot, "owner": w.civil, "quantity": "6"},
    ]}
    r = await client.post("/api/v1/movements/batch", json=body, headers={**operator, **idem()})
    assert r.status_code == 409, r.text
    assert r.json()["type"] == "insufficient-stock" and r.json()["index"] == 2 and r.json()["available"] == "4.0"
    assert await pg_pool.fetchval("SELECT count(*) FROM movements") == movements_before
    assert await _balances(pg_pool, w.diesel) == {("A", w.civil): 100}
    assert await pg_pool.fetchval("SELECT count(*) FROM lots WHERE code = 'NEW-IN-BATCH'") == 0


async def test_a_non_atomic_batch_answers_each_item_and_keeps_what_succeeded(client, admin, operator, uid, pg_pool):
    w = await make_world(client, admin, uid)
    lot = (await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="10",
                         lot="A"))["postings"][0]["account"]["lot_id"]
    body = {"atomic": False, "movements": [
        {"kind": "issue", "lot_id": lot, "owner": w.civil, "quantity": "6"},
        {"kind": "issue", "lot_id": lot, "owner": w.civil, "quantity": "6"},
        {"kind": "issue", "lot_id": lot, "owner": w.civil, "quantity": "4.55"},
        {"kind": "issue", "lot_id": lot, "owner": w.civil, "quantity": "4"},
    ]}
    r = await client.post("/api/v1/movements/batch", json=body, headers={**operator, **idem()})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201, 409, 422, 201]
    assert results[1]["problem"]["type"] == "insufficient-stock"
    assert results[2]["problem"]["type"] == "validation"
    assert await _balances(pg_pool, w.diesel) == {("A", w.civil): 0}
    ids = [x["movement"]["id"] for x in results if x["status"] == 201]
    assert await pg_pool.fetchval("SELECT count(*) FROM movements WHERE id = ANY($1::uuid[])", ids) == 2
    replay = await client.post("/api/v1/movements/batch", json=body,
                               headers={**operator, "Idempotency-Key": r.request.headers["Idempotency-Key"]})
    assert replay.json() == r.json() and replay.headers["Idempotent-Replayed"] == "true"


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
