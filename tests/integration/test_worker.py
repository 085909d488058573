"""The worker: each (job, slot) runs once across replicas, a dead worker's slot is taken over, and
the jobs do what they say — through `stockpile job run` and real `stockpile worker` processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid

import asyncpg

from stockpile.config import Settings
from stockpile.jobs.catalog import catalog
from stockpile.jobs.runs import Job, run_slot
from stockpile.store.db import Database
from stockpile.store.engine import asyncpg_dsn
from tests.factories import make_world, receive


def cli(url: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stockpile", *args], env={**os.environ, "DATABASE_URL": url, **env},
                          capture_output=True, text=True, timeout=120)


async def _connect(url: str) -> asyncpg.Connection:
    dsn, kwargs = asyncpg_dsn(url)
    return await asyncpg.connect(dsn, **kwargs)


async def test_a_slot_claimed_by_many_workers_runs_once(database_url):
    job = catalog(Settings())["seal-audit"]
    dbs = [Database(database_url, pool_size=2) for _ in range(6)]
    try:
        outcomes = await asyncio.gather(*(run_slot(db, job, slot=-123456, worker=f"w{i}") for i, db in enumerate(dbs)))
    finally:
        for db in dbs:
            await db.dispose()
    assert sum(o.ran for o in outcomes) == 1
    assert [o.outcome for o in outcomes if o.ran] == ["ok"]


async def test_a_dead_workers_slot_is_taken_over_after_its_lease(database_url):
    job = catalog(Settings())["seal-audit"]
    conn = await _connect(database_url)
    try:
        await conn.execute("""INSERT INTO job_runs (job, slot, claimed_by, lease_until)
                              VALUES ('seal-audit', -777, 'crashed', now() - interval '1 second')""")
        await conn.execute("""INSERT INTO job_runs (job, slot, claimed_by, lease_until)
                              VALUES ('seal-audit', -778, 'busy', now() + interval '1 hour')""")
    finally:
        await conn.close()
    db = Database(database_url, pool_size=2)
    try:
        taken = await run_slot(db, job, slot=-777, worker="rescuer")
        busy = await run_slot(db, job, slot=-778, worker="rescuer")
    finally:
        await db.dispose()
    assert taken.ran and taken.outcome == "ok"
    assert not busy.ran


import pytest  # noqa: E402


@pytest.fixture
def client_for_url(settings):
    """Put one receipt into the database at ``url`` through the API; returns its lot id."""
    from litestar.testing import AsyncTestClient

    from stockpile.api.app import create_app
    from tests.live import make_admin_token

    async def make(url: str) -> str:
        token = await make_admin_token(url)
        async with AsyncTestClient(app=create_app(settings, url)) as c:
            c.headers["Authorization"] = f"Bearer {token}"
            assert (await c.put("/api/v1/regions/TEST-NATION", json={"name": "Test nation"})).status_code == 201
            w = await make_world(c, dict(c.headers), "JOB")
            moved = await receive(c, dict(c.headers), warehouse=w.north, material=w.diesel, owner=w.civil,
                                  quantity="10", lot="J")
        return moved["postings"][0]["account"]["lot_id"]

    return make


async def test_check_ledger_finds_a_balance_that_drifted_from_its_postings(make_database, client_for_url):
    url = make_database()
    clean = cli(url, "job", "run", "check-ledger")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout.split("\n", 1)[1])["mismatched"] == []
    lot = await client_for_url(url)
    conn = await _connect(url)
    try:
        await conn.execute("SET session_replication_role = replica")  # bypass the guard, as corruption would
        await conn.execute("UPDATE accounts SET balance = balance + 7 WHERE lot_id = $1::uuid", lot)
    finally:
        await conn.close()
    broken = cli(url, "job", "run", "check-ledger")
    found = json.loads(broken.stdout.split("\n", 1)[1])
    assert [m["lot_id"] for m in found["mismatched"]] == [lot]
    assert found["mismatched"][0]["balance"] - found["mismatched"][0]["postings"] == 7


async def test_two_worker_processes_run_each_slot_once(make_database):
    url = make_database()
    env = {**os.environ, "DATABASE_URL": url, "STOCKPILE_JOB_SEAL_AUDIT_SECONDS": "1", "STOCKPILE_WORKER_METRICS_PORT": "0"}
    workers = [subprocess.Popen([sys.executable, "-m", "stockpile", "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    try:
        conn = await _connect(url)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                done = await conn.fetchval("SELECT count(*) FROM job_runs WHERE job = 'seal-audit' AND outcome = 'ok'")
                if done >= 4:
                    break
                await asyncio.sleep(0.2)
        finally:
            await conn.close()
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            assert w.wait(timeout=20) == 0
    conn = await _connect(url)
    try:
        runs = await conn.fetch("SELECT slot, claimed_by, outcome FROM job_runs WHERE job = 'seal-audit'")
        audited = await conn.fetch("SELECT request_id, count(*) AS n FROM audit_events WHERE actor = 'job:seal-audit' "
                                   "GROUP BY request_id")
    finally:
        await conn.close()
    assert len(runs) >= 4 and {r["outcome"] for r in runs if r["outcome"]} == {"ok"}
    assert all(a["n"] == 1 for a in audited) and len(audited) == sum(r["outcome"] == "ok" for r in runs)
    verify = cli(url, "audit", "verify")
    assert verify.returncode == 0, verify.stdout


def _job(name: str, run, lease: float = 1.0) -> Job:
    """A job of its own with a day-long interval (the current slot lasts the whole test) and a short lease."""
    return Job(name, run, 86400, changes_state=False, lease=lease)


async def test_a_runner_that_dies_mid_run_is_taken_over_within_its_slot(database_url):
    started, ran_by = asyncio.Event(), []

    async def hangs(db):
        ran_by.append("first")
        started.set()
        await asyncio.Event().wait()  # never returns: the runner dies first

    async def completes(db):
        ran_by.append("second")
        return {"done": True}

    name = f"test-takeover-{uuid.uuid4().hex[:8]}"
    slot = _job(name, hangs).slot(time.time())
    first_db, second_db = Database(database_url, pool_size=2), Database(database_url, pool_size=2)
    try:
        first = asyncio.create_task(run_slot(first_db, _job(name, hangs), worker="first"))
        await started.wait()
        second = asyncio.create_task(run_slot(second_db, _job(name, completes), worker="second"))
        await asyncio.sleep(2.5)  # the first runner renews its lease: the second only watches
        assert ran_by == ["first"] and not second.done()
        first.cancel()  # the first runner dies: its heartbeat stops, its claim stays unfinished
        outcome = await asyncio.wait_for(second, timeout=30)
    finally:
        await first_db.dispose()
        await second_db.dispose()
    assert outcome.ran and outcome.outcome == "ok" and outcome.slot == slot
    assert ran_by == ["first", "second"]
    conn = await _connect(database_url)
    try:
        row = await conn.fetchrow("SELECT claimed_by, outcome FROM job_runs WHERE job = $1 AND slot = $2", name, slot)
    finally:
        await conn.close()
    assert dict(row) == {"claimed_by": "second", "outcome": "ok"}


async def test_a_slot_that_finished_is_not_run_again_by_a_watcher(database_url):
    runs = []

    async def slow(db):
        runs.append(1)
        await asyncio.sleep(2.5)  # longer than its lease: the heartbeat keeps the slot
        return {}

    job = _job(f"test-watch-{uuid.uuid4().hex[:8]}", slow)
    dbs = [Database(database_url, pool_size=2) for _ in range(2)]
    try:
        first = asyncio.create_task(run_slot(dbs[0], job, worker="first"))
        await asyncio.sleep(0.2)
        second = await run_slot(dbs[1], job, worker="second")
        done = await first
    finally:
        for db in dbs:
            await db.dispose()
    assert done.ran and not second.ran and runs == [1]


def test_every_replica_fires_at_the_start_of_the_same_slot():
    from stockpile.jobs.scheduler import first_slot_start

    a, b = first_slot_start(60, now=1_000_000_021.0), first_slot_start(60, now=1_000_000_079.9)
    assert a == b and int(a.timestamp() // 60) == int(1_000_000_021 // 60) + 1
