"""Transfers between warehouses: dispatch moves stock into transit, receipt lands it in a lot at the
destination that remembers its origin; short receipts post the difference to loss."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests.factories import idem, list_all, lot_of, owner_balances, post_movement, receive

PROBLEM = "application/problem+json"


@pytest.fixture
async def source_lot(client, operator, world) -> str:
    """100.0 L of diesel at north, owned by the civil bureau; made 2026-01-10, expires 2028-01-10."""
    return lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                                quantity="100", lot="B-77", manufactured_on="2026-01-10", expires_on="2028-01-10"))


def assert_problem(response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"] == type_ and problem["status"] == status and problem["detail"]
    return problem


async def dispatch(client, headers, world, lines: list[dict], key: str | None = None, **extra):
    body = {"from_warehouse": world.north, "to_warehouse": world.south, "lines": lines, **extra}
    return await client.post("/api/v1/transfers", json=body,
                             headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})


async def receive_transfer(client, headers, transfer_id: str, lines: list[dict] | None = None, key: str | None = None):
    body = {} if lines is None else {"lines": lines}
    return await client.post(f"/api/v1/transfers/{transfer_id}/receipt", json=body,
                             headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})


async def stock_at(client, headers, warehouse: str, material: str) -> dict[tuple[str, str], str]:
    return {(p["lot_code"], p["owner"]): p["balance"]
            for p in await list_all(client, headers, "/api/v1/stock", warehouse=warehouse, material=material)}


async def assert_accounts_match_postings(pg_pool, transfer_id: str) -> None:
    """Guarantee 3 for the transfer's transit accounts and every account its movements touched."""
    rows = await pg_pool.fetch(
        """SELECT a.id, a.balance, (SELECT coalesce(sum(delta), 0) FROM postings p WHERE p.account_id = a.id) AS posted
             FROM accounts a
            WHERE a.transfer_id = $1::uuid
               OR a.id IN (SELECT p.account_id FROM postings p JOIN movements m ON m.id = p.movement_id
                            WHERE m.transfer_id = $1::uuid)""", transfer_id)
    assert rows and all(r["balance"] == r["posted"] for r in rows), [dict(r) for r in rows]


# -- dispatch ----------------------------------------------------------------------------------

async def test_a_dispatch_moves_stock_into_transit(client, operator, world, source_lot, pg_pool):
    r = await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil, "quantity": "60.5"}],
                       expected_at="2030-01-01T12:00:00Z", note="convoy 7")
    assert r.status_code == 201, r.text
    transfer = r.json()
    assert (transfer["from_warehouse"], transfer["to_warehouse"], transfer["state"]) == (world.north, world.south, "in_transit")
    assert transfer["expected_at"] == "2030-01-01T12:00:00Z" and transfer["received_at"] is None
    assert transfer["lines"] == [{"lot_id": source_lot, "lot_code": "B-77", "owner": world.civil, "material": world.diesel,
                                  "quantity": "60.5", "received": None, "destination_lot_id": None}]
    movement = transfer["movement"]
    assert movement["kind"] == "transfer_dispatch" and movement["transfer_id"] == transfer["id"]
    assert movement["postings"] == [
        {"account": {"type": "stock", "lot_id": source_lot, "owner": world.civil}, "material": world.diesel, "delta": "-60.5"},
        {"account": {"type": "transit", "transfer_id": transfer["id"], "lot_id": source_lot, "owner": world.civil},
         "material": world.diesel, "delta": "60.5"},
    ]
    assert movement["balances"] == [{"lot_id": source_lot, "owner": world.civil, "balance": "39.5", "reserved": "0.0",
                                     "available": "39.5"}]
    assert await owner_balances(client, operator, source_lot) == {world.civil: "39.5"}
    assert await stock_at(client, operator, world.south, world.diesel) == {}
    read = await client.get(f"/api/v1/transfers/{transfer['id']}", headers=operator)
    assert read.status_code == 200
    assert {k: v for k, v in read.json().items() if k != "overdue"} == {
        k: v for k, v in transfer.items() if k not in ("movement", "overdue")}
    assert read.json()["overdue"] is False
    await assert_accounts_match_postings(pg_pool, transfer["id"])


