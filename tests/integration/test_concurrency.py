"""The ledger's guarantees under real concurrency: many HTTP clients, each on a connection of its
own, against the service running as in production (a uvicorn process, see ``live_server``) on the
test PostgreSQL database.

Clients open their connections first and are then released together (``storm``), so the requests
really overlap; nothing here waits on a clock. After each storm the database is checked directly.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from decimal import Decimal

import httpx
import pytest

from tests.factories import make_world, receive
from tests.integration.live_server import live_server  # noqa: F401 - the fixture

PROBLEM_JSON = "application/problem+json"
STORM_TIMEOUT_SECONDS = 45


@pytest.fixture
async def headers(make_token, root_region) -> dict[str, str]:
    """A principal of each test's own (rate limits are per principal) that may write master data and
    movements."""
    return {"Authorization": f"Bearer {await make_token('admin', 'operator', clearance='military')}"}


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def lot_of(movement: dict) -> str:
    return movement["postings"][0]["account"]["lot_id"]


async def storm(server, headers: dict, calls: list[tuple[str, dict, dict]]) -> list[httpx.Response]:
    """Send each ``(path, body, extra headers)`` from a client and connection of its own; every
    client connects first, then all are released at once. Answers in call order."""
    barrier = asyncio.Barrier(len(calls))

    async def one(path: str, body: dict, extra: dict) -> httpx.Response:
        async with server.client(headers) as c:
            try:
                assert (await c.get("/health/live")).status_code == 200
            except BaseException:
                await barrier.abort()
                raise
            await barrier.wait()
            return await c.post(path, json=body, headers=extra)

    async with asyncio.timeout(STORM_TIMEOUT_SECONDS):
        return await asyncio.gather(*(one(*call) for call in calls))


def explain(server, responses: list[httpx.Response]) -> str:
    """The unexpected answers and the server's log, for an assertion message."""
    odd = [f"{r.status_code} {r.text[:300]}" for r in responses if r.status_code >= 500]
    return "\n".join(odd[:5]) + "\n--- server log ---\n" + server.log()[-4000:]


def assert_no_deadlock(server, log_mark: int) -> None:
    """Nothing deadlocked since ``log_mark``: a deadlock that hit a lone request is a 503 (checked
    on the answers); one that hit a group commit is retried quietly and only the log tells."""
    said = server.log()[log_mark:]
    assert "Deadlock" not in said and "failed" not in said, said[-4000:]


def assert_clean_refusal(r: httpx.Response, type_: str) -> dict:
    assert r.headers["content-type"].startswith(PROBLEM_JSON), (r.status_code, r.headers, r.text)
    problem = r.json()
    assert (r.status_code, problem["type"], problem["status"]) == (409, type_, 409), r.text
    assert problem["detail"] and "Traceback" not in r.text
    return problem


async def assert_ledger_consistent(pg) -> None:
    """Guarantees 1-3 over the whole database, straight from the tables."""
    negative = await pg.fetch(
        "SELECT id, balance, reserved FROM accounts WHERE balance < 0 OR reserved < 0 OR reserved > balance")
    assert negative == []
    drifted = await pg.fetch(
        """SELECT a.id, a.balance, coalesce(p.total, 0) AS postings
             FROM accounts a
             LEFT JOIN (SELECT account_id, sum(delta) AS total FROM postings
                         WHERE account_id IS NOT NULL GROUP BY account_id) p ON p.account_id = a.id
            WHERE a.balance <> coalesce(p.total, 0)""")
    assert drifted == []
    unbalanced = await pg.fetch(
        "SELECT movement_id, material_id, sum(delta) FROM postings GROUP BY 1, 2 HAVING sum(delta) <> 0")
    assert unbalanced == []


