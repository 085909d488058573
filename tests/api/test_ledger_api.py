"""Movements, transfers, lots and stock through the HTTP API: balances and postings, every error
type, idempotency, and that a refused request leaves no trace."""

from __future__ import annotations

import uuid

import pytest

from tests.factories import idem, make_world, receive


@pytest.fixture
async def world(client, admin, uid):
    return await make_world(client, admin, uid)


async def post(client, headers, body, key=None):
    return await client.post("/api/v1/movements", json=body,
                             headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})


def lot_of(movement: dict) -> str:
    return movement["postings"][0]["account"]["lot_id"]


async def test_a_receipt_creates_the_lot_and_a_second_tops_it_up(client, operator, world):
    first = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                          quantity="100.5", lot="B1")
    second = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.military,
                           quantity="50", lot="B1")
    assert lot_of(first) == lot_of(second)
    assert first["postings"] == [
        {"account": {"type": "stock", "lot_id": lot_of(first), "owner": world.civil}, "material": world.diesel, "delta": "100.5"},
        {"account": {"type": "supply", "material": world.diesel}, "material": world.diesel, "delta": "-100.5"}]
    lot = (await client.get(f"/api/v1/lots/{lot_of(first)}", headers=operator)).json()
    assert lot["balance"] == "150.5" and lot["code"] == "B1" and lot["expires_on"] == "2030-01-01"
    assert {(o["owner"], o["balance"]) for o in lot["owners"]} == {(world.civil, "100.5"), (world.military, "50.0")}


async def test_a_receipt_into_a_known_lot_with_another_expiry_is_a_conflict(client, operator, world):
    await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil, quantity="1", lot="X")
    r = await post(client, operator, {"kind": "receipt", "warehouse": world.north, "material": world.diesel,
                                      "owner": world.civil, "quantity": "1",
                                      "lot": {"code": "X", "expires_on": "2031-01-01"}})
    assert r.status_code == 409 and r.json()["type"] == "conflict"


async def test_an_issue_with_a_lot_takes_that_lot(client, operator, world):
    a = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil, quantity="10",
                      lot="A", expires_on="2027-01-01")
    b = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil, quantity="10",
                      lot="B", expires_on="2029-01-01")
    r = await post(client, operator, {"kind": "issue", "lot_id": lot_of(b), "owner": world.civil, "quantity": "3"})
    assert r.status_code == 201
    assert r.json()["balances"] == [{"lot_id": lot_of(b), "owner": world.civil, "balance": "7.0", "reserved": "0.0",
                                     "available": "7.0"}]
    fefo = await post(client, operator, {"kind": "issue", "warehouse": world.north, "material": world.diesel,
                                         "owner": world.civil, "quantity": "12"})
    assert {(b["lot_id"], b["balance"]) for b in fefo.json()["balances"]} == {(lot_of(a), "0.0"), (lot_of(b), "5.0")}


@pytest.mark.parametrize("status", ["quarantine", "recalled"])
async def test_unusable_lots_refuse_issue_and_transfer_but_accept_write_off(client, operator, world, status, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="Q"))
    changed = await client.post(f"/api/v1/lots/{lot}/status", json={"status": status, "reason": "lab test"}, headers=operator)
    assert changed.status_code == 200 and changed.json()["status"] == status
    assert changed.json()["history"][-1]["to"] == status
    issue = await post(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "1"})
    assert issue.status_code == 409 and issue.json()["type"] == "unusable-lot" and issue.json()["reason"] == status
    transfer = await client.post("/api/v1/transfers", headers={**operator, **idem()}, json={
        "from_warehouse": world.north, "to_warehouse": world.south,
        "lines": [{"lot_id": lot, "owner": world.civil, "quantity": "1"}]})
    assert transfer.status_code == 409 and transfer.json()["type"] == "unusable-lot"
    written = await post(client, operator, {"kind": "write_off", "lot_id": lot, "owner": world.civil, "quantity": "10",
                                            "reason": "destroyed"})
    assert written.status_code == 201 and written.json()["balances"][0]["balance"] == "0.0"
    assert written.json()["postings"][1]["account"] == {"type": "loss", "material": world.diesel}


async def test_expired_stock_cannot_be_issued_but_can_be_written_off(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.vaccine, owner=world.civil,
                               quantity="100", lot="OLD", expires_on="2025-01-01"))
    issue = await post(client, operator, {"kind": "issue", "warehouse": world.north, "material": world.vaccine,
                                          "owner": world.civil, "quantity": "1"})
    assert issue.status_code == 409 and issue.json()["type"] == "insufficient-stock" and issue.json()["available"] == "0"
    direct = await post(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "1"})
    assert direct.status_code == 409 and direct.json()["reason"] == "expired"
    assert (await post(client, operator, {"kind": "write_off", "lot_id": lot, "owner": world.civil,
                                          "quantity": "100"})).status_code == 201