async def test_a_dispatch_is_in_the_ledger(client, operator, world, source_lot):
    transfer = (await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil,
                                                          "quantity": "10"}])).json()
    [latest] = await list_all(client, operator, "/api/v1/movements", material=world.diesel, kind="transfer_dispatch")
    assert latest["id"] == transfer["movement"]["id"] and latest["transfer_id"] == transfer["id"]
    assert latest["postings"] == transfer["movement"]["postings"]


async def test_a_dispatch_may_carry_several_owners_shares_of_one_lot(client, operator, world, source_lot):
    await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.military, quantity="50",
                  lot="B-77", manufactured_on="2026-01-10", expires_on="2028-01-10")
    r = await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil, "quantity": "30"},
                                                 {"lot_id": source_lot, "owner": world.military, "quantity": "50"}])
    assert r.status_code == 201, r.text
    assert await owner_balances(client, operator, source_lot) == {world.civil: "70.0"}
    received = await receive_transfer(client, operator, r.json()["id"])
    assert received.status_code == 201, received.text
    [destination] = {line["destination_lot_id"] for line in received.json()["lines"]}
    assert await owner_balances(client, operator, destination) == {world.civil: "30.0", world.military: "50.0"}


async def test_dispatching_more_than_is_available_is_insufficient_and_writes_nothing(client, operator, world, source_lot):
    r = await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil, "quantity": "100.1"}])
    problem = assert_problem(r, 409, "insufficient-stock")
    assert problem["available"] == "100.0" and problem["lot_id"] == source_lot
    assert await owner_balances(client, operator, source_lot) == {world.civil: "100.0"}
    assert await list_all(client, operator, "/api/v1/transfers", warehouse=world.north) == []
    assert await list_all(client, operator, "/api/v1/movements", material=world.diesel, kind="transfer_dispatch") == []


async def test_dispatching_an_owners_stock_they_do_not_hold_is_insufficient(client, operator, world, source_lot):
    r = await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.military, "quantity": "1"}])
    assert assert_problem(r, 409, "insufficient-stock")["available"] == "0.0"


@pytest.mark.parametrize("reason", ["quarantine", "recalled", "expired"])
async def test_a_dispatch_from_an_unusable_lot_is_a_409_that_opens_no_transfer(client, operator, world, reason):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="BAD", expires_on="2020-01-01" if reason == "expired" else "2030-01-01"))
    if reason != "expired":
        assert (await client.post(f"/api/v1/lots/{lot}/status", json={"status": reason},
                                  headers=operator)).status_code == 200
    r = await dispatch(client, operator, world, [{"lot_id": lot, "owner": world.civil, "quantity": "1"}])
    problem = assert_problem(r, 409, "unusable-lot")
    assert problem["reason"] == reason and problem["lot_id"] == lot
    assert await owner_balances(client, operator, lot) == {world.civil: "10.0"}
    assert await list_all(client, operator, "/api/v1/transfers", warehouse=world.north) == []


@pytest.mark.parametrize(("lines", "field"), [
    ([{"lot_id": "LOT", "owner": "CIV", "quantity": "1.25"}], "lines[0].quantity"),
    ([{"lot_id": "LOT", "owner": "CIV", "quantity": "0"}], "lines[0].quantity"),
    ([{"lot_id": "LOT", "owner": "CIV", "quantity": "-1"}], "lines[0].quantity"),
    ([{"lot_id": "LOT", "owner": "NOBODY", "quantity": "1"}], "lines[0].owner"),
    ([{"lot_id": "UNKNOWN", "owner": "CIV", "quantity": "1"}], "lines[0].lot_id"),
    ([{"lot_id": "LOT", "owner": "CIV", "quantity": "1"}, {"lot_id": "LOT", "owner": "CIV", "quantity": "2"}], "lines"),
    ([], "lines"),
])
async def test_bad_dispatch_lines_are_a_validation_problem(client, operator, world, source_lot, lines, field):
    subst = {"LOT": source_lot, "CIV": world.civil, "UNKNOWN": str(uuid.uuid4())}
    lines = [{k: subst.get(v, v) for k, v in line.items()} for line in lines]
    problem = assert_problem(await dispatch(client, operator, world, lines), 422, "validation")
    assert field in [e["field"] for e in problem["errors"]], problem
    assert await owner_balances(client, operator, source_lot) == {world.civil: "100.0"}