async def balances(pg, lot_ids: list[str], type_: str = "stock") -> dict[tuple[str, str], int]:
    """(lot id, owner code) → balance of the stock (or transit: summed) accounts in these lots."""
    rows = await pg.fetch(
        """SELECT a.lot_id::text AS lot_id, o.code AS owner, sum(a.balance) AS balance
             FROM accounts a JOIN parties o ON o.id = a.owner_id
            WHERE a.type = $2 AND a.lot_id = ANY($1::uuid[]) GROUP BY 1, 2""",
        lot_ids, type_)
    return {(r["lot_id"], r["owner"]): r["balance"] for r in rows}


async def test_hot_lots_are_never_oversold_and_every_refusal_is_a_clean_409(live_server, headers, pg_pool, uid):
    async with live_server.client(headers) as c:
        w = await make_world(c, headers, uid)
        lots = []
        for code, quantity, expires_on in (("HOT-A", "40.0", "2030-01-01"), ("HOT-B", "30.0", "2030-06-01"),
                                           ("HOT-C", "20.0", "2031-01-01")):
            lots.append(lot_of(await receive(c, headers, warehouse=w.north, material=w.diesel, owner=w.civil,
                                             quantity=quantity, lot=code, expires_on=expires_on)))
        # Another owner's share of the first lot: no issue for the civil owner may touch it.
        await receive(c, headers, warehouse=w.north, material=w.diesel, owner=w.military, quantity="10.0",
                      lot="HOT-A", expires_on="2030-01-01")
    start = {lot: units for lot, units in zip(lots, (400, 300, 200))}  # diesel has 1 decimal

    # (path, body, stock units it takes per lot; None = first-expiring pick of the owner's lots)
    requests: list[tuple[str, dict, dict[str, int] | None]] = []
    for i in range(48):
        a, b = lots[i % 3], lots[(i + 1) % 3]
        if i % 4 == 0:
            requests.append(("/api/v1/movements", {"kind": "issue", "warehouse": w.north, "material": w.diesel,
                                                   "owner": w.civil, "quantity": "7.5"}, None))
        elif i % 4 == 1:
            requests.append(("/api/v1/movements", {"kind": "issue", "lot_id": a, "owner": w.civil,
                                                   "quantity": "5.5", "reason": "consumption"}, {a: 55}))
        elif i % 4 == 2:
            requests.append(("/api/v1/transfers", {"from_warehouse": w.north, "to_warehouse": w.south,
                                                   "lines": [{"lot_id": a, "owner": w.civil, "quantity": "6"}]},
                             {a: 60}))
        else:
            requests.append(("/api/v1/transfers", {"from_warehouse": w.north, "to_warehouse": w.south,
                                                   "lines": [{"lot_id": a, "owner": w.civil, "quantity": "2.5"},
                                                             {"lot_id": b, "owner": w.civil, "quantity": 2.5}]},
                             {a: 25, b: 25}))

    log_mark = len(live_server.log())

    responses = await storm(live_server, headers, [(path, body, key()) for path, body, _ in requests])

    assert {r.status_code for r in responses} <= {201, 409}, explain(live_server, responses)
    assert_no_deadlock(live_server, log_mark)
    ok = [i for i, r in enumerate(responses) if r.status_code == 201]
    refused = [i for i, r in enumerate(responses) if r.status_code == 409]
    assert ok and refused, "the hot lots hold too little for everyone: some must be served, some refused"
    for i in refused:
        problem = assert_clean_refusal(responses[i], "insufficient-stock")
        assert "available" in problem, problem

    # What each success took, as the ledger answered it; a first-expiring issue may span lots.
    taken: Counter[str] = Counter()
    issued = dispatched = 0
    movement_ids = []
    for i in ok:
        answer = responses[i].json()
        movement = answer["movement"] if requests[i][0] == "/api/v1/transfers" else answer
        movement_ids.append(movement["id"])
        stock = [p for p in movement["postings"] if p["account"]["type"] == "stock"]
        assert {p["account"]["owner"] for p in stock} == {w.civil}
        took = Counter({p["account"]["lot_id"]: -int(Decimal(p["delta"]) * 10) for p in stock})
        assert all(units > 0 for units in took.values())
        expected = requests[i][2]
        if expected is None:
            assert sum(took.values()) == 75
        else:
            assert dict(took) == expected
        taken.update(took)
        if movement["kind"] == "issue":
            issued += sum(took.values())
        else:
            assert movement["kind"] == "transfer_dispatch"
            dispatched += sum(took.values())
    assert len(set(movement_ids)) == len(ok)

    on_hand = await balances(pg_pool, lots)
    in_transit = await balances(pg_pool, lots, "transit")
    for lot in lots:
        assert on_hand[(lot, w.civil)] >= 0
        assert start[lot] - on_hand[(lot, w.civil)] == taken[lot], "the drop in stock is exactly what was served"
    assert on_hand[(lots[0], w.military)] == 100, "another owner's share is untouched"
    assert sum(in_transit.values()) == dispatched

    consumed = await pg_pool.fetchval(
        "SELECT coalesce(sum(delta), 0) FROM postings WHERE external = 'consumption' AND movement_id = ANY($1::uuid[])",
        movement_ids)
    assert consumed == issued
    recorded = await pg_pool.fetch(
        """SELECT DISTINCT m.id::text AS id FROM movements m JOIN postings p ON p.movement_id = m.id
             JOIN accounts a ON a.id = p.account_id
            WHERE a.type = 'stock' AND a.lot_id = ANY($1::uuid[]) AND m.kind IN ('issue', 'transfer_dispatch')""",
        lots)
    assert sorted(r["id"] for r in recorded) == sorted(movement_ids), "one movement per success, nothing else"

    # Stock only went down, so whatever was refused is still more than what is left now.
    left = {lot: on_hand[(lot, w.civil)] for lot in lots}
    for i in refused:
        wanted = requests[i][2]
        if wanted is None:
            assert sum(left.values()) < 75
        else:
            assert any(left[lot] < units for lot, units in wanted.items()), (requests[i][1], left)
    await assert_ledger_consistent(pg_pool)


