"""Group commit: concurrent single movements and batches go in one transaction, each answered on its
own; an atomic batch refused in a group leaves no trace and the rest of the group commits; and
guarantee 5 holds — duplicates of a key stored by an earlier request are each judged against what
was stored (the same body replays, another body is a conflict), whatever else is in the group."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from types import SimpleNamespace

import msgspec
import pytest

from stockpile.api.audit import AuditNote
from stockpile.api.presenters.movements import present_posted
from stockpile.api.problems import problem_body
from stockpile.domain.errors import IdempotencyConflict, InsufficientStock
from stockpile.domain.moments import Clock
from stockpile.services import commands as c
from stockpile.services import posting, workspace
from stockpile.services.idempotency import Answer
from stockpile.services.posting import GroupCommit, LedgerRequest, Presenters
from stockpile.store import idempotency, tokens
from stockpile.store.ledger import insert_movements
from stockpile.store.db import Database
from tests.factories import lot_of, make_world, receive


PRESENTERS = Presenters(movement=present_posted, problem=problem_body)


def _job(principal, key: str, body: bytes) -> LedgerRequest:
    request = SimpleNamespace(user=principal, scope={"method": "POST", "path": "/api/v1/movements", "headers": []})
    note = AuditNote(request, target="/api/v1/movements", details={"idempotency_key": key})
    cmd = c.Reversal(movement_id="00000000-0000-0000-0000-000000000000")
    return LedgerRequest(cmd, principal, key, hashlib.sha256(body).digest(), note, Clock.utc())


async def test_duplicates_of_a_stored_key_are_judged_by_what_was_stored(database_url, pg_pool):
    async with pg_pool.acquire() as conn:
        principal_id = await tokens.upsert_principal(conn, "group-commit-probe", ["operator"], None)
        token = await tokens.issue_token(conn, principal_id, "t")
        principal = await tokens.principal_for_token(conn, token)
        async with conn.transaction():
            await idempotency.claim_many(conn, [(principal.id, "stored-key", hashlib.sha256(b"original").digest())])
            await idempotency.record(conn, principal.id, "stored-key", 201, b'{"id":"first"}')
    db = Database(database_url, pool_size=1)
    try:
        async with db.transaction() as tx:
            answers = await posting.in_transaction(tx.pg, [
                _job(principal, "stored-key", b"different"),
                _job(principal, "stored-key", b"original"),
                _job(principal, "stored-key", b"different"),
            ], PRESENTERS)
    finally:
        await db.dispose()
    assert isinstance(answers[0], IdempotencyConflict)
    assert answers[1] == Answer(201, b'{"id":"first"}', replayed=True)
    assert isinstance(answers[2], IdempotencyConflict)


def _batch_job(principal, movements: list[dict], *, atomic: bool = True, single: bool = False) -> LedgerRequest:
    request = SimpleNamespace(user=principal, scope={"method": "POST", "path": "/api/v1/movements/batch", "headers": []})
    key = uuid.uuid4().hex
    note = AuditNote(request, target="/api/v1/movements/batch", details={"idempotency_key": key})
    body = msgspec.convert(movements[0], c.Movement) if single else \
        msgspec.convert({"atomic": atomic, "movements": movements}, c.Batch)
    return LedgerRequest(body, principal, key, hashlib.sha256(key.encode()).digest(), note, Clock.utc())


def _count_appends(monkeypatch, append_every: int) -> list[int]:
    """Let the group commit append every ``append_every`` movements in the background, and record
    how many movements (and stored responses) each append statement carries."""
    monkeypatch.setattr(posting, "APPEND_EVERY", append_every)
    appends: list[int] = []

    async def counted_insert(pg, pending):
        appends.append(len(pending))
        return await insert_movements(pg, pending)

    monkeypatch.setattr(workspace.store, "insert_movements", counted_insert)
    return appends


async def _world_with_lot(client, admin, operator, uid, pg_pool, code: str, quantity: str):
    """A test world, one lot of its diesel held by its civil owner, and the operator's principal."""
    w = await make_world(client, admin, uid)
    lot = lot_of(await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil,
                               quantity=quantity, lot=code))
    async with pg_pool.acquire() as conn:
        principal = await tokens.principal_for_token(conn, operator["Authorization"].removeprefix("Bearer "))
    return w, lot, principal


async def _submit_together(database_url: str, jobs: list[LedgerRequest]) -> list[Answer | BaseException]:
    """Submit the jobs at once to a fresh committer: they are all waiting when it forms its group."""
    db = Database(database_url, pool_size=2)
    try:
        committer = GroupCommit(db, PRESENTERS)
        return await asyncio.gather(*(committer.post(job) for job in jobs), return_exceptions=True)
    finally:
        await db.dispose()


async def _movement_xids(pg_pool, answer: Answer) -> set[int]:
    body = json.loads(answer.body)
    ids = [body["id"]] if "id" in body else [x["movement"]["id"] for x in body["results"] if x["status"] == 201]
    rows = await pg_pool.fetch("SELECT xid::text::bigint AS xid FROM movements WHERE id = ANY($1::uuid[])", ids)
    assert len(rows) == len(ids)
    return {r["xid"] for r in rows}