async def test_a_lot_must_be_dispatched_from_its_own_warehouse(client, operator, world):
    south_lot = lot_of(await receive(client, operator, warehouse=world.south, material=world.diesel, owner=world.civil,
                                     quantity="10", lot="S"))
    r = await dispatch(client, operator, world, [{"lot_id": south_lot, "owner": world.civil, "quantity": "1"}])
    assert [e["field"] for e in assert_problem(r, 422, "validation")["errors"]] == ["lines[0].lot_id"]


async def test_a_transfer_goes_somewhere_else(client, operator, world, source_lot):
    r = await client.post("/api/v1/transfers", headers={**operator, **idem()}, json={
        "from_warehouse": world.north, "to_warehouse": world.north,
        "lines": [{"lot_id": source_lot, "owner": world.civil, "quantity": "1"}]})
    assert [e["field"] for e in assert_problem(r, 422, "validation")["errors"]] == ["to_warehouse"]
    for field in ("from_warehouse", "to_warehouse"):
        body = {"from_warehouse": world.north, "to_warehouse": world.south,
                "lines": [{"lot_id": source_lot, "owner": world.civil, "quantity": "1"}], field: f"NOWHERE-{world.uid}"}
        r = await client.post("/api/v1/transfers", headers={**operator, **idem()}, json=body)
        assert [e["field"] for e in assert_problem(r, 422, "validation")["errors"]] == [field]
    assert await owner_balances(client, operator, source_lot) == {world.civil: "100.0"}


async def test_a_dispatch_is_not_reversed_but_received(client, operator, world, source_lot):
    transfer = (await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil,
                                                          "quantity": "10"}])).json()
    r = await post_movement(client, operator, {"kind": "reversal", "movement_id": transfer["movement"]["id"]})
    assert "receive" in assert_problem(r, 409, "conflict")["detail"]
    assert await owner_balances(client, operator, source_lot) == {world.civil: "90.0"}


# -- idempotency -------------------------------------------------------------------------------

async def test_a_dispatch_replayed_with_the_same_key_answers_the_same_transfer_and_moves_stock_once(
        client, operator, world, source_lot):
    lines = [{"lot_id": source_lot, "owner": world.civil, "quantity": "25"}]
    key = f"dispatch-{world.uid}"
    first = await dispatch(client, operator, world, lines, key=key)
    again = await dispatch(client, operator, world, lines, key=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert again.json() == first.json()
    assert await owner_balances(client, operator, source_lot) == {world.civil: "75.0"}
    assert [t["id"] for t in await list_all(client, operator, "/api/v1/transfers", warehouse=world.north)] == [
        first.json()["id"]]
    other = await dispatch(client, operator, world, [{**lines[0], "quantity": "26"}], key=key)
    assert assert_problem(other, 409, "idempotency-conflict")["idempotency_key"] == key
    assert await owner_balances(client, operator, source_lot) == {world.civil: "75.0"}


async def test_a_receipt_replayed_with_the_same_key_lands_the_stock_once(client, operator, world, source_lot):
    transfer = (await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil,
                                                          "quantity": "25"}])).json()
    key = f"receipt-{world.uid}"
    first = await receive_transfer(client, operator, transfer["id"], key=key)
    again = await receive_transfer(client, operator, transfer["id"], key=key)
    assert first.status_code == again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await stock_at(client, operator, world.south, world.diesel) == {("B-77", world.civil): "25.0"}


async def test_a_failed_dispatch_leaves_its_key_free(client, operator, world, source_lot):
    key = f"retry-{world.uid}"
    too_much = await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil, "quantity": "101"}],
                              key=key)
    assert_problem(too_much, 409, "insufficient-stock")
    fits = await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil, "quantity": "100"}],
                          key=key)
    assert fits.status_code == 201 and "idempotent-replayed" not in fits.headers
    assert await owner_balances(client, operator, source_lot) == {}


# -- receipt -----------------------------------------------------------------------------------

