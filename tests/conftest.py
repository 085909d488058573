"""Test harness: a real PostgreSQL database built by the Alembic migrations.

``TEST_DATABASE_URL`` points at a server to use (CI: the machine's PostgreSQL); without it an
embedded server (pgserver) is started in a temporary directory. Each test session creates its own
database and drops it at the end. Tests isolate themselves by using unique codes (``uid``).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

from stockpile.config import Settings
from stockpile.store.engine import asyncpg_dsn, start_embedded, upgrade, with_database


def _server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    data_dir = Path(os.environ.get("STOCKPILE_TEST_DATA_DIR", Path(tempfile.gettempdir()) / "stockpile-test-pg"))
    return start_embedded(data_dir)


async def _admin(url: str, sql: str) -> None:
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url()


@pytest.fixture(scope="session")
def make_database(server_url):
    """Create a fresh database built by the migrations (``migrate=False``: an empty one); all are
    dropped at the end of the session."""
    import asyncio

    made: list[str] = []
    maintenance = with_database(server_url, "postgres")

    def create(migrate: bool) -> str:
        name = f"stockpile_test_{os.getpid()}_{secrets.token_hex(4)}"
        asyncio.run(_admin(maintenance, f'CREATE DATABASE "{name}"'))
        made.append(name)
        url = with_database(server_url, name)
        if migrate:
            upgrade(url)
        return url

    def make(migrate: bool = True) -> str:
        # In a thread of its own: callable from sync fixtures and from async tests alike.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(create, migrate).result()

    yield make
    for name in made:
        asyncio.run(_admin(maintenance, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(make_database) -> str:
    return make_database()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(database_url=None, metrics_public=False, token_cache_seconds=0, db_pool_size=40, rate_limit_per_second=0)


@pytest.fixture(scope="session")
async def pg_pool(database_url):
    dsn, kwargs = asyncpg_dsn(database_url)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8, **kwargs)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def client(database_url, settings):
    from litestar.testing import AsyncTestClient

    from stockpile.api.app import create_app

    app = create_app(settings, database_url)
    async with AsyncTestClient(app=app) as c:
        yield c


@pytest.fixture
def uid() -> str:
    """A short unique suffix so each test's master data is its own."""
    return uuid.uuid4().hex[:8].upper()


@pytest.fixture(scope="session")
def make_token(pg_pool):
    """Create a principal with roles (and optional grants/clearance) and return a bearer token."""
    from stockpile.store import tokens

    async def make(*roles: str, name: str | None = None, clearance: str | None = None,
                   warehouses: list[str] = (), regions: list[str] = ()) -> str:
        async with pg_pool.acquire() as conn, conn.transaction():
            principal_id = await tokens.upsert_principal(conn, name or f"test-{uuid.uuid4().hex[:10]}", list(roles), clearance)
            missing = await tokens.grant(conn, principal_id, list(warehouses), list(regions))
            assert not missing, missing
            return await tokens.issue_token(conn, principal_id, "test")

    return make


ROOT_REGION = "TEST-NATION"


@pytest.fixture(scope="session")
async def root_region(pg_pool) -> str:
    """The region every test world is created under (see tests/factories.make_world)."""
    await pg_pool.execute(
        "INSERT INTO regions (code, name) VALUES ($1, 'Test nation') ON CONFLICT (code) DO NOTHING", ROOT_REGION
    )
    return ROOT_REGION


@pytest.fixture(scope="session")
async def admin(make_token, root_region) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token('admin', clearance='military')}"}


@pytest.fixture(scope="session")
async def operator(make_token, root_region) -> dict[str, str]:
    """An operator cleared for military stock, scoped to every test world (the root region)."""
    return {"Authorization": f"Bearer {await make_token('operator', clearance='military', regions=[root_region])}"}


@pytest.fixture(scope="session")
async def auditor(make_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token('auditor')}"}


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}
