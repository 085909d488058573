"""GET /api/v1/movements: the ledger newest first, paging, one movement with its postings, filters."""

from __future__ import annotations

import uuid

import pytest

from tests.api.ledger_checks import assert_problem, forged_cursor, post_batch, receipt_body
from tests.factories import list_all, lot_of, owner_balances, post_movement


# -- reads: the ledger -------------------------------------------------------------------------

@pytest.fixture
async def ledger(client, operator, world):
    """Five movements with known times: receipts north (civil) and south (military), an issue, a
    write-off and an ownership transfer."""
    def at(day: int) -> str:
        return f"2026-03-{day:02d}T10:00:00Z"

    posted = []
    for body in (
        {**receipt_body(world, "100", "L1"), "occurred_at": at(1)},
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
    r = await post_batch(client, operator, [receipt_body(world, "1") for _ in range(101)])
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