async def test_a_receipt_lands_the_stock_in_a_lot_at_the_destination_that_remembers_its_origin(
        client, operator, world, source_lot, pg_pool):
    transfer = (await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil,
                                                          "quantity": "60"}])).json()
    r = await receive_transfer(client, operator, transfer["id"],
                               [{"lot_id": source_lot, "owner": world.civil, "received": "60"}])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "received" and body["received_at"].endswith("Z")
    [line] = body["lines"]
    destination = line["destination_lot_id"]
    assert line["received"] == "60.0" and destination and destination != source_lot
    assert body["movement"]["kind"] == "transfer_receipt"
    assert body["movement"]["postings"] == [
        {"account": {"type": "transit", "transfer_id": transfer["id"], "lot_id": source_lot, "owner": world.civil},
         "material": world.diesel, "delta": "-60.0"},
        {"account": {"type": "stock", "lot_id": destination, "owner": world.civil}, "material": world.diesel,
         "delta": "60.0"},
    ]
    assert body["movement"]["balances"] == [{"lot_id": destination, "owner": world.civil, "balance": "60.0",
                                             "reserved": "0.0", "available": "60.0"}]
    lot = (await client.get(f"/api/v1/lots/{destination}", headers=operator)).json()
    assert (lot["code"], lot["warehouse"], lot["material"], lot["manufactured_on"], lot["expires_on"], lot["origin_lot_id"]) == (
        "B-77", world.south, world.diesel, "2026-01-10", "2028-01-10", source_lot)
    assert await owner_balances(client, operator, destination) == {world.civil: "60.0"}
    assert await owner_balances(client, operator, source_lot) == {world.civil: "40.0"}
    assert (await client.get(f"/api/v1/transfers/{transfer['id']}", headers=operator)).json()["state"] == "received"
    await assert_accounts_match_postings(pg_pool, transfer["id"])


async def test_a_receipt_without_lines_receives_everything_dispatched(client, operator, world, source_lot):
    transfer = (await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil,
                                                          "quantity": "12.5"}])).json()
    r = await receive_transfer(client, operator, transfer["id"])
    assert r.status_code == 201, r.text
    assert r.json()["lines"][0]["received"] == "12.5"
    assert await stock_at(client, operator, world.south, world.diesel) == {("B-77", world.civil): "12.5"}


async def test_a_short_receipt_posts_the_difference_to_loss(client, operator, world, source_lot, pg_pool):
    transfer = (await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil,
                                                          "quantity": "60"}])).json()
    r = await receive_transfer(client, operator, transfer["id"],
                               [{"lot_id": source_lot, "owner": world.civil, "received": "57.5"}])
    assert r.status_code == 201, r.text
    body = r.json()
    destination = body["lines"][0]["destination_lot_id"]
    assert body["lines"][0]["quantity"] == "60.0" and body["lines"][0]["received"] == "57.5"
    assert body["movement"]["postings"] == [
        {"account": {"type": "transit", "transfer_id": transfer["id"], "lot_id": source_lot, "owner": world.civil},
         "material": world.diesel, "delta": "-60.0"},
        {"account": {"type": "stock", "lot_id": destination, "owner": world.civil}, "material": world.diesel,
         "delta": "57.5"},
        {"account": {"type": "loss", "material": world.diesel}, "material": world.diesel, "delta": "2.5"},
    ]
    assert await owner_balances(client, operator, destination) == {world.civil: "57.5"}
    await assert_accounts_match_postings(pg_pool, transfer["id"])


async def test_a_receipt_of_nothing_posts_it_all_to_loss(client, operator, world, source_lot):
    transfer = (await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil,
                                                          "quantity": "10"}])).json()
    r = await receive_transfer(client, operator, transfer["id"], [{"lot_id": source_lot, "owner": world.civil, "received": "0"}])
    assert r.status_code == 201, r.text
    assert [p["account"]["type"] for p in r.json()["movement"]["postings"]] == ["transit", "loss"]
    assert r.json()["movement"]["postings"][1]["delta"] == "10.0"
    assert await stock_at(client, operator, world.south, world.diesel) == {}


async def test_a_second_transfer_of_the_same_lot_tops_up_the_destination_lot(client, operator, world, source_lot):
    lines = [{"lot_id": source_lot, "owner": world.civil, "quantity": "10"}]
    destinations = set()
    for _ in range(2):
        transfer = (await dispatch(client, operator, world, lines)).json()
        received = await receive_transfer(client, operator, transfer["id"])
        destinations.add(received.json()["lines"][0]["destination_lot_id"])
    [destination] = destinations
    assert await owner_balances(client, operator, destination) == {world.civil: "20.0"}
    assert await owner_balances(client, operator, source_lot) == {world.civil: "80.0"}