@pytest.mark.parametrize("endpoint", ["movement", "transfer"])
async def test_one_idempotency_key_sent_by_many_clients_at_once_posts_once(live_server, headers, pg_pool, uid, endpoint):
    async with live_server.client(headers) as c:
        w = await make_world(c, headers, uid)
        lot = lot_of(await receive(c, headers, warehouse=w.north, material=w.diesel, owner=w.civil,
                                   quantity="100.0", lot="DUP"))
    if endpoint == "movement":
        path, body = "/api/v1/movements", {"kind": "issue", "lot_id": lot, "owner": w.civil, "quantity": "7.0"}
    else:
        path, body = "/api/v1/transfers", {"from_warehouse": w.north, "to_warehouse": w.south,
                                           "lines": [{"lot_id": lot, "owner": w.civil, "quantity": "7.0"}]}
    same_key = {"Idempotency-Key": f"dup-{uid}"}

    responses = await storm(live_server, headers, [(path, body, same_key)] * 24)

    assert [r.status_code for r in responses] == [201] * 24, explain(live_server, responses)
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    replays = [r.headers.get("idempotent-replayed") for r in responses]
    assert replays.count("true") == 23 and replays.count(None) == 1
    assert len({r.content for r in responses}) == 1, "every replay is the first answer, byte for byte"

    assert (await balances(pg_pool, [lot]))[(lot, w.civil)] == 1000 - 70, "the stock dropped once"
    posted = await pg_pool.fetch(
        """SELECT DISTINCT m.id FROM movements m JOIN postings p ON p.movement_id = m.id JOIN accounts a ON a.id = p.account_id
            WHERE a.lot_id = $1::uuid AND a.type = 'stock' AND m.kind <> 'receipt'""", lot)
    assert len(posted) == 1
    if endpoint == "transfer":
        assert await pg_pool.fetchval(
            "SELECT count(*) FROM transfers t JOIN warehouses w ON w.id = t.from_warehouse_id WHERE w.code = $1",
            w.north) == 1
    else:
        assert str(posted[0]["id"]) == ids.pop()
    assert await pg_pool.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", same_key["Idempotency-Key"]) == 1
    await assert_ledger_consistent(pg_pool)