async def test_counts_post_losses_and_gains(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="C"))
    short = await post(client, operator, {"kind": "adjustment", "lot_id": lot, "owner": world.civil, "counted": "97.5"})
    assert [p["delta"] for p in short.json()["postings"]] == ["-2.5", "2.5"]
    assert short.json()["postings"][1]["account"]["type"] == "loss"
    over = await post(client, operator, {"kind": "adjustment", "lot_id": lot, "owner": world.civil, "counted": "99"})
    assert [p["delta"] for p in over.json()["postings"]] == ["1.5", "-1.5"]
    assert over.json()["postings"][1]["account"]["type"] == "adjustment"
    assert over.json()["balances"][0]["balance"] == "99.0"


async def test_ownership_transfer_changes_title_not_custody(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="T"))
    r = await post(client, operator, {"kind": "ownership_transfer", "lot_id": lot, "from_owner": world.civil,
                                      "to_owner": world.military, "quantity": "40", "reason": "requisition"})
    assert r.status_code == 201
    assert {(b["owner"], b["balance"]) for b in r.json()["balances"]} == {(world.civil, "60.0"), (world.military, "40.0")}
    same = await post(client, operator, {"kind": "ownership_transfer", "lot_id": lot, "from_owner": world.civil,
                                         "to_owner": world.civil, "quantity": "1"})
    assert same.status_code == 422


async def test_a_reversal_restores_stock_once(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="R"))
    issued = (await post(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "4"})).json()
    undone = await post(client, operator, {"kind": "reversal", "movement_id": issued["id"], "reason": "keyed twice"})
    assert undone.status_code == 201 and undone.json()["reverses"] == issued["id"]
    assert undone.json()["balances"][0]["balance"] == "10.0"
    again = await post(client, operator, {"kind": "reversal", "movement_id": issued["id"]})
    assert again.status_code == 409 and again.json()["type"] == "conflict"
    unknown = await post(client, operator, {"kind": "reversal", "movement_id": str(uuid.uuid4())})
    assert unknown.status_code == 404 and unknown.json()["type"] == "not-found"


@pytest.mark.parametrize(("body", "field"), [
    ({"quantity": "1.25"}, "quantity"), ({"quantity": "0"}, "quantity"), ({"quantity": "-1"}, "quantity"),
    ({"quantity": "lots"}, "quantity"), ({"owner": "NOBODY"}, "owner"), ({"warehouse": "NOWHERE"}, "warehouse"),
    ({"surprise": 1}, "surprise"), ({"kind": "teleport"}, "kind"),
])
async def test_bad_input_is_a_422_problem_that_writes_nothing(client, operator, world, pg_pool, body, field):
    before = await pg_pool.fetchval("SELECT count(*) FROM movements")
    base = {"kind": "issue", "warehouse": world.north, "material": world.diesel, "owner": world.civil, "quantity": "1"}
    r = await post(client, operator, {**base, **body})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"] == "validation" and problem["status"] == 422
    assert any(field in e["field"] or field in e["message"] for e in problem["errors"]), problem
    assert "Traceback" not in r.text
    assert await pg_pool.fetchval("SELECT count(*) FROM movements") == before


async def test_malformed_json_is_a_problem_not_a_500(client, operator):
    r = await client.post("/api/v1/movements", content=b'{"kind": "issue",', headers={
        **operator, **idem(), "Content-Type": "application/json"})
    assert r.status_code in (400, 422) and r.headers["content-type"].startswith("application/problem+json")


async def test_a_ledger_post_needs_an_idempotency_key(client, operator, world):
    r = await client.post("/api/v1/movements", headers=operator, json={
        "kind": "issue", "warehouse": world.north, "material": world.diesel, "owner": world.civil, "quantity": "1"})
    assert r.status_code == 422 and r.json()["type"] == "validation"


async def test_same_key_same_body_replays_and_moves_stock_once(client, operator, world, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="I"))
    body = {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "2"}
    first = await post(client, operator, body, key="same-key")
    again = await post(client, operator, body, key="same-key")
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() and "idempotent-replayed" not in first.headers
    assert await pg_pool.fetchval("SELECT balance FROM accounts WHERE lot_id = $1::uuid", lot) == 80
    other = await post(client, operator, {**body, "quantity": "3"}, key="same-key")
    assert other.status_code == 409 and other.json()["type"] == "idempotency-conflict"
    assert await pg_pool.fetchval("SELECT balance FROM accounts WHERE lot_id = $1::uuid", lot) == 80


async def test_a_refused_request_leaves_no_trace_and_its_key_stays_usable(client, operator, world, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="5", lot="N"))
    body = {"kind": "issue", "lot_id": lot, "owner": world.civil, "quantity": "6"}
    refused = await post(client, operator, body, key="retry-later")
    assert refused.status_code == 409 and refused.json()["available"] == "5.0"
    await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil, quantity="1", lot="N")
    retried = await post(client, operator, body, key="retry-later")
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert await pg_pool.fetchval("SELECT balance FROM accounts WHERE lot_id = $1::uuid", lot) == 0