async def test_a_receipt_into_a_destination_lot_with_another_expiry_is_a_conflict_and_stays_in_transit(
        client, operator, world, source_lot):
    await receive(client, operator, warehouse=world.south, material=world.diesel, owner=world.enterprise,
                  quantity="5", lot="B-77", expires_on="2031-01-01")
    transfer = (await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil,
                                                          "quantity": "10"}])).json()
    r = await receive_transfer(client, operator, transfer["id"])
    assert "expiry" in assert_problem(r, 409, "conflict")["detail"]
    assert (await client.get(f"/api/v1/transfers/{transfer['id']}", headers=operator)).json()["state"] == "in_transit"
    assert await stock_at(client, operator, world.south, world.diesel) == {("B-77", world.enterprise): "5.0"}


async def test_receiving_twice_is_a_conflict(client, operator, world, source_lot):
    transfer = (await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil,
                                                          "quantity": "10"}])).json()
    assert (await receive_transfer(client, operator, transfer["id"])).status_code == 201
    again = await receive_transfer(client, operator, transfer["id"])
    assert "already received" in assert_problem(again, 409, "conflict")["detail"]
    assert await stock_at(client, operator, world.south, world.diesel) == {("B-77", world.civil): "10.0"}


async def test_a_receipt_with_a_line_that_was_not_dispatched_is_invalid(client, operator, world, source_lot):
    transfer = (await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil,
                                                          "quantity": "10"}])).json()
    r = await receive_transfer(client, operator, transfer["id"], [
        {"lot_id": source_lot, "owner": world.civil, "received": "10"},
        {"lot_id": str(uuid.uuid4()), "owner": world.civil, "received": "1"}])
    assert [e["field"] for e in assert_problem(r, 422, "validation")["errors"]] == ["lines[1]"]
    assert (await client.get(f"/api/v1/transfers/{transfer['id']}", headers=operator)).json()["state"] == "in_transit"
    assert await stock_at(client, operator, world.south, world.diesel) == {}


@pytest.mark.parametrize(("received", "field"), [
    (None, "lines"),
    ("10.1", "lines[0].received"),
    ("1.25", "lines[0].received"),
    ("-1", "lines[0].received"),
])
async def test_a_receipt_must_account_for_each_dispatched_line_within_what_was_sent(
        client, operator, world, source_lot, received, field):
    transfer = (await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil,
                                                          "quantity": "10"}])).json()
    lines = [] if received is None else [{"lot_id": source_lot, "owner": world.civil, "received": received}]
    if received is None:  # an explicit line for another owner, none for the dispatched one
        lines = [{"lot_id": source_lot, "owner": world.military, "received": "10"}]
    r = await receive_transfer(client, operator, transfer["id"], lines)
    assert field in [e["field"] for e in assert_problem(r, 422, "validation")["errors"]]
    assert (await client.get(f"/api/v1/transfers/{transfer['id']}", headers=operator)).json()["state"] == "in_transit"


async def test_a_receipt_of_an_unknown_transfer_is_not_found(client, operator):
    for transfer_id in (str(uuid.uuid4()), "not-a-transfer"):
        assert_problem(await receive_transfer(client, operator, transfer_id), 404, "not-found")
        assert_problem(await client.get(f"/api/v1/transfers/{transfer_id}", headers=operator), 404, "not-found")


# -- lists and permissions ---------------------------------------------------------------------

async def test_transfers_list_newest_first_by_state_and_warehouse(client, operator, world, source_lot):
    lines = [{"lot_id": source_lot, "owner": world.civil, "quantity": "5"}]
    older = (await dispatch(client, operator, world, lines)).json()
    newer = (await dispatch(client, operator, world, lines)).json()
    await receive_transfer(client, operator, older["id"])
    assert [t["id"] for t in await list_all(client, operator, "/api/v1/transfers", warehouse=world.south)] == [
        newer["id"], older["id"]]
    assert [t["id"] for t in await list_all(client, operator, "/api/v1/transfers", warehouse=world.north,
                                            state="in_transit")] == [newer["id"]]
    assert [t["id"] for t in await list_all(client, operator, "/api/v1/transfers", warehouse=world.north,
                                            state="received")] == [older["id"]]
    paged = await client.get("/api/v1/transfers", params={"warehouse": world.north, "limit": 1}, headers=operator)
    assert [t["id"] for t in paged.json()["items"]] == [newer["id"]] and paged.json()["next_cursor"]
    rest = await client.get("/api/v1/transfers", headers=operator,
                            params={"warehouse": world.north, "limit": 1, "cursor": paged.json()["next_cursor"]})
    assert [t["id"] for t in rest.json()["items"]] == [older["id"]]


