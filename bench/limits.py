"""What the shared request limits cost: the same server with the limits on and off, in one run.

    .venv/bin/python bench/limits.py [--database-url postgresql://root@127.0.0.1:5432/postgres]
                                     [--requests 3000] [--clients 16] [--rounds 5]

Builds a throwaway database (migrations, one auditor token), then:
- end to end: a uvicorn process (`stockpile.api.app:app_from_env`, one worker) serving
  `GET /api/v1/regions?limit=1` to ``--clients`` concurrent keep-alive clients, ``--requests`` per
  round, alternately with every request limit off (`STOCKPILE_RATE_LIMIT_PER_SECOND=0`: the anchor)
  and on (per token and per address, set high enough that nothing is refused, so every request pays
  the full path: address limit, failure budget check, principal limit, and the reconciliation with
  PostgreSQL every 100 ms); requests/s of each (best of ``--rounds``) and the API process's CPU
  time per request (median), each as on/off;
- in process: the local decision (`SharedLimiter.admit`) in µs per call over 1,000 keys, the limits'
  whole work on one request's path (client address, address limit, failure budget, principal
  limit) in µs — the figure that holds on a machine shared with other work — and one
  reconciliation round (`RequestLimits.reconcile`: 1,000 principals' and 1,000 addresses' counts
  added and read back in one statement) in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.coverage import throwaway_database  # noqa: E402
from stockpile.api.auth import RequestLimits, SharedLimiter  # noqa: E402
from stockpile.config import Settings  # noqa: E402
from stockpile.domain.limits import Limit  # noqa: E402
from stockpile.store import tokens  # noqa: E402
from stockpile.store.db import Database  # noqa: E402
from stockpile.store.engine import asyncpg_dsn, plain_url  # noqa: E402
from tests.live import free_port  # noqa: E402

HIGH = "1000000000"


async def make_token(url: str) -> str:
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        principal_id = await tokens.upsert_principal(conn, "bench-auditor", ["auditor"], None)
        return await tokens.issue_token(conn, principal_id, "limits bench")
    finally:
        await conn.close()


def start_server(url: str, limits_on: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    limits = {"STOCKPILE_RATE_LIMIT_PER_SECOND": HIGH, "STOCKPILE_RATE_LIMIT_BURST": HIGH,
              "STOCKPILE_ADDRESS_RATE_LIMIT_PER_SECOND": HIGH, "STOCKPILE_ADDRESS_RATE_LIMIT_BURST": HIGH} \
        if limits_on else {"STOCKPILE_RATE_LIMIT_PER_SECOND": "0"}
    env = {**os.environ, "DATABASE_URL": plain_url(url), **limits}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "stockpile.api.app:app_from_env", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("server not ready in 30 s")


async def drive(base: str, token: str, requests: int, clients: int) -> float:
    """Requests/s of ``clients`` concurrent clients sending ``requests`` in all (every answer must be 200)."""
    headers = {"Authorization": f"Bearer {token}"}
    left = requests

    async def client() -> None:
        nonlocal left
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as c:
            await c.get("/api/v1/regions", params={"limit": 1})  # connection up before the clock starts
            await ready.wait()
            while left > 0:
                left -= 1
                r = await c.get("/api/v1/regions", params={"limit": 1})
                if r.status_code != 200:
                    raise RuntimeError(f"{r.status_code}: {r.text}")

    ready = asyncio.Event()
    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await asyncio.sleep(0.5)
    started = time.perf_counter()
    ready.set()
    await asyncio.gather(*tasks)
    return requests / (time.perf_counter() - started)


def end_to_end(url: str, token: str, args) -> dict:
    """Best requests/s and median API CPU µs per request of each mode; the CPU figure holds on a
    machine shared with other work, the throughput does not."""
    runs: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            process, base = start_server(url, limits_on=mode == "on")
            try:
                asyncio.run(drive(base, token, args.requests // 5, args.clients))  # warm-up
                api = psutil.Process(process.pid)
                before = sum(api.cpu_times()[:2])
                runs[mode].append(asyncio.run(drive(base, token, args.requests, args.clients)))
                cpu[mode].append((sum(api.cpu_times()[:2]) - before) / args.requests * 1e6)
            finally:
                process.terminate()
                process.wait(timeout=20)
    return {mode: max(values) for mode, values in runs.items()} | {
        "runs": runs, "cpu_us": {mode: statistics.median(values) for mode, values in cpu.items()}, "cpu_runs": cpu}


def local_decision_us(calls: int = 200_000, keys: int = 1000) -> float:
    limiter = SharedLimiter("p:", Limit(10**9, 2.0))
    names = [str(i) for i in range(keys)]
    now = time.time()
    started = time.perf_counter()
    for i in range(calls):
        limiter.admit(names[i % keys], now)
    return (time.perf_counter() - started) / calls * 1e6


def request_path_us(calls: int = 100_000, clients: int = 100) -> float:
    """The limits' whole work on one request's path, in µs: the client address, the address limit,
    the failure budget's check and the principal limit (what `authenticate_bearer` adds to a lookup)."""
    limits = RequestLimits(Database("postgresql://unused@localhost/unused"),
                           Settings(rate_limit_per_second=float(HIGH), rate_limit_burst=int(HIGH),
                                    address_rate_limit_per_second=float(HIGH), address_rate_limit_burst=int(HIGH)))
    scopes = [{"type": "http", "client": (f"10.1.0.{i}", 5000), "headers": [], "state": {}} for i in range(clients)]
    started = time.perf_counter()
    for i in range(calls):
        scope = scopes[i % clients]
        scope["state"] = {}
        address = limits.client_address(scope)
        assert limits.address.admit(address) is None
        assert limits.failures.wait(address) is None
        assert limits.principal.admit(str(i % clients)) is None
    return (time.perf_counter() - started) / calls * 1e6


