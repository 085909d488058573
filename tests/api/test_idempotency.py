"""Guarantee 5 through the API: a movement sent twice with the same Idempotency-Key is applied once
and answered alike; another body under the key is a conflict; a refused request leaves no trace and
its key stays usable; a ledger post needs a well-formed key."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.ledger_checks import assert_ledger_consistent, assert_problem, ledger_of, position
from tests.factories import list_all, lot_of, owner_balances, post_movement, receive


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
