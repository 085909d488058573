"""Guarantees under real concurrency: 40 HTTP clients against a uvicorn process on a real
PostgreSQL, drawing on a few hot lots that cannot satisfy them all."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg
import httpx
import pytest

from stockpile.store.engine import asyncpg_dsn
from tests.live import running_server

CLIENTS = 40


@pytest.fixture(scope="module")
async def live(make_database):
    url = make_database()
    async with running_server(url) as (base, token):
        yield url, base, {"Authorization": f"Bearer {token}"}


async def _arrange(base: str, headers: dict, uid: str) -> tuple[dict, list[str]]:
    codes = {"region": f"R{uid}", "north": f"N{uid}", "south": f"S{uid}", "owner": f"O{uid}", "material": f"M{uid}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as c:
        for path, body in [
            (f"/api/v1/regions/{codes['region']}", {"name": "r"}),
            (f"/api/v1/parties/{codes['owner']}", {"name": "o", "sector": "civilian"}),
            (f"/api/v1/warehouses/{codes['north']}", {"name": "n", "operator": codes["owner"], "region": codes["region"],
                                                     "kind": "civilian", "latitude": 1, "longitude": 1}),
            (f"/api/v1/warehouses/{codes['south']}", {"name": "s", "operator": codes["owner"], "region": codes["region"],
                                                     "kind": "civilian", "latitude": 2, "longitude": 2}),
            (f"/api/v1/materials/{codes['material']}", {"name": "m", "category": "fuel", "unit": "L", "decimals": 0}),
        ]:
            assert (await c.put(path, json=body)).status_code == 201
        lots = []
        for i, expiry in enumerate(["2030-01-01", "2030-06-01", "2031-01-01"]):
            r = await c.post("/api/v1/movements", headers={"Idempotency-Key": uuid.uuid4().hex}, json={
                "kind": "receipt", "warehouse": codes["north"], "material": codes["material"], "owner": codes["owner"],
                "quantity": "100", "lot": {"code": f"HOT{i}", "expires_on": expiry}})
            assert r.status_code == 201
            lots.append(r.json()["postings"][0]["account"]["lot_id"])
    return codes, lots


@contextlib.asynccontextmanager
async def _connected(url: str):
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        yield conn
    finally:
        await conn.close()


async def _on_hand(conn, lots: list[str]) -> int:
    return await conn.fetchval(
        "SELECT sum(a.balance) FROM accounts a WHERE a.type = 'stock' AND a.lot_id = ANY($1::uuid[])", lots)


async def _ledger_checks(url: str) -> None:
    async with _connected(url) as conn:
        assert await conn.fetchval("SELECT count(*) FROM accounts WHERE balance < 0 OR reserved > balance") == 0
        assert await conn.fetchval(
            """SELECT count(*) FROM accounts a
                WHERE a.balance <> (SELECT coalesce(sum(delta), 0) FROM postings p WHERE p.account_id = a.id)""") == 0
        assert await conn.fetchval(
            """SELECT count(*) FROM (SELECT movement_id, material_id FROM postings
                GROUP BY 1, 2 HAVING sum(delta) <> 0) unbalanced""") == 0


async def test_concurrent_issues_never_oversell_and_every_failure_is_a_clean_409(live, uid):
    url, base, headers = live
    codes, lots = await _arrange(base, headers, uid)

    async def one(i: int) -> httpx.Response:
        if i % 4 == 0:
            body, path = {"from_warehouse": codes["north"], "to_warehouse": codes["south"],
                          "lines": [{"lot_id": lots[i % 3], "owner": codes["owner"], "quantity": "9"}]}, "/api/v1/transfers"
        elif i % 2:
            body, path = {"kind": "issue", "warehouse": codes["north"], "material": codes["material"],
                          "owner": codes["owner"], "quantity": "13"}, "/api/v1/movements"
        else:
            body, path = {"kind": "issue", "lot_id": lots[i % 3], "owner": codes["owner"], "quantity": "11"}, "/api/v1/movements"
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
            return await c.post(path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})

    responses = await asyncio.gather(*(one(i) for i in range(CLIENTS)))
    wanted = {0: 9, 1: 13, 2: 11, 3: 13}
    ok = [i for i, r in enumerate(responses) if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert ok and refused, "the hot lots must run out for some clients"
    for r in refused:
        assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json"), r.text
        assert r.json()["type"] == "insufficient-stock"
    served = sum(wanted[i % 4] for i in ok)

    async with _connected(url) as conn:
        on_hand = await _on_hand(conn, lots)
        in_transit = await conn.fetchval(
            "SELECT coalesce(sum(a.balance), 0) FROM accounts a WHERE a.type = 'transit' AND a.lot_id = ANY($1::uuid[])", lots)
    assert 300 - on_hand == served
    assert in_transit == 9 * sum(1 for i in ok if i % 4 == 0)
    await _ledger_checks(url)


async def test_concurrent_duplicates_of_one_idempotency_key_post_once(live, uid):
    url, base, headers = live
    codes, lots = await _arrange(base, headers, uid)
    key = f"dup-{uid}"
    body = {"kind": "issue", "lot_id": lots[0], "owner": codes["owner"], "quantity": "7"}

    async def one() -> httpx.Response:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
            return await c.post("/api/v1/movements", json=body, headers={"Idempotency-Key": key})

    responses = await asyncio.gather(*(one() for _ in range(24)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 23

    async with _connected(url) as conn:
        balance = await conn.fetchval("SELECT balance FROM accounts WHERE lot_id = $1::uuid AND type = 'stock'", lots[0])
        movements = await conn.fetchval(
            "SELECT count(*) FROM movements m JOIN postings p ON p.movement_id = m.id JOIN accounts a ON a.id = p.account_id "
            "WHERE a.lot_id = $1::uuid AND m.kind = 'issue'", lots[0])
    assert balance == 93 and movements == 1


async def test_concurrent_reversals_of_one_movement_succeed_once(live, uid):
    url, base, headers = live
    codes, lots = await _arrange(base, headers, uid)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
        issued = await c.post("/api/v1/movements", headers={"Idempotency-Key": uuid.uuid4().hex},
                              json={"kind": "issue", "lot_id": lots[1], "owner": codes["owner"], "quantity": "5"})
    movement_id = issued.json()["id"]

    async def one() -> httpx.Response:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
            return await c.post("/api/v1/movements", headers={"Idempotency-Key": uuid.uuid4().hex},
                                json={"kind": "reversal", "movement_id": movement_id})

    responses = await asyncio.gather(*(one() for _ in range(12)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 11
    assert all(r.json()["type"] == "conflict" for r in responses if r.status_code == 409)
    await _ledger_checks(url)


async def test_transfers_in_opposite_directions_do_not_deadlock(live, uid):
    url, base, headers = live
    codes, lots = await _arrange(base, headers, uid)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
        r = await c.post("/api/v1/movements", headers={"Idempotency-Key": uuid.uuid4().hex}, json={
            "kind": "receipt", "warehouse": codes["south"], "material": codes["material"], "owner": codes["owner"],
            "quantity": "100", "lot": {"code": "SOUTH", "expires_on": "2030-01-01"}})
        south_lot = r.json()["postings"][0]["account"]["lot_id"]

    async def one(i: int) -> httpx.Response:
        north_to_south = {"from_warehouse": codes["north"], "to_warehouse": codes["south"],
                          "lines": [{"lot_id": lots[0], "owner": codes["owner"], "quantity": "1"},
                                    {"lot_id": lots[1], "owner": codes["owner"], "quantity": "1"}]}
        south_to_north = {"from_warehouse": codes["south"], "to_warehouse": codes["north"],
                          "lines": [{"lot_id": south_lot, "owner": codes["owner"], "quantity": "1"}]}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
            sent = await c.post("/api/v1/transfers", json=north_to_south if i % 2 else south_to_north,
                                headers={"Idempotency-Key": uuid.uuid4().hex})
            assert sent.status_code == 201, sent.text
            return await c.post(f"/api/v1/transfers/{sent.json()['id']}/receipt", json={},
                                headers={"Idempotency-Key": uuid.uuid4().hex})

    responses = await asyncio.gather(*(one(i) for i in range(32)))
    assert [r.status_code for r in responses] == [201] * 32
    await _ledger_checks(url)


async def test_concurrent_batches_never_oversell_and_a_refused_atomic_batch_leaves_no_trace(live, uid):
    url, base, headers = live
    codes, lots = await _arrange(base, headers, uid)
    wanted = (9, 8)

    async def one(i: int) -> tuple[bool, httpx.Response]:
        atomic = i % 3 != 0
        body = {"atomic": atomic, "movements": [
            {"kind": "receipt", "warehouse": codes["north"], "material": codes["material"], "owner": codes["owner"],
             "quantity": "1", "lot": {"code": f"NEW{i}", "expires_on": "2032-01-01"}},
            {"kind": "issue", "lot_id": lots[i % 3], "owner": codes["owner"], "quantity": str(wanted[0])},
            {"kind": "issue", "lot_id": lots[(i + 1) % 3], "owner": codes["owner"], "quantity": str(wanted[1])},
        ]}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
            return atomic, await c.post("/api/v1/movements/batch", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})

    responses = await asyncio.gather(*(one(i) for i in range(CLIENTS)))
    served, new_lots, refused = 0, set(), set()
    for i, (atomic, r) in enumerate(responses):
        if atomic and r.status_code == 409:
            assert r.headers["content-type"].startswith("application/problem+json"), r.text
            assert r.json()["type"] == "insufficient-stock" and r.json()["index"] in (1, 2), r.text
            refused.add(f"NEW{i}")
            continue
        assert r.status_code == (201 if atomic else 200), r.text
        results = r.json()["results"]
        assert results[0]["status"] == 201
        new_lots.add(f"NEW{i}")
        for item, quantity in zip(results[1:], wanted):
            if item["status"] == 201:
                served += quantity
            else:
                assert not atomic and item["status"] == 409 and item["problem"]["type"] == "insufficient-stock", item
    assert refused, "the hot lots must run out for some atomic batches"

    async with _connected(url) as conn:
        on_hand = await _on_hand(conn, lots)
        created = await conn.fetch(
            """SELECT l.code, a.balance FROM lots l JOIN accounts a ON a.lot_id = l.id JOIN warehouses w ON w.id = l.warehouse_id
                WHERE w.code = $1 AND l.code LIKE 'NEW%'""", codes["north"])
    assert 300 - on_hand == served
    assert {r["code"]: r["balance"] for r in created} == {code: 1 for code in new_lots}
    await _ledger_checks(url)


async def test_concurrent_duplicates_of_one_batch_post_it_once(live, uid):
    url, base, headers = live
    codes, lots = await _arrange(base, headers, uid)
    body = {"atomic": True, "movements": [{"kind": "issue", "lot_id": lot, "owner": codes["owner"], "quantity": "4"}
                                          for lot in lots]}

    async def one() -> httpx.Response:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
            return await c.post("/api/v1/movements/batch", json=body, headers={"Idempotency-Key": f"batch-{uid}"})

    responses = await asyncio.gather(*(one() for _ in range(16)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 15
    async with _connected(url) as conn:
        balances = await conn.fetch("SELECT balance FROM accounts WHERE lot_id = ANY($1::uuid[]) AND type = 'stock'", lots)
    assert sorted(r["balance"] for r in balances) == [96, 96, 96]
    await _ledger_checks(url)