async def reconcile_ms(url: str, rounds: int = 50, keys: int = 1000) -> float:
    db = Database(plain_url(url), pool_size=2)
    limits = RequestLimits(db, Settings(rate_limit_per_second=float(HIGH), rate_limit_burst=int(HIGH)))
    times = []
    try:
        for _ in range(rounds):
            for i in range(keys):
                limits.principal.count(str(i))
                limits.address.count(f"10.0.{i // 250}.{i % 250}")
            started = time.perf_counter()
            await limits.reconcile()
            times.append(time.perf_counter() - started)
    finally:
        await db.dispose()
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgresql://root@127.0.0.1:5432/postgres"))
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with throwaway_database(args.database_url, "stockpile_bench_limits") as url:
        token = asyncio.run(make_token(url))
        e2e = end_to_end(url, token, args)
        decision = local_decision_us()
        path = request_path_us()
        round_ms = asyncio.run(reconcile_ms(url))
    print(f"end to end, {args.clients} clients, best of {args.rounds} x {args.requests} requests:")
    print(f"  limits off (anchor)  {e2e['off']:8.0f} requests/s   runs {[round(x) for x in e2e['runs']['off']]}")
    print(f"  limits on            {e2e['on']:8.0f} requests/s   runs {[round(x) for x in e2e['runs']['on']]}")
    print(f"  on / off             {e2e['on'] / e2e['off']:8.3f}")
    print(f"  API CPU per request  off {e2e['cpu_us']['off']:.0f} µs, on {e2e['cpu_us']['on']:.0f} µs "
          f"(median of {args.rounds}): on / off {e2e['cpu_us']['on'] / e2e['cpu_us']['off']:.3f}, "
          f"+{e2e['cpu_us']['on'] - e2e['cpu_us']['off']:.0f} µs")
    print(f"    runs off {[round(x) for x in e2e['cpu_runs']['off']]}, on {[round(x) for x in e2e['cpu_runs']['on']]}")
    print(f"local decision (SharedLimiter.admit, 1,000 keys): {decision:.2f} µs per call")
    print(f"the limits' whole work on a request's path (client address, address limit, failure budget, "
          f"principal limit): {path:.2f} µs per request")
    print(f"reconciliation round (1,000 principals + 1,000 addresses, one statement): {round_ms:.2f} ms "
          f"(every 100 ms per process, off the request path)")


if __name__ == "__main__":
    main()
