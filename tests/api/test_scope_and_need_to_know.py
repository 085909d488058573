"""Scope (warehouses/regions granted) and need-to-know (military-owned stock) on every path."""

from __future__ import annotations

import uuid

import pytest

from tests.factories import idem, make_world, receive


async def _balance(pg_pool, lot_id: str, owner: str) -> int:
    return await pg_pool.fetchval(
        "SELECT a.balance FROM accounts a JOIN parties p ON p.id = a.owner_id "
        "WHERE a.lot_id = $1::uuid AND p.code = $2 AND a.type = 'stock'", lot_id, owner)


@pytest.fixture
async def two_worlds(client, admin, operator, uid):
    """World A (the outsider's own) and world B (not granted to the outsider), each with civil stock."""
    a = await make_world(client, admin, uid + "A")
    b = await make_world(client, admin, uid + "B")
    lot_a = (await receive(client, operator, warehouse=a.north, material=a.diesel, owner=a.civil,
                           quantity="1000", lot="LA"))["postings"][0]["account"]["lot_id"]
    moved = await receive(client, operator, warehouse=b.north, material=b.diesel, owner=b.civil, quantity="1000", lot="LB")
    return a, b, lot_a, moved["postings"][0]["account"]["lot_id"], moved["id"]


async def test_an_operator_acts_only_on_warehouses_granted(client, make_token, pg_pool, two_worlds):
    a, b, lot_a, lot_b, receipt_b = two_worlds
    outsider = {"Authorization": f"Bearer {await make_token('operator', warehouses=[a.north])}"}
    transfer_b = await client.post("/api/v1/transfers", headers={**await _operator_b(make_token, b), **idem()}, json={
        "from_warehouse": b.north, "to_warehouse": b.south, "lines": [{"lot_id": lot_b, "owner": b.civil, "quantity": "10"}]})
    assert transfer_b.status_code == 201, transfer_b.text
    movements_before = await pg_pool.fetchval("SELECT count(*) FROM movements")
    balance_before = await _balance(pg_pool, lot_b, b.civil)

    writes = [
        ("/api/v1/movements", {"kind": "receipt", "warehouse": b.north, "material": b.diesel, "owner": b.civil,
                               "quantity": "5", "lot": {"code": "LB", "expires_on": "2030-01-01"}}),
        ("/api/v1/movements", {"kind": "issue", "warehouse": b.north, "material": b.diesel, "owner": b.civil, "quantity": "5"}),
        ("/api/v1/movements", {"kind": "issue", "lot_id": lot_b, "owner": b.civil, "quantity": "5"}),
        ("/api/v1/movements", {"kind": "adjustment", "lot_id": lot_b, "owner": b.civil, "counted": "1"}),
        ("/api/v1/movements", {"kind": "write_off", "lot_id": lot_b, "owner": b.civil, "quantity": "5"}),
        ("/api/v1/movements", {"kind": "ownership_transfer", "lot_id": lot_b, "from_owner": b.civil,
                               "to_owner": b.enterprise, "quantity": "5"}),
        ("/api/v1/movements", {"kind": "reversal", "movement_id": receipt_b}),
        ("/api/v1/movements/batch", {"atomic": True, "movements": [
            {"kind": "issue", "lot_id": lot_b, "owner": b.civil, "quantity": "5"}]}),
        ("/api/v1/transfers", {"from_warehouse": b.north, "to_warehouse": a.north,
                               "lines": [{"lot_id": lot_b, "owner": b.civil, "quantity": "5"}]}),
        (f"/api/v1/transfers/{transfer_b.json()['id']}/receipt", {}),
        (f"/api/v1/lots/{lot_b}/status", {"status": "quarantine", "reason": "probe"}),
    ]
    for path, body in writes:
        r = await client.post(path, json=body, headers={**outsider, **idem()})
        assert r.status_code == 403, (path, body, r.status_code, r.text)
        assert r.json()["type"] == "forbidden"

    assert await pg_pool.fetchval("SELECT count(*) FROM movements") == movements_before
    assert await _balance(pg_pool, lot_b, b.civil) == balance_before
    assert (await client.get(f"/api/v1/transfers/{transfer_b.json()['id']}", headers=await _operator_b(make_token, b))).json()["state"] == "in_transit"
    assert await pg_pool.fetchval("SELECT status FROM lots WHERE id = $1::uuid", lot_b) == "available"

    own = await client.post("/api/v1/movements", headers={**outsider, **idem()},
                            json={"kind": "issue", "lot_id": lot_a, "owner": a.civil, "quantity": "5"})
    assert own.status_code == 201, own.text