@pytest.mark.parametrize("append_every", [250, 2], ids=["one-append", "appends-in-the-background"])
async def test_batches_and_single_movements_share_one_transaction(
        client, admin, operator, uid, pg_pool, database_url, monkeypatch, append_every):
    appends = _count_appends(monkeypatch, append_every)
    w, lot, principal = await _world_with_lot(client, admin, operator, uid, pg_pool, "SHARED", "50")
    issue = {"kind": "issue", "lot_id": lot, "owner": w.civil, "quantity": "1"}
    receipt = {"kind": "receipt", "warehouse": w.north, "material": w.diesel, "owner": w.civil, "quantity": "2",
               "lot": {"code": "SHARED", "expires_on": "2030-01-01"}}
    count = {"kind": "adjustment", "lot_id": lot, "owner": w.civil, "counted": "45"}  # reads the database mid-group
    jobs = [_batch_job(principal, [issue], single=True), _batch_job(principal, [issue, receipt, issue]),
            _batch_job(principal, [receipt, issue, count, issue], atomic=False)]
    answers = await _submit_together(database_url, jobs)
    assert [a.status for a in answers] == [201, 201, 200]
    # 8 movements and the 2 batches' stored responses (after the world's receipt); the count reads the database, so
    # what precedes it is appended first — in the background too, whenever 2 are pending
    group = appends[1:]
    assert sum(group) == 10 and (group == [7, 3] if append_every > 10 else len(group) > 2), appends
    assert [a.kinds for a in answers] == [("issue",), ("issue", "receipt", "issue"),
                                          ("receipt", "issue", "adjustment", "issue")]
    xids = set().union(*[await _movement_xids(pg_pool, a) for a in answers])
    assert len(xids) == 1, "the three requests were committed in one transaction"
    # each answer shows the balance its movement left, in the order the group applied them
    batch = json.loads(answers[1].body)["results"]
    assert [x["movement"]["balances"][0]["balance"] for x in batch] == ["48.0", "50.0", "49.0"]
    counted = json.loads(answers[2].body)["results"][2]["movement"]
    assert counted["postings"][0]["delta"] == "-5.0" and counted["balances"][0]["balance"] == "45.0"
    assert await pg_pool.fetchval("SELECT balance FROM accounts WHERE lot_id = $1::uuid", lot) == 450 - 10
    stored = await pg_pool.fetch("SELECT status_code, response FROM idempotency_keys WHERE key = ANY($1::text[])",
                                 [j.key for j in jobs])
    assert sorted((r["status_code"], bytes(r["response"])) for r in stored) == \
        sorted((a.status, a.body) for a in answers)


@pytest.mark.parametrize("append_every", [250, 1], ids=["one-append", "appends-in-the-background"])
async def test_a_refused_atomic_batch_leaves_no_trace_and_the_rest_of_its_group_commits(
        client, admin, operator, uid, pg_pool, database_url, monkeypatch, append_every):
    appends = _count_appends(monkeypatch, append_every)
    w, lot, principal = await _world_with_lot(client, admin, operator, uid, pg_pool, "HOT", "10")

    def issue(quantity: str) -> dict:
        return {"kind": "issue", "lot_id": lot, "owner": w.civil, "quantity": quantity}

    new_lot = {"kind": "receipt", "warehouse": w.north, "material": w.diesel, "owner": w.civil, "quantity": "1",
               "lot": {"code": "ONLY-IF-COMMITTED", "expires_on": "2031-01-01"}}
    jobs = [_batch_job(principal, [issue("4")], single=True),
            _batch_job(principal, [new_lot, issue("7")]),  # 7 > 10 - 4: refused, with its new lot
            _batch_job(principal, [issue("3")], atomic=False),
            _batch_job(principal, [issue("2")])]
    answers = await _submit_together(database_url, jobs)
    refused = answers[1]
    assert isinstance(refused, InsufficientStock) and refused.extra["index"] == 1 and refused.extra["available"] == "6.0"
    assert [a.status for a in (answers[0], answers[2], answers[3])] == [201, 200, 201]
    # committed: the single movement, then the two batches after the refused one (a movement and a stored
    # response each); in the background the refused batch's new lot was appended too before it was refused
    assert sum(appends[1:]) == 5 if append_every > 5 else sum(appends[1:]) > 5, appends
    assert await pg_pool.fetchval("SELECT count(*) FROM lots WHERE code = 'ONLY-IF-COMMITTED'") == 0
    assert await pg_pool.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", jobs[1].key) == 0
    assert await pg_pool.fetchval("SELECT balance FROM accounts WHERE lot_id = $1::uuid", lot) == 100 - 40 - 30 - 20
    before, after = await _movement_xids(pg_pool, answers[0]), await _movement_xids(pg_pool, answers[2])
    assert after == await _movement_xids(pg_pool, answers[3]) and before != after
