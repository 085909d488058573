"""The service as clients meet it: the demo reserve after a worker's first round (alerts evaluated,
rotation planned) and a planner's and a commander's first steps (a request, its plan, a drill, a
readiness declaration, a surveyed capacity and the tasking order of an approved plan), served by uvicorn on a free local port, and a token that holds every role
(cleared for military stock), so every operation can be reached."""

from __future__ import annotations

import datetime

import asyncpg
import httpx
import pytest

from stockpile.config import Settings
from stockpile.demo import load_demo
from stockpile.jobs.catalog import catalog
from stockpile.jobs.runs import run_slot
from stockpile.store import tokens
from stockpile.store.db import Database
from stockpile.store.engine import asyncpg_dsn
from tests.live import running_server

EVERY_ROLE = ["admin", "operator", "planner", "commander", "auditor"]


async def token_with_every_role(url: str, name: str) -> str:
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        principal_id = await tokens.upsert_principal(conn, name, EVERY_ROLE, "military")
        return await tokens.issue_token(conn, principal_id, "contract tests")
    finally:
        await conn.close()


async def worker_round(url: str) -> None:
    jobs, db = catalog(Settings(database_url=url)), Database(url, pool_size=2)
    try:
        for name in ("evaluate-alerts", "plan-rotation"):
            assert (await run_slot(db, jobs[name], slot=-1)).outcome == "ok"
    finally:
        await db.dispose()


async def first_steps(base: str, headers: dict[str, str]) -> None:
    needed_by = (datetime.date.today() + datetime.timedelta(days=20)).isoformat()
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        filed = await http.post("/api/v1/allocation-requests", json={
            "requester": "CIV-RES-BUREAU", "destination": "WH-N-01", "material": "DIESEL-0", "quantity": "100",
            "priority": "routine", "needed_by": needed_by, "purpose": "contract tests"})
        assert filed.status_code == 201, filed.text
        planned = await http.post("/api/v1/allocation-plans", json={"request_ids": [filed.json()["id"]]})
        assert planned.status_code == 201, planned.text
        drilled = await http.post("/api/v1/drills", json={"name": "contract tests", "include_pending": True})
        assert drilled.status_code == 201, drilled.text
        declared = await http.post("/api/v1/readiness/declarations", json={
            "region": "DST-NORTHPORT", "level": "emergency", "reason": "contract tests"})
        assert declared.status_code == 201, declared.text
        # a refinery's capacity, and a flash request beyond the stock that an approved plan tasks it for
        surveyed = await http.put("/api/v1/capacities/CAP-CONTRACT", json={
            "party": "ENT-VALTA-ENERGY", "material": "DIESEL-0", "daily_quantity": "100000", "lead_days": 2,
            "region": "DST-NORTHPORT", "surveyed_on": datetime.date.today().isoformat(), "survey_interval_days": 365})
        assert surveyed.status_code == 201, surveyed.text
        short = await http.post("/api/v1/allocation-requests", json={
            "requester": "CIV-RES-BUREAU", "destination": "WH-N-01", "material": "DIESEL-0", "quantity": "100000000",
            "priority": "flash", "needed_by": needed_by, "purpose": "contract tests: beyond the stock"})
        assert short.status_code == 201, short.text
        tasked = await http.post("/api/v1/allocation-plans", json={"request_ids": [short.json()["id"]]})
        assert tasked.status_code == 201, tasked.text
        assert "tasking" in {line["kind"] for line in tasked.json()["lines"]}, tasked.text
        approved = await http.post(f"/api/v1/allocation-plans/{tasked.json()['id']}/approve")
        assert approved.status_code == 200, approved.text


@pytest.fixture(scope="package")
async def demo_service(make_database):
    """(base URL, bearer headers) of a live server on a database holding the demo reserve."""
    url = make_database()
    await load_demo(url, seed=7)
    await worker_round(url)
    headers = {"Authorization": f"Bearer {await token_with_every_role(url, 'contract-tester')}"}
    # The failure budget per address would turn the fuzzer's many refused requests into 429s.
    async with running_server(url, STOCKPILE_ADDRESS_FAILURE_LIMIT_PER_MINUTE="100000000") as (base, _):
        await first_steps(base, headers)
        yield base, headers