async def test_one_batch_sent_by_many_clients_at_once_under_one_key_posts_it_once(live_server, headers, pg_pool, uid):
    async with live_server.client(headers) as c:
        w = await make_world(c, headers, uid)
        lots = [lot_of(await receive(c, headers, warehouse=w.north, material=w.diesel, owner=w.civil,
                                     quantity="100.0", lot=code)) for code in ("BA", "BB", "BC")]
    body = {"atomic": True, "movements": [{"kind": "issue", "lot_id": lot, "owner": w.civil, "quantity": "4.0"}
                                          for lot in lots]}
    same_key = {"Idempotency-Key": f"batch-{uid}"}

    responses = await storm(live_server, headers, [("/api/v1/movements/batch", body, same_key)] * 16)

    assert [r.status_code for r in responses] == [201] * 16, explain(live_server, responses)
    assert len({r.content for r in responses}) == 1, "every replay is the first answer, byte for byte"
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 15
    assert await balances(pg_pool, lots) == {(lot, w.civil): 1000 - 40 for lot in lots}, "each lot dropped once"
    await assert_ledger_consistent(pg_pool)


async def test_concurrent_batches_never_oversell_and_a_refused_atomic_batch_leaves_no_trace(
        live_server, headers, pg_pool, uid):
    async with live_server.client(headers) as c:
        w = await make_world(c, headers, uid)
        lots = [lot_of(await receive(c, headers, warehouse=w.north, material=w.diesel, owner=w.civil,
                                     quantity="100.0", lot=f"HOT{i}", expires_on=expires_on))
                for i, expires_on in enumerate(["2030-01-01", "2030-06-01", "2031-01-01"])]
    wanted = (90, 80)  # units of each batch's two issues (diesel has 1 decimal)
    atomic = [i % 3 != 0 for i in range(40)]
    calls = [("/api/v1/movements/batch", {"atomic": atomic[i], "movements": [
        {"kind": "receipt", "warehouse": w.north, "material": w.diesel, "owner": w.civil, "quantity": "1",
         "lot": {"code": f"NEW{i}", "expires_on": "2032-01-01"}},
        {"kind": "issue", "lot_id": lots[i % 3], "owner": w.civil, "quantity": "9"},
        {"kind": "issue", "lot_id": lots[(i + 1) % 3], "owner": w.civil, "quantity": "8"},
    ]}, key()) for i in range(40)]

    responses = await storm(live_server, headers, calls)

    served, new_lots, refused = 0, set(), set()
    for i, r in enumerate(responses):
        if atomic[i] and r.status_code == 409:
            assert assert_clean_refusal(r, "insufficient-stock")["index"] in (1, 2), r.text
            refused.add(f"NEW{i}")
            continue
        assert r.status_code == (201 if atomic[i] else 200), explain(live_server, responses)
        results = r.json()["results"]
        assert results[0]["status"] == 201
        new_lots.add(f"NEW{i}")
        for item, units in zip(results[1:], wanted):
            if item["status"] == 201:
                served += units
            else:
                assert not atomic[i] and item["status"] == 409 and item["problem"]["type"] == "insufficient-stock", item
    assert refused, "the hot lots must run out for some atomic batches"
    on_hand = await balances(pg_pool, lots)
    assert 3000 - sum(on_hand.values()) == served, "the drop in stock is exactly what was served"
    created = await pg_pool.fetch(
        """SELECT l.code, a.balance FROM lots l JOIN accounts a ON a.lot_id = l.id JOIN warehouses w ON w.id = l.warehouse_id
            WHERE w.code = $1 AND l.code LIKE 'NEW%'""", w.north)
    assert {r["code"]: r["balance"] for r in created} == {code: 10 for code in new_lots}, \
        "a refused atomic batch leaves no lot behind"
    await assert_ledger_consistent(pg_pool)


