"""Group commit keeps guarantee 5: duplicates of a key stored by an earlier request are each judged
against what was stored — the same body replays, another body is a conflict — whatever else is in
the group."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

from stockpile.api.audit import AuditNote
from stockpile.api.group_commit import Answer, Job, _in_transaction
from stockpile.domain.errors import IdempotencyConflict
from stockpile.services import commands as c
from stockpile.services.movements import Clock
from stockpile.store import idempotency, tokens
from stockpile.store.db import Database


def _job(principal, key: str, body: bytes) -> Job:
    request = SimpleNamespace(user=principal, scope={"method": "POST", "path": "/api/v1/movements", "headers": []})
    note = AuditNote(request, target="/api/v1/movements", details={"idempotency_key": key})
    cmd = c.Reversal(movement_id="00000000-0000-0000-0000-000000000000")
    return Job(cmd, principal, key, hashlib.sha256(body).digest(), note, Clock.utc())


async def test_duplicates_of_a_stored_key_are_judged_by_what_was_stored(database_url, pg_pool):
    async with pg_pool.acquire() as conn:
        principal_id = await tokens.upsert_principal(conn, "group-commit-probe", ["operator"], None)
        token = await tokens.issue_token(conn, principal_id, "t")
        principal = await tokens.principal_for_token(conn, token)
        async with conn.transaction():
            await idempotency.claim(conn, principal.id, "stored-key", hashlib.sha256(b"original").digest())
            await idempotency.record(conn, principal.id, "stored-key", 201, b'{"id":"first"}')
    db = Database(database_url, pool_size=1)
    try:
        async with db.transaction() as tx:
            answers = await _in_transaction(tx.pg, [
                _job(principal, "stored-key", b"different"),
                _job(principal, "stored-key", b"original"),
                _job(principal, "stored-key", b"different"),
            ])
    finally:
        await db.dispose()
    assert isinstance(answers[0], IdempotencyConflict)
    assert answers[1] == Answer(201, b'{"id":"first"}', replayed=True)
    assert isinstance(answers[2], IdempotencyConflict)
