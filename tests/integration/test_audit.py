"""The audit trail: every state change and every denial is recorded, in one unbroken hash chain
that `stockpile audit verify` proves — and that it proves broken after any tampering."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import httpx
import pytest

from stockpile.store.engine import asyncpg_dsn
from tests.factories import idem, make_world, receive
from tests.live import running_server


def verify_cli(url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "stockpile", "audit", "verify"], env=env, capture_output=True,
                          text=True, timeout=120)


async def test_writes_failures_and_denials_are_recorded_with_who_what_and_outcome(client, admin, operator, auditor, uid, pg_pool):
    w = await make_world(client, admin, uid)
    ok = await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="10", lot="A1")
    failed = await client.post("/api/v1/movements", headers={**operator, **idem(), "X-Request-Id": f"req-{uid}"},
                               json={"kind": "issue", "warehouse": w.north, "material": w.diesel, "owner": w.civil,
                                     "quantity": "11"})
    assert failed.status_code == 409
    denied = await client.put(f"/api/v1/parties/X-{uid}", headers=auditor, json={"name": "x", "sector": "civilian"})
    assert denied.status_code == 403

    rows = await pg_pool.fetch("SELECT actor, roles, action, target, outcome, status, request_id, details FROM audit_events "
                               "WHERE at > now() - interval '1 minute' ORDER BY id")
    receipt = [r for r in rows if r["action"] == "POST /api/v1/movements" and r["outcome"] == "ok"
               and ok["id"] in r["details"]]
    assert receipt and receipt[-1]["status"] == 201 and "operator" in receipt[-1]["roles"]
    refused = [r for r in rows if r["request_id"] == f"req-{uid}"]
    assert len(refused) == 1 and refused[0]["outcome"] == "failed" and refused[0]["status"] == 409
    assert '"insufficient-stock"' in refused[0]["details"]
    forbidden = [r for r in rows if r["target"] == f"/api/v1/parties/X-{uid}"]
    assert len(forbidden) == 1 and forbidden[0]["outcome"] == "denied" and forbidden[0]["status"] == 403

    listed = await client.get("/api/v1/audit-events", params={"target": f"/api/v1/parties/X-{uid}"}, headers=auditor)
    assert listed.status_code == 200 and [e["outcome"] for e in listed.json()["items"]] == ["denied"]
    assert listed.json()["items"][0]["chain_seq"] is not None  # sealed before it was shown


async def test_concurrent_writers_make_one_unbroken_chain(make_database, settings):
    """40 clients write at once through a real server process; the sealed chain has no fork and no gap."""
    url = make_database()
    async with running_server(url) as (base, admin_token):
        headers = {"Authorization": f"Bearer {admin_token}"}

        async def put(i: int) -> int:
            async with httpx.AsyncClient(base_url=base, timeout=30) as c:
                r = await c.put(f"/api/v1/regions/CONC-{i}", headers=headers, json={"name": f"Region {i}"})
                return r.status_code

        statuses = await asyncio.gather(*(put(i) for i in range(40)))
        assert statuses == [201] * 40
    result = verify_cli(url)
    assert result.returncode == 0, result.stdout + result.stderr
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        seqs = [r["chain_seq"] for r in await conn.fetch("SELECT chain_seq FROM audit_events ORDER BY chain_seq")]
        region_events = await conn.fetchval("SELECT count(*) FROM audit_events WHERE target LIKE '/api/v1/regions/CONC-%'")
    finally:
        await conn.close()
    assert seqs == list(range(1, len(seqs) + 1))
    assert region_events == 40


async def _tampered(make_database, client_for, sql: str) -> tuple[subprocess.CompletedProcess, dict[int, int], int]:
    url = make_database()
    async with client_for(url) as c:
        for i in range(5):
            r = await c.put(f"/api/v1/regions/T-{i}", json={"name": f"T{i}"})
            assert r.status_code == 201
    first = verify_cli(url)
    assert first.returncode == 0, first.stdout
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        ids = {r["chain_seq"]: r["id"] for r in await conn.fetch("SELECT id, chain_seq FROM audit_events")}
        # An attacker with database rights switches the append-only triggers off first.
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(sql)
        newest = await conn.fetchval("SELECT max(id) FROM audit_events")
    finally:
        await conn.close()
    return verify_cli(url), ids, newest


@pytest.fixture
def client_for(settings, make_token):
    from contextlib import asynccontextmanager

    from litestar.testing import AsyncTestClient

    from stockpile.api.app import create_app
    from stockpile.store import tokens

    @asynccontextmanager
    async def make(url: str):
        dsn, kwargs = asyncpg_dsn(url)
        conn = await asyncpg.connect(dsn, **kwargs)
        try:
            pid = await tokens.upsert_principal(conn, "tamper-admin", ["admin"], None)
            token = await tokens.issue_token(conn, pid, "t")
        finally:
            await conn.close()
        async with AsyncTestClient(app=create_app(settings, url)) as c:
            c.headers["Authorization"] = f"Bearer {token}"
            yield c

    return make


@pytest.mark.parametrize(("change", "sql", "named_seq"), [
    ("altered", "UPDATE audit_events SET actor = 'someone-else' WHERE chain_seq = 3", 3),
    ("removed", "DELETE FROM audit_events WHERE chain_seq = 2", 3),
    ("inserted", """INSERT INTO audit_events (at, actor, action, outcome, content_hash, chain_seq, prev_hash, chain_hash)
                    SELECT at, actor, action, outcome, content_hash, 99, prev_hash, chain_hash FROM audit_events
                     WHERE chain_seq = 4""", None),
])
async def test_verify_names_the_first_tampered_event(make_database, client_for, change, sql, named_seq):
    result, ids, newest = await _tampered(make_database, client_for, sql)
    assert result.returncode == 1, result.stdout
    named = int(result.stdout.split("BROKEN at event ")[1].split(":")[0])
    assert named == (ids[named_seq] if named_seq else newest)
    assert change in result.stdout


async def test_the_audit_log_refuses_updates_and_deletes(pg_pool):
    await pg_pool.execute("SELECT 1")
    async with pg_pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE audit_events SET actor = 'x' WHERE id = (SELECT min(id) FROM audit_events)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_events WHERE id = (SELECT min(id) FROM audit_events)")


async def test_cli_token_revoke_stops_the_token_and_is_audited(make_database):
    from stockpile.store import tokens

    url = make_database()
    env = {**os.environ, "DATABASE_URL": url}
    made = subprocess.run([sys.executable, "-m", "stockpile", "token", "create", "--name", "cli-probe", "--role", "auditor"],
                          env=env, capture_output=True, text=True, timeout=120)
    token = made.stdout.strip().splitlines()[-1]
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        assert (await tokens.principal_for_token(conn, token)).roles == frozenset({"auditor"})
        revoked = subprocess.run([sys.executable, "-m", "stockpile", "token", "revoke", "--name", "cli-probe"],
                                 env=env, capture_output=True, text=True, timeout=120)
        assert revoked.returncode == 0 and "revoked 1" in revoked.stdout
        assert await tokens.principal_for_token(conn, token) is None
        actions = [r["action"] for r in await conn.fetch("SELECT action FROM audit_events ORDER BY id")]
    finally:
        await conn.close()
    assert actions == ["cli token create", "cli token revoke"]
