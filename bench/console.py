"""Server time per console page on the demo reserve.

    .venv/bin/python bench/console.py [--database-url URL] [--rounds 30]

Creates a database, loads the demo (``stockpile.demo.load_demo``, as ``./dev serve`` does), runs the
service (uvicorn, one worker, the default configuration but the request limits) and, signed in as
each demo role, requests every console page ``--rounds`` times in turn from one keep-alive client.
The time of a page is from its request sent to its last byte read on the loopback interface, so it
is the server's time plus a loopback round trip. The anchor, measured in the same run on the same
server: ``GET /api/v1/stock?warehouse=WH-N-04&limit=1000`` with the operator's token — the bare JSON
read the operator's warehouse page starts from. Prints median and p95 per page and each median as a
ratio to the anchor's; the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stockpile.demo import load_demo  # noqa: E402
from stockpile.store.engine import asyncpg_dsn, upgrade, with_database  # noqa: E402
from tests.live import free_port  # noqa: E402

PAGES = {
    "demo-operator": ["/console", "/console/warehouses/WH-N-04", "/console/warehouses/WH-N-04/lot?lot=LPG-2602-0071",
                      "/console/readiness"],
    "demo-planner": ["/console", "/console/coverage", "/console/allocation", "/console/drills", "/console/potential"],
    "demo-commander": ["/console/readiness", "/console/coverage"],
    "demo-auditor": ["/console/audit"],
    "demo-admin": ["/console/warehouses/WH-W-02", "/console/sensors/TEMP-W02-COLD"],
}
ANCHOR = "/api/v1/stock?warehouse=WH-N-04&limit=1000"


async def _admin(url: str, sql: str) -> None:
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _timed(client: httpx.Client, path: str, rounds: int, **kwargs) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        r = client.get(path, **kwargs)
        times.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 200, (path, r.status_code)
    return times


def _signed_in(base: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    form = client.get("/console/sign-in")
    csrf = re.search(r'name="_csrf" value="([^"]+)"', form.text).group(1)
    assert client.post("/console/sign-in", data={"_csrf": csrf, "token": token}).status_code in (200, 303)
    return client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgresql://root@127.0.0.1:5432/postgres"))
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    name = f"stockpile_bench_console_{secrets.token_hex(4)}"
    maintenance = with_database(args.database_url, "postgres")
    asyncio.run(_admin(maintenance, f'CREATE DATABASE "{name}"'))
    url = with_database(args.database_url, name)
    process = None
    try:
        upgrade(url)
        tokens = {n: t for _, n, t in asyncio.run(load_demo(url)).tokens}
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "stockpile.api.app:app_from_env", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            env={**os.environ, "DATABASE_URL": url, "STOCKPILE_RATE_LIMIT_PER_SECOND": "0"}, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=60,
                          headers={"Authorization": f"Bearer {tokens['demo-operator']}"}) as api:
            _timed(api, ANCHOR, 5)  # warm-up
            anchor = statistics.median(_timed(api, ANCHOR, args.rounds))
        print(f"anchor GET {ANCHOR}: median {anchor:.1f} ms ({args.rounds} rounds)")
        print(f"{'role':<16} {'page':<48} {'median ms':>10} {'p95 ms':>8} {'× anchor':>9}")
        for role, paths in PAGES.items():
            client = _signed_in(base, tokens[role])
            try:
                for path in paths:
                    _timed(client, path, 3)  # warm-up
                    times = sorted(_timed(client, path, args.rounds))
                    median, p95 = statistics.median(times), times[int(0.95 * (len(times) - 1))]
                    print(f"{role:<16} {path:<48} {median:>10.1f} {p95:>8.1f} {median / anchor:>9.2f}")
            finally:
                client.close()
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
        asyncio.run(_admin(maintenance, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