async def test_transfer_dispatch_and_short_receipt(client, operator, world, pg_pool):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="100", lot="TR", expires_on="2029-05-05", manufactured_on="2026-05-05"))
    sent = await client.post("/api/v1/transfers", headers={**operator, **idem()}, json={
        "from_warehouse": world.north, "to_warehouse": world.south, "expected_at": "2026-12-01T00:00:00Z",
        "lines": [{"lot_id": lot, "owner": world.civil, "quantity": "40"}]})
    assert sent.status_code == 201 and sent.json()["state"] == "in_transit"
    transfer = sent.json()["id"]
    assert await pg_pool.fetchval("SELECT balance FROM accounts WHERE lot_id = $1::uuid AND type = 'stock'", lot) == 600
    too_much = await client.post("/api/v1/transfers", headers={**operator, **idem()}, json={
        "from_warehouse": world.north, "to_warehouse": world.south,
        "lines": [{"lot_id": lot, "owner": world.civil, "quantity": "61"}]})
    assert too_much.status_code == 409 and too_much.json()["type"] == "insufficient-stock"
    wrong = await client.post(f"/api/v1/transfers/{transfer}/receipt", headers={**operator, **idem()},
                              json={"lines": [{"lot_id": str(uuid.uuid4()), "owner": world.civil, "received": "1"}]})
    assert wrong.status_code == 422
    got = await client.post(f"/api/v1/transfers/{transfer}/receipt", headers={**operator, **idem()},
                            json={"lines": [{"lot_id": lot, "owner": world.civil, "received": "38.5"}]})
    assert got.status_code == 201, got.text
    line = got.json()["lines"][0]
    assert got.json()["state"] == "received" and line["received"] == "38.5"
    arrived = (await client.get(f"/api/v1/lots/{line['destination_lot_id']}", headers=operator)).json()
    assert arrived["warehouse"] == world.south and arrived["code"] == "TR" and arrived["origin_lot_id"] == lot
    assert arrived["expires_on"] == "2029-05-05" and arrived["balance"] == "38.5"
    loss = [p for p in got.json()["movement"]["postings"] if p["account"]["type"] == "loss"]
    assert [p["delta"] for p in loss] == ["1.5"]
    twice = await client.post(f"/api/v1/transfers/{transfer}/receipt", headers={**operator, **idem()}, json={})
    assert twice.status_code == 409


async def test_stock_filters_and_the_ledger_newest_first(client, operator, world):
    civil = await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                          quantity="1", lot="F1", expires_on="2027-01-01")
    await receive(client, operator, warehouse=world.south, material=world.vaccine, owner=world.military,
                  quantity="5", lot="F2", expires_on="2031-01-01")
    by = lambda **q: client.get("/api/v1/stock", params=q, headers=operator)  # noqa: E731
    assert [p["lot_code"] for p in (await by(warehouse=world.north)).json()["items"]] == ["F1"]
    assert [p["lot_code"] for p in (await by(region=world.region, category="medical")).json()["items"]] == ["F2"]
    assert [p["lot_code"] for p in (await by(region="TEST-NATION", owner=world.military)).json()["items"]] == ["F2"]
    assert [p["lot_code"] for p in (await by(material=world.diesel, expiring_before="2028-01-01")).json()["items"]] == ["F1"]
    assert (await by(material=world.diesel, status="quarantine")).json()["items"] == []
    page = (await client.get("/api/v1/movements", params={"material": world.diesel, "limit": 1}, headers=operator)).json()
    assert [m["id"] for m in page["items"]] == [civil["id"]] and page["next_cursor"] is None
    both = (await client.get("/api/v1/movements", params={"warehouse": world.south, "limit": 1}, headers=operator)).json()
    assert both["items"][0]["kind"] == "receipt"
    one = (await client.get(f"/api/v1/movements/{civil['id']}", headers=operator)).json()
    assert one["postings"] == civil["postings"]


async def test_a_nul_character_is_a_422_not_a_500(client, operator, world, pg_pool):
    before = await pg_pool.fetchval("SELECT count(*) FROM movements")
    r = await post(client, operator, {"kind": "receipt", "warehouse": world.north, "material": world.diesel,
                                      "owner": world.civil, "quantity": "1", "note": "bad\u0000note",
                                      "lot": {"code": "NUL", "expires_on": "2030-01-01"}})
    assert r.status_code == 422 and r.json()["type"] == "validation"
    assert await pg_pool.fetchval("SELECT count(*) FROM movements") == before


async def test_an_unknown_member_is_named_in_the_error(client, operator, world):
    r = await post(client, operator, {"kind": "issue", "warehouse": world.north, "material": world.diesel,
                                      "owner": world.civil, "quantity": "1", "surprise": 1})
    assert r.status_code == 422 and any("surprise" in e["field"] for e in r.json()["errors"])
