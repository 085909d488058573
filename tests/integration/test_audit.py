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


AUDIT_KEY = "checkpoint-key-" + "0123456789abcdef" * 2


def verify_cli(url: str, *args: str, key: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "STOCKPILE_AUDIT_KEY"}
    env.update({"DATABASE_URL": url, **({"STOCKPILE_AUDIT_KEY": key} if key else {})})
    return subprocess.run([sys.executable, "-m", "stockpile", "audit", "verify", *args], env=env, capture_output=True,
                          text=True, timeout=120)


async def test_writes_failures_and_denials_are_recorded_with_who_what_and_outcome(client, admin, operator, auditor, uid, pg_pool,
                                                                                 make_token):
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
    # A denial is counted per (minute, principal, route, status), not recorded as an event.
    assert not [r for r in rows if r["target"] == f"/api/v1/parties/X-{uid}"]

    cleared_auditor = {"Authorization": f"Bearer {await make_token('auditor', clearance='military')}"}
    denials = await client.get("/api/v1/audit-denials", params={"limit": 1000}, headers=cleared_auditor)
    assert [(d["actor_kind"], d["status"]) for d in denials.json()["items"]
            if d["action"] == "PUT /api/v1/parties/{code}"][:1] == [("principal", 403)]
    listed = await client.get("/api/v1/audit-events", params={"action": "POST /api/v1/movements", "limit": 1000},
                              headers=cleared_auditor)
    shown = [e for e in listed.json()["items"] if e["request_id"] == f"req-{uid}"]
    assert listed.status_code == 200 and [e["outcome"] for e in shown] == ["failed"]
    assert shown[0]["chain_seq"] is not None  # sealed before it was shown


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


# --- checkpoints: cutting off the end of the chain ------------------------------------------------


async def _owner(url: str, *statements: str) -> list[asyncpg.Record]:
    """Run SQL as the database's owner would; the last statement's rows are returned."""
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        rows: list[asyncpg.Record] = []
        for sql in statements:
            rows = await conn.fetch(sql)
        return rows
    finally:
        await conn.close()


async def _record(url: str, n: int, *, actor: str = "auditee") -> None:
    """``n`` events, committed and not yet sealed (as requests leave them)."""
    from datetime import datetime, timezone

    from stockpile.store import audit as audit_store

    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        async with conn.transaction():
            for i in range(n):
                await audit_store.append(conn, at=datetime.now(timezone.utc), actor=actor, roles=["admin"],
                                         action="PUT /api/v1/regions/{code}", target=f"/api/v1/regions/R-{i}",
                                         outcome="ok", status=201, client="127.0.0.1", request_id=None, details={"i": i})
    finally:
        await conn.close()


async def _two_rounds(url: str, *args: str, key: str | None = AUDIT_KEY) -> None:
    """Three events sealed by one verification, two more by the next: checkpoints #1 (position 3) and #2 (5)."""
    for n in (3, 2):
        await _record(url, n)
        result = verify_cli(url, *args, key=key)
        assert result.returncode == 0, result.stdout + result.stderr


CUT_TAIL = ("ALTER TABLE audit_events DISABLE TRIGGER USER",
            "DELETE FROM audit_events WHERE chain_seq > 3",
            "ALTER TABLE audit_events ENABLE TRIGGER USER")
CUT_CHECKPOINTS = ("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER",
                   "DELETE FROM audit_checkpoints WHERE chain_seq > 3",
                   "ALTER TABLE audit_checkpoints ENABLE TRIGGER USER")


async def test_each_sealing_round_writes_a_signed_checkpoint_of_the_head(make_database):
    url = make_database()
    await _two_rounds(url)
    rows = await _owner(url, "SELECT counter, chain_seq, head_hash, hmac FROM audit_checkpoints ORDER BY counter")
    heads = await _owner(url, "SELECT chain_seq, chain_hash FROM audit_events WHERE chain_seq IN (3, 5) ORDER BY chain_seq")
    assert [(r["counter"], r["chain_seq"]) for r in rows] == [(1, 3), (2, 5)]
    assert [bytes(r["head_hash"]) for r in rows] == [bytes(h["chain_hash"]) for h in heads]
    assert all(r["hmac"] is not None and len(r["hmac"]) == 32 for r in rows)
    again = verify_cli(url, key=AUDIT_KEY)  # nothing new sealed: no new checkpoint
    assert again.returncode == 0 and "checkpoints: 2, 2 signed and verified" in again.stdout
    assert f"latest checkpoint: #2 chain_seq 5 head {bytes(rows[1]['head_hash']).hex()}" in again.stdout
    assert (await _owner(url, "SELECT count(*) AS n FROM audit_checkpoints"))[0]["n"] == 2