async def test_one_key_with_two_bodies_at_once_posts_one_and_refuses_the_other(live_server, headers, pg_pool, uid):
    async with live_server.client(headers) as c:
        w = await make_world(c, headers, uid)
        lot = lot_of(await receive(c, headers, warehouse=w.north, material=w.diesel, owner=w.civil,
                                   quantity="100.0", lot="TWO"))
    bodies = [{"kind": "issue", "lot_id": lot, "owner": w.civil, "quantity": quantity} for quantity in ("1.0", "2.0")]
    same_key = {"Idempotency-Key": f"two-{uid}"}

    responses = await storm(live_server, headers,
                            [("/api/v1/movements", bodies[i % 2], same_key) for i in range(24)])

    assert {r.status_code for r in responses} == {201, 409}, explain(live_server, responses)
    winners = {i % 2 for i, r in enumerate(responses) if r.status_code == 201}
    assert len(winners) == 1, "only one of the two bodies is applied"
    winner = winners.pop()
    for i, r in enumerate(responses):
        if i % 2 == winner:
            assert r.status_code == 201, ("the same body as the one applied is a replay", i, r.text)
        else:
            assert_clean_refusal(r, "idempotency-conflict")
    served = [r for r in responses if r.status_code == 201]
    assert len({r.json()["id"] for r in served}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in served) == len(served) - 1
    assert (await balances(pg_pool, [lot]))[(lot, w.civil)] == 1000 - (10, 20)[winner]
    assert await pg_pool.fetchval(
        """SELECT count(DISTINCT m.id) FROM movements m JOIN postings p ON p.movement_id = m.id
             JOIN accounts a ON a.id = p.account_id WHERE a.lot_id = $1::uuid AND m.kind = 'issue'""", lot) == 1


async def test_a_used_key_sent_again_at_once_with_its_body_and_another_replays_only_its_body(
        live_server, headers, pg_pool, uid):
    async with live_server.client(headers) as c:
        w = await make_world(c, headers, uid)
        lot = lot_of(await receive(c, headers, warehouse=w.north, material=w.diesel, owner=w.civil,
                                   quantity="100.0", lot="USED"))
        used, other = ({"kind": "issue", "lot_id": lot, "owner": w.civil, "quantity": q} for q in ("1.0", "2.0"))
        same_key = {"Idempotency-Key": f"used-{uid}"}
        first = await c.post("/api/v1/movements", json=used, headers=same_key)
        assert first.status_code == 201, first.text

    for _ in range(3):
        responses = await storm(live_server, headers,
                                [("/api/v1/movements", (other, used)[i % 2], same_key) for i in range(16)])
        for i, r in enumerate(responses):
            if i % 2:
                assert (r.status_code, r.headers.get("idempotent-replayed")) == (201, "true"), r.text
                assert r.content == first.content
            else:
                assert_clean_refusal(r, "idempotency-conflict")
    assert (await balances(pg_pool, [lot]))[(lot, w.civil)] == 1000 - 10


async def test_concurrent_reversals_of_one_movement_succeed_once(live_server, headers, pg_pool, uid):
    async with live_server.client(headers) as c:
        w = await make_world(c, headers, uid)
        lot = lot_of(await receive(c, headers, warehouse=w.north, material=w.diesel, owner=w.civil,
                                   quantity="50.0", lot="REV"))
        issued = await c.post("/api/v1/movements", headers=key(),
                              json={"kind": "issue", "lot_id": lot, "owner": w.civil, "quantity": "12.5"})
        assert issued.status_code == 201, issued.text
    movement_id = issued.json()["id"]
    reversal = {"kind": "reversal", "movement_id": movement_id, "reason": "entered twice"}
    # Half through the single-movement path, half as one-item batches (transactions of their own).
    calls = [("/api/v1/movements", reversal, key()) if i % 2 else
             ("/api/v1/movements/batch", {"movements": [reversal], "atomic": True}, key()) for i in range(16)]

    responses = await storm(live_server, headers, calls)

    assert sorted(r.status_code for r in responses) == [201] + [409] * 15, explain(live_server, responses)
    for r in responses:
        if r.status_code == 409:
            assert_clean_refusal(r, "conflict")
    reversals = await pg_pool.fetch("SELECT id FROM movements WHERE reverses_id = $1::uuid", movement_id)
    assert len(reversals) == 1
    assert (await balances(pg_pool, [lot]))[(lot, w.civil)] == 500, "the issue was undone exactly once"
    await assert_ledger_consistent(pg_pool)


