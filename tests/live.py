"""Run the service as production runs it: a uvicorn subprocess on a free local port."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from contextlib import asynccontextmanager

import asyncpg
import httpx

from stockpile.store import tokens
from stockpile.store.engine import asyncpg_dsn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def make_admin_token(url: str, name: str = "live-admin") -> str:
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        principal_id = await tokens.upsert_principal(conn, name, ["admin", "operator"], "military")
        return await tokens.issue_token(conn, principal_id, "live test")
    finally:
        await conn.close()


async def principal_token(url: str, name: str, roles: list[str], clearance: str | None, regions: list[str] = (),
                          purpose: str = "test") -> str:
    """A principal with ``roles``, ``clearance`` and ``regions`` granted, and a token of it, written
    straight into the database as the command line does."""
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        async with conn.transaction():
            principal_id = await tokens.upsert_principal(conn, name, roles, clearance)
            assert not await tokens.grant(conn, principal_id, [], list(regions))
            return await tokens.issue_token(conn, principal_id, purpose)
    finally:
        await conn.close()


@asynccontextmanager
async def running_server(url: str, **env: str):
    """Yield (base URL, admin+operator token) of a uvicorn process serving the database at ``url``."""
    port = free_port()
    token = await make_admin_token(url)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "stockpile.api.app:app_from_env", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env={**os.environ, "DATABASE_URL": url, "STOCKPILE_TOKEN_CACHE_SECONDS": "0",
             "STOCKPILE_RATE_LIMIT_PER_SECOND": "0", **env},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=2) as c:
            for _ in range(300):
                if process.poll() is not None:
                    raise RuntimeError(f"server exited with {process.returncode}")
                try:
                    if (await c.get("/health/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("server did not become ready in 30 s")
        yield base, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