async def test_removing_the_newest_events_is_detected_by_their_checkpoint(make_database):
    url = make_database()
    await _two_rounds(url)
    await _owner(url, *CUT_TAIL)
    result = verify_cli(url, key=AUDIT_KEY)
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("audit chain intact: 3 events")  # the shortened chain is consistent in itself
    assert "audit chain TRUNCATED: checkpoint #2" in result.stdout
    assert "records chain position 5" in result.stdout and "the chain ends at position 3" in result.stdout
    assert "the newest 2 sealed event(s) were removed" in result.stdout


async def test_removing_events_with_their_checkpoints_is_caught_only_by_an_anchor(make_database, tmp_path):
    url = make_database()
    anchor = tmp_path / "audit-anchor.json"
    await _two_rounds(url, "--anchor", str(anchor))
    kept = anchor.read_text()
    assert '"counter": 2' in kept and '"chain_seq": 5' in kept
    await _owner(url, *CUT_TAIL, *CUT_CHECKPOINTS)

    unanchored = verify_cli(url, key=AUDIT_KEY)
    assert unanchored.returncode == 0  # nothing left in the database contradicts the cut…
    assert "latest checkpoint: #1 chain_seq 3" in unanchored.stdout  # …but the head it prints is not the anchored one
    anchored = verify_cli(url, "--anchor", str(anchor), key=AUDIT_KEY)
    assert anchored.returncode == 1
    assert "the anchored checkpoint #2 (chain position 5) is MISSING" in anchored.stdout
    assert "audit chain TRUNCATED: the anchor records chain position 5" in anchored.stdout
    assert anchor.read_text() == kept  # a failed verification does not move the anchor
    expected = verify_cli(url, "--expect-seq", "5", key=AUDIT_KEY)
    assert expected.returncode == 1 and "it ends at position 3, but at least 5 were expected" in expected.stdout


async def test_a_checkpoint_rewritten_by_the_database_owner_is_forged(make_database):
    url = make_database()
    await _two_rounds(url)
    await _owner(url, *CUT_TAIL, "ALTER TABLE audit_checkpoints DISABLE TRIGGER USER",
                 """UPDATE audit_checkpoints SET chain_seq = 3,
                           head_hash = (SELECT chain_hash FROM audit_events WHERE chain_seq = 3) WHERE counter = 2""")
    result = verify_cli(url, key=AUDIT_KEY)
    assert result.returncode == 1 and "checkpoint #2" in result.stdout and "FORGED" in result.stdout
    other_key = verify_cli(url, key="another-key-" + "f" * 32)
    assert other_key.returncode == 1 and "checkpoint #1" in other_key.stdout


async def test_without_a_key_checkpoints_are_unsigned_and_verify_warns(make_database):
    url = make_database()
    await _two_rounds(url, key=None)
    assert [r["hmac"] for r in await _owner(url, "SELECT hmac FROM audit_checkpoints")] == [None, None]
    await _owner(url, *CUT_TAIL)
    result = verify_cli(url)
    assert result.returncode == 1 and "TRUNCATED: checkpoint #2" in result.stdout  # a surviving checkpoint still tells
    assert "WARNING: STOCKPILE_AUDIT_KEY is not set: checkpoint signatures are NOT checked" in result.stderr