async def test_a_page_of_many_transfers_shows_each_as_its_own_read_does(client, operator, world, source_lot):
    """The list reads the lines of a whole page at once: each transfer must keep its own lines, in order."""
    await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.military, quantity="50",
                  lot="B-77", manufactured_on="2026-01-10", expires_on="2028-01-10")
    sent = []
    for i in range(1, 13):
        lines = [{"lot_id": source_lot, "owner": world.civil, "quantity": f"{i}.{i % 10}"}]
        if i % 3 == 0:
            lines.append({"lot_id": source_lot, "owner": world.military, "quantity": f"{i}"})
        r = await dispatch(client, operator, world, lines, **({"expected_at": "2020-01-01T00:00:00Z"} if i % 4 == 0 else {}))
        assert r.status_code == 201, r.text
        sent.append(r.json()["id"])
    for transfer_id in sent[::5]:
        assert (await receive_transfer(client, operator, transfer_id)).status_code == 201
    listed = await list_all(client, operator, "/api/v1/transfers", warehouse=world.north, limit=5)
    assert [t["id"] for t in listed] == sent[::-1]
    for item in listed:
        one = await client.get(f"/api/v1/transfers/{item['id']}", headers=operator)
        assert item == one.json()
    by_id = {t["id"]: t for t in listed}
    assert [len(by_id[t]["lines"]) for t in sent] == [2 if i % 3 == 0 else 1 for i in range(1, 13)]
    assert [by_id[t]["lines"][0]["quantity"] for t in sent] == [f"{i}.{i % 10}" for i in range(1, 13)]
    assert [by_id[t]["state"] for t in sent] == ["received" if i % 5 == 0 else "in_transit" for i in range(12)]
    assert [by_id[t]["overdue"] for t in sent] == [i % 4 == 0 and i % 5 != 1 for i in range(1, 13)]


@pytest.mark.parametrize("cursor", [
    ["2026-01-01T00:00:00+00:00", "not-a-uuid"], ["not-a-time", str(uuid.uuid4())], ["x"], "abc", 12, None,
])
async def test_a_forged_transfers_cursor_is_a_validation_problem(client, operator, cursor):
    forged = base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")
    problem = assert_problem(await client.get("/api/v1/transfers", params={"cursor": forged}, headers=operator),
                             422, "validation")
    assert [e["field"] for e in problem["errors"]] == ["cursor"]


async def test_an_auditor_cannot_dispatch_or_receive(client, operator, auditor, world, source_lot):
    r = await dispatch(client, auditor, world, [{"lot_id": source_lot, "owner": world.civil, "quantity": "5"}])
    assert_problem(r, 403, "forbidden")
    transfer = (await dispatch(client, operator, world, [{"lot_id": source_lot, "owner": world.civil,
                                                          "quantity": "5"}])).json()
    assert_problem(await receive_transfer(client, auditor, transfer["id"]), 403, "forbidden")
    assert (await client.get(f"/api/v1/transfers/{transfer['id']}", headers=auditor)).json()["state"] == "in_transit"
    assert await owner_balances(client, auditor, source_lot) == {world.civil: "95.0"}


async def test_a_dispatch_needs_an_idempotency_key(client, operator, world, source_lot):
    r = await client.post("/api/v1/transfers", headers=operator, json={
        "from_warehouse": world.north, "to_warehouse": world.south,
        "lines": [{"lot_id": source_lot, "owner": world.civil, "quantity": "5"}]})
    assert [e["field"] for e in assert_problem(r, 422, "validation")["errors"]] == ["Idempotency-Key"]
    assert await owner_balances(client, operator, source_lot) == {world.civil: "100.0"}