async def _operator_b(make_token, b):
    return {"Authorization": f"Bearer {await make_token('operator', warehouses=[b.north, b.south])}"}


async def test_reads_outside_scope_do_not_reveal_that_the_object_exists(client, make_token, two_worlds):
    a, b, lot_a, lot_b, receipt_b = two_worlds
    planner = {"Authorization": f"Bearer {await make_token('planner', regions=[a.region])}"}
    lot = await client.get(f"/api/v1/lots/{lot_b}", headers=planner)
    assert lot.status_code == 404 and lot.json()["type"] == "not-found"
    assert (await client.get(f"/api/v1/movements/{receipt_b}", headers=planner)).status_code == 404
    stock = (await client.get("/api/v1/stock", params={"material": b.diesel}, headers=planner)).json()
    assert stock["items"] == []
    own = (await client.get("/api/v1/stock", params={"material": a.diesel}, headers=planner)).json()
    assert [p["lot_id"] for p in own["items"]] == [lot_a]
    ledger = (await client.get("/api/v1/movements", params={"material": b.diesel}, headers=planner)).json()
    assert ledger["items"] == []
    assert (await client.get(f"/api/v1/warehouses/{b.north}", headers=planner)).status_code == 404
    assert (await client.get(f"/api/v1/warehouses/{a.north}", headers=planner)).status_code == 200
    listed = [w["code"] for w in (await client.get("/api/v1/warehouses", params={"limit": 1000}, headers=planner)).json()["items"]]
    assert a.north in listed and b.north not in listed


@pytest.fixture
async def shared_lot(client, admin, operator, uid):
    """A lot owned 600 by the military and 400 by the civil bureau, plus a military-only lot."""
    w = await make_world(client, admin, uid)
    civil = await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="400", lot="JOINT")
    military = await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.military, quantity="600", lot="JOINT")
    secret = await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.military, quantity="999", lot="SECRET")
    return w, civil["postings"][0]["account"]["lot_id"], military["id"], secret["postings"][0]["account"]["lot_id"]


async def test_uncleared_readers_never_see_military_stock_in_detail(client, make_token, operator, shared_lot):
    w, joint, military_receipt, secret = shared_lot
    uncleared = {"Authorization": f"Bearer {await make_token('auditor')}"}

    stock = (await client.get("/api/v1/stock", params={"warehouse": w.north}, headers=uncleared)).json()["items"]
    assert {(p["owner"], p["balance"]) for p in stock} == {(w.civil, "400.0")}
    lot = await client.get(f"/api/v1/lots/{joint}", headers=uncleared)
    assert lot.status_code == 200
    assert [o["owner"] for o in lot.json()["owners"]] == [w.civil] and lot.json()["balance"] == "400.0"
    assert (await client.get(f"/api/v1/lots/{secret}", headers=uncleared)).status_code == 404
    assert (await client.get(f"/api/v1/movements/{military_receipt}", headers=uncleared)).status_code == 404
    ledger = (await client.get("/api/v1/movements", params={"warehouse": w.north}, headers=uncleared)).json()["items"]
    assert all(p["account"].get("owner") != w.military for m in ledger for p in m["postings"])
    assert len(ledger) == 1

    sent = await client.post("/api/v1/transfers", headers={**operator, **idem()}, json={
        "from_warehouse": w.north, "to_warehouse": w.south,
        "lines": [{"lot_id": joint, "owner": w.military, "quantity": "1"}]})
    assert (await client.get(f"/api/v1/transfers/{sent.json()['id']}", headers=operator)).status_code == 200
    assert (await client.get(f"/api/v1/transfers/{sent.json()['id']}", headers=uncleared)).status_code == 404
    listed = (await client.get("/api/v1/transfers", params={"warehouse": w.north}, headers=uncleared)).json()["items"]
    assert sent.json()["id"] not in [t["id"] for t in listed]

    cleared = (await client.get("/api/v1/stock", params={"warehouse": w.north}, headers=operator)).json()["items"]
    assert {(p["owner"], p["balance"]) for p in cleared} == {(w.civil, "400.0"), (w.military, "599.0"), (w.military, "999.0")}


