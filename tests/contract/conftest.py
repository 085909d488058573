"""The service as clients meet it: the demo reserve, served by uvicorn on a free local port, and a
token that holds every role (cleared for military stock), so every operation can be reached."""

from __future__ import annotations

import asyncpg
import pytest

from stockpile.demo import load_demo
from stockpile.store import tokens
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


@pytest.fixture(scope="package")
async def demo_service(make_database):
    """(base URL, bearer headers) of a live server on a database holding the demo reserve."""
    url = make_database()
    await load_demo(url, seed=7)
    headers = {"Authorization": f"Bearer {await token_with_every_role(url, 'contract-tester')}"}
    # The failure budget per address would turn the fuzzer's many refused requests into 429s.
    async with running_server(url, STOCKPILE_ADDRESS_FAILURE_LIMIT_PER_MINUTE="100000000") as (base, _):
        yield base, headers