async def test_transfers_in_opposite_directions_over_the_same_accounts_do_not_deadlock(live_server, headers, pg_pool, uid):
    async with live_server.client(headers) as c:
        w = await make_world(c, headers, uid)
        # Lots X and Y are held at both depots: each direction's receipt lands on the accounts the
        # other direction dispatches from.
        lots = {}
        for warehouse in (w.north, w.south):
            for code in ("X", "Y"):
                moved = await receive(c, headers, warehouse=warehouse, material=w.diesel, owner=w.civil,
                                      quantity="100.0", lot=code, expires_on="2030-01-01")
                lots[(warehouse, code)] = lot_of(moved)

    def line(warehouse: str, code: str) -> dict:
        return {"lot_id": lots[(warehouse, code)], "owner": w.civil, "quantity": "1.5"}

    async def dispatch_and_receive(i: int, barrier: asyncio.Barrier) -> tuple[httpx.Response, httpx.Response | None]:
        if i % 2:
            body = {"from_warehouse": w.north, "to_warehouse": w.south, "lines": [line(w.north, "X"), line(w.north, "Y")]}
        else:
            body = {"from_warehouse": w.south, "to_warehouse": w.north, "lines": [line(w.south, "Y"), line(w.south, "X")]}
        async with live_server.client(headers) as c:
            try:
                assert (await c.get("/health/live")).status_code == 200
            except BaseException:
                await barrier.abort()
                raise
            await barrier.wait()
            sent = await c.post("/api/v1/transfers", json=body, headers=key())
            if sent.status_code != 201:
                return sent, None
            return sent, await c.post(f"/api/v1/transfers/{sent.json()['id']}/receipt", json={}, headers=key())

    barrier = asyncio.Barrier(32)
    log_mark = len(live_server.log())
    async with asyncio.timeout(STORM_TIMEOUT_SECONDS):
        results = await asyncio.gather(*(dispatch_and_receive(i, barrier) for i in range(32)))

    answers = [r for pair in results for r in pair if r is not None]
    assert [r.status_code for r in answers] == [201] * 64, explain(live_server, answers)
    assert_no_deadlock(live_server, log_mark)
    transfer_ids = [sent.json()["id"] for sent, _ in results]
    assert all(received.json()["state"] == "received" for _, received in results)
    on_hand = await balances(pg_pool, list(lots.values()))
    assert {k: on_hand[(lot, w.civil)] for k, lot in lots.items()} == {k: 1000 for k in lots}, \
        "16 each way of 1.5 per lot: every position ends where it began"
    assert await pg_pool.fetchval(
        "SELECT coalesce(sum(balance), 0) FROM accounts WHERE type = 'transit' AND transfer_id = ANY($1::uuid[])",
        transfer_ids) == 0
    await assert_ledger_consistent(pg_pool)