async def test_uncleared_operators_cannot_act_on_military_stock_and_errors_leak_no_quantity(client, make_token, pg_pool, shared_lot):
    w, joint, _, secret = shared_lot
    uncleared = {"Authorization": f"Bearer {await make_token('operator', warehouses=[w.north, w.south])}"}
    attempts = [
        {"kind": "issue", "warehouse": w.north, "material": w.diesel, "owner": w.military, "quantity": "5000"},
        {"kind": "write_off", "lot_id": joint, "owner": w.military, "quantity": "1"},
        {"kind": "ownership_transfer", "lot_id": joint, "from_owner": w.civil, "to_owner": w.military, "quantity": "1"},
    ]
    for body in attempts:
        r = await client.post("/api/v1/movements", json=body, headers={**uncleared, **idem()})
        assert r.status_code == 403, r.text
        assert "available" not in r.json() and "600" not in r.text and "999" not in r.text
    transfer = await client.post("/api/v1/transfers", headers={**uncleared, **idem()}, json={
        "from_warehouse": w.north, "to_warehouse": w.south, "lines": [{"lot_id": joint, "owner": w.military, "quantity": "1"}]})
    assert transfer.status_code == 403
    # A lot holding only military stock does not exist for this reader: named by id, it answers
    # exactly as an id that was never issued, so the refusal confirms nothing.
    never = str(uuid.uuid4())
    for lot_id, status_code in ((secret, 422), (never, 422)):
        r = await client.post("/api/v1/movements", headers={**uncleared, **idem()},
                              json={"kind": "issue", "lot_id": lot_id, "owner": w.military, "quantity": "5000"})
        assert r.status_code == status_code and r.json()["errors"] == [
            {"field": "lot_id", "message": f"unknown lot {lot_id!r}"}], r.text
    for lot_id in (secret, never):
        status = await client.post(f"/api/v1/lots/{lot_id}/status", headers=uncleared, json={"status": "quarantine"})
        assert status.status_code == 404 and status.json()["detail"] == f"lot {lot_id} does not exist"
    assert await _balance(pg_pool, joint, w.military) == 6000
    own = await client.post("/api/v1/movements", headers={**uncleared, **idem()},
                            json={"kind": "issue", "lot_id": joint, "owner": w.civil, "quantity": "1"})
    assert own.status_code == 201


async def test_a_revoked_token_stops_working(client, admin, make_token):
    token = await make_token("auditor")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/stock", headers=headers)).status_code == 200
    listed = (await client.get("/api/v1/tokens", params={"limit": 1000}, headers=admin)).json()["items"]
    created = await client.post("/api/v1/tokens", headers=admin, json={"principal": "probe-revoke", "roles": ["auditor"]})
    assert created.status_code == 201
    fresh = {"Authorization": f"Bearer {created.json()['token']}"}
    assert (await client.get("/api/v1/stock", headers=fresh)).status_code == 200
    revoked = await client.post(f"/api/v1/tokens/{created.json()['id']}/revoke", headers=admin, json={"reason": "left"})
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert (await client.get("/api/v1/stock", headers=fresh)).status_code == 401
    assert "token" not in listed[0]


async def test_an_expired_token_is_refused(client, admin, pg_pool):
    created = (await client.post("/api/v1/tokens", headers=admin,
                                 json={"principal": "probe-expiry", "roles": ["auditor"], "expires_in_days": 1})).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert (await client.get("/api/v1/stock", headers=headers)).status_code == 200
    await pg_pool.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1", created["id"])
    assert (await client.get("/api/v1/stock", headers=headers)).status_code == 401