async def test_checkpoints_are_append_only_and_gapless(make_database):
    url = make_database()
    await _two_rounds(url)
    for sql in ("UPDATE audit_checkpoints SET chain_seq = 4 WHERE counter = 2",
                "DELETE FROM audit_checkpoints WHERE counter = 2", "TRUNCATE audit_checkpoints"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _owner(url, sql)
    for counter, seq in ((4, 9), (3, 5)):  # a gap in the counter; a position not beyond the last one
        with pytest.raises(asyncpg.CheckViolationError):
            await _owner(url, f"INSERT INTO audit_checkpoints VALUES ({counter}, {seq}, '\\x{'00' * 32}', now(), NULL)")


# --- need-to-know ---------------------------------------------------------------------------------


async def test_a_restricted_flag_never_changes(make_database):
    url = make_database()
    await _record(url, 1)
    for sql in ("UPDATE audit_events SET restricted = true",
                "UPDATE audit_events SET restricted = true, chain_seq = 1, prev_hash = '\\x00', chain_hash = '\\x00'"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _owner(url, sql)


async def test_a_handler_flags_its_event_restricted(database_url, pg_pool, uid):
    from types import SimpleNamespace

    from stockpile.api.audit import write_transaction
    from stockpile.store.db import Database

    uncleared = SimpleNamespace(name=f"flagger-{uid}", roles=frozenset({"admin"}), clearance=None)
    db = Database(database_url, pool_size=1)
    try:
        for flagged in (False, True):
            request = SimpleNamespace(user=uncleared, url=SimpleNamespace(path=f"/api/v1/things/T-{flagged}"),
                                      scope={"method": "PUT", "path": "/x", "path_template": "/api/v1/things/{code}",
                                             "headers": []})
            async with write_transaction(request, db) as (_, note):
                note.restricted = flagged
    finally:
        await db.dispose()
    rows = await pg_pool.fetch("SELECT target, restricted FROM audit_events WHERE actor = $1 ORDER BY id", f"flagger-{uid}")
    assert [(r["target"], r["restricted"]) for r in rows] == [("/api/v1/things/T-False", False),
                                                              ("/api/v1/things/T-True", True)]


async def test_an_uncleared_target_filter_matches_only_the_target_it_would_be_shown(pg_pool, uid):
    """A refused action that is not an HTTP route (a job's, the command line's) is shown with no
    target to an uncleared reader, so filtering by a guess of its words must not find it."""
    from datetime import datetime, timezone

    from stockpile.store import audit as audit_store

    actor = f"job-{uid}"
    async with pg_pool.acquire() as conn:
        await audit_store.append(conn, at=datetime.now(timezone.utc), actor=actor, roles=[], action=f"job probe-{uid}",
                                 target=None, outcome="failed", status=None, client=None, request_id=None, details={})
        uncleared = await audit_store.events(since=None, until=None, actor=actor, target=f"probe-{uid}", action=None,
                                             before_id=None, limit=10, reader_cleared=False).fetch(conn)
        everyone = await audit_store.events(since=None, until=None, actor=actor, target=None, action=None,
                                            before_id=None, limit=10, reader_cleared=False).fetch(conn)
    assert uncleared == [] and len(everyone) == 1


async def test_uncleared_readers_learn_who_acted_but_not_on_what_military_paths(client, make_token, uid, pg_pool):
    cleared_admin = {"Authorization": f"Bearer {await make_token('admin', name=f'cmdr-{uid}', clearance='military')}"}
    plain_admin = {"Authorization": f"Bearer {await make_token('admin', name=f'plain-{uid}')}"}
    uncleared_auditor = {"Authorization": f"Bearer {await make_token('auditor')}"}
    cleared_auditor = {"Authorization": f"Bearer {await make_token('auditor', clearance='military')}"}
    secret = f"/api/v1/regions/MIL-{uid}"
    assert (await client.put(secret, headers=cleared_admin, json={"name": "Covert depot region"})).status_code == 201
    guessed = f"/api/v1/warehouses/MIL-GUESS-{uid}"
    assert (await client.put(guessed, headers=plain_admin, json={"name": 1})).status_code == 422
    plain = f"/api/v1/regions/CIV-{uid}"
    assert (await client.put(plain, headers=plain_admin, json={"name": "Civil region"})).status_code == 201

    async def listed(headers, **params):
        r = await client.get("/api/v1/audit-events", headers=headers, params=params)
        assert r.status_code == 200, r.text
        return r.json()["items"]

    [hidden] = await listed(uncleared_auditor, actor=f"cmdr-{uid}")
    assert hidden["restricted"] is True and hidden["target"] is None and hidden["details"] is None
    assert hidden["client"] is None and hidden["content_hash"] is None and hidden["chain_hash"] is None
    assert (hidden["actor"], hidden["action"], hidden["outcome"], hidden["status"]) == \
        (f"cmdr-{uid}", "PUT /api/v1/regions/{code}", "ok", 201)
    assert "admin" in hidden["roles"] and hidden["request_id"] and hidden["at"]
    shown, failed = await listed(uncleared_auditor, actor=f"plain-{uid}")  # newest first
    assert (shown["target"], shown["restricted"], shown["content_hash"] is not None) == (plain, False, True)
    assert (failed["outcome"], failed["status"], failed["target"]) == ("failed", 422, "/api/v1/warehouses/{code}")
    # Filtering by a hidden path answers nothing, so it cannot confirm a guess…
    assert await listed(uncleared_auditor, target=secret) == []
    assert await listed(uncleared_auditor, target=guessed) == []
    assert [e["id"] for e in await listed(uncleared_auditor, target="/api/v1/warehouses/")] == [failed["id"]]
    # …and nothing military shows anywhere in what the uncleared reader gets.
    everything = await client.get("/api/v1/audit-events", headers=uncleared_auditor, params={"limit": 1000})
    assert f"MIL-{uid}" not in everything.text and f"MIL-GUESS-{uid}" not in everything.text
    # A cleared reader sees it all.
    [whole] = await listed(cleared_auditor, target=secret)
    assert whole["id"] == hidden["id"] and whole["target"] == secret and whole["chain_hash"]
    assert [e["target"] for e in await listed(cleared_auditor, target=guessed)] == [guessed]


async def test_events_sealed_before_the_upgrade_keep_verifying_and_gain_their_flag(server_url, tmp_path):
    """A trail from before revision 0014 (chain version 1, no flag) verifies after the upgrade; the
    events of a cleared actor come out restricted; new events are sealed as chain version 2."""
    import secrets
    from datetime import datetime, timezone

    from stockpile.domain import audit as rules
    from stockpile.store import audit as audit_store
    from stockpile.store.engine import upgrade, with_database

    name = f"stockpile_test_upgrade_{secrets.token_hex(4)}"
    maintenance = with_database(server_url, "postgres")
    await _owner(maintenance, f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    try:
        await asyncio.to_thread(upgrade, url, "0013")
        dsn, kwargs = asyncpg_dsn(url)
        conn = await asyncpg.connect(dsn, **kwargs)
        try:
            await conn.execute("INSERT INTO principals (name, roles, clearance) VALUES ('cmdr', '{commander}', 'military')")
            for actor in ("cmdr", "plain", "cmdr"):
                values = audit_store.event_values(at=datetime.now(timezone.utc), actor=actor, roles=["admin"],
                                                  action="PUT /x/{code}", target="/x/SECRET", outcome="ok", status=200,
                                                  client=None, request_id=None, details={})
                await conn.execute(f"INSERT INTO audit_events ({audit_store.CONTENT_COLUMNS}, content_hash) VALUES "
                                   "($1, $2, $3::text[], $4, $5, $6, $7, $8, $9, $10::jsonb, $11)", *values)
            prev = rules.GENESIS  # sealed as the code before 0014 did: the first two only
            for seq, row in enumerate(await conn.fetch("SELECT id, content_hash FROM audit_events ORDER BY id LIMIT 2"), 1):
                link = rules.chain_hash(prev, bytes(row["content_hash"]))
                await conn.execute("UPDATE audit_events SET chain_seq = $2, prev_hash = $3, chain_hash = $4 WHERE id = $1",
                                   row["id"], seq, prev, link)
                prev = link
        finally:
            await conn.close()
        await asyncio.to_thread(upgrade, url, "head")
        await _record(url, 1, actor="cmdr")
        result = verify_cli(url, key=AUDIT_KEY)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("audit chain intact: 4 events") and "latest checkpoint: #1 chain_seq 4" in result.stdout
        rows = await _owner(url, "SELECT actor, restricted, chain_version FROM audit_events ORDER BY chain_seq")
        assert [(r["actor"], r["restricted"], r["chain_version"]) for r in rows] == [
            ("cmdr", True, 1), ("plain", False, 1), ("cmdr", True, 1), ("cmdr", True, 2)]
    finally:
        await _owner(maintenance, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