async def test_concurrent_receipts_opening_the_same_new_lots_in_opposite_order_do_not_deadlock(
        live_server, headers, pg_pool, uid):
    async with live_server.client(headers) as c:
        w = await make_world(c, headers, uid)
        sources = [lot_of(await receive(c, headers, warehouse=w.north, material=w.diesel, owner=w.civil,
                                        quantity="100.0", lot=code, expires_on="2030-01-01")) for code in ("P", "Q")]
        # Dispatched one by one; their lots do not exist at the south depot yet.
        transfer_ids = []
        for i in range(24):
            lines = [{"lot_id": lot, "owner": w.civil, "quantity": "2.0"} for lot in sources]
            sent = await c.post("/api/v1/transfers", headers=key(), json={
                "from_warehouse": w.north, "to_warehouse": w.south, "lines": lines if i % 2 else lines[::-1]})
            assert sent.status_code == 201, sent.text
            transfer_ids.append(sent.json()["id"])

    log_mark = len(live_server.log())

    responses = await storm(live_server, headers,
                            [(f"/api/v1/transfers/{t}/receipt", {}, key()) for t in transfer_ids])

    assert [r.status_code for r in responses] == [201] * 24, explain(live_server, responses)
    assert_no_deadlock(live_server, log_mark)
    destination = {line["lot_code"]: line["destination_lot_id"] for r in responses for line in r.json()["lines"]}
    assert sorted(destination) == ["P", "Q"]
    assert len({line["destination_lot_id"] for r in responses for line in r.json()["lines"]}) == 2, \
        "each lot is opened once at the destination"
    on_hand = await balances(pg_pool, list(destination.values()))
    assert on_hand == {(destination["P"], w.civil): 480, (destination["Q"], w.civil): 480}
    await assert_ledger_consistent(pg_pool)


async def test_grouped_movements_of_every_kind_and_transfers_over_the_same_lots_do_not_deadlock(
        live_server, headers, pg_pool, uid):
    """Single movements are committed in groups: a group locks what all its movements touch. Here
    groups that reverse, write off and re-title on lot A while issuing from lot B race transfers
    drawing on both A and B; every lock must still be taken in one order."""
    async with live_server.client(headers) as c:
        w = await make_world(c, headers, uid)
        a, b = [lot_of(await receive(c, headers, warehouse=w.north, material=w.diesel, owner=w.civil,
                                     quantity="500.0", lot=code, expires_on="2030-01-01")) for code in ("A", "B")]
        await receive(c, headers, warehouse=w.north, material=w.diesel, owner=w.military, quantity="500.0",
                      lot="A", expires_on="2030-01-01")
        earlier = []
        for _ in range(12):
            r = await c.post("/api/v1/movements", headers=key(),
                             json={"kind": "issue", "lot_id": a, "owner": w.civil, "quantity": "1.0"})
            assert r.status_code == 201, r.text
            earlier.append(r.json()["id"])
    calls = []
    for i in range(12):
        calls += [
            ("/api/v1/movements", {"kind": "issue", "lot_id": b, "owner": w.civil, "quantity": "1.0"}, key()),
            ("/api/v1/movements", {"kind": "reversal", "movement_id": earlier[i]}, key()),
            ("/api/v1/movements", {"kind": "write_off", "lot_id": a, "owner": w.civil, "quantity": "1.0",
                                   "reason": "leak"}, key()),
            ("/api/v1/movements", {"kind": "ownership_transfer", "lot_id": a, "from_owner": w.military,
                                   "to_owner": w.civil, "quantity": "1.0", "reason": "requisition"}, key()),
            ("/api/v1/transfers", {"from_warehouse": w.north, "to_warehouse": w.south, "lines": [
                {"lot_id": a, "owner": w.civil, "quantity": "1.0"}, {"lot_id": b, "owner": w.civil, "quantity": "1.0"}]},
             key()),
        ]
    log_mark = len(live_server.log())

    responses = await storm(live_server, headers, calls)

    assert [r.status_code for r in responses] == [201] * len(calls), explain(live_server, responses)
    assert_no_deadlock(live_server, log_mark)
    on_hand = await balances(pg_pool, [a, b])
    # A (civil): 500.0 - 12 earlier issues, then +12 reversed, -12 written off, +12 re-titled, -12 sent.
    assert on_hand == {(a, w.civil): 4880, (a, w.military): 4880, (b, w.civil): 4760}
    await assert_ledger_consistent(pg_pool)
