"""A long drill against a concurrent `GET /health/live`: does the solve stall the event loop?

    .venv/bin/python -m bench.solver_latency [--database-url postgresql://root@127.0.0.1:5432/postgres]
                                             [--requests 5000] [--root DIR]

Builds a throwaway database with the demo data, starts `stockpile serve` (one worker) on it, and
measures `GET /health/live` first alone (the anchor), then while one drill of ``--requests``
synthetic requests (every demo material, destinations across the country, every priority) is
planned. Prints the drill's own solve time and the health checks' median, 99th percentile and
worst latency during it. ``--root`` runs the server from another checkout of the code (e.g. one
that solves on the event loop) against the same schema.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.coverage import throwaway_database  # noqa: E402
from bench.harness import free_port  # noqa: E402
from stockpile.store.engine import asyncpg_dsn  # noqa: E402

PRIORITIES = ("flash", "immediate", "priority", "routine")


def stockpile(root: Path, url: str, *args: str, **kwargs) -> subprocess.Popen | subprocess.CompletedProcess:
    command = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(root)!r}); from stockpile.cli import main; "
               "sys.exit(main())", *args]
    env = {**os.environ, "DATABASE_URL": url, "STOCKPILE_LOG_LEVEL": "warning"}
    if root != ROOT:  # another checkout may not know this schema's newest migrations
        env["STOCKPILE_MIGRATE_ON_START"] = "false"
    if kwargs.pop("background", False):
        return subprocess.Popen(command, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, check=True, **kwargs)


async def scenario(url: str, n: int) -> dict:
    dsn, kwargs = asyncpg_dsn(url)
    pg = await asyncpg.connect(dsn, **kwargs)
    try:
        warehouses = [r["code"] for r in await pg.fetch("SELECT code FROM warehouses WHERE status = 'active' ORDER BY code")]
        materials = [r["code"] for r in await pg.fetch(
            "SELECT DISTINCT m.code FROM materials m JOIN lots l ON l.material_id = m.id ORDER BY m.code")]
        civilian = await pg.fetchval("SELECT code FROM parties WHERE sector = 'civilian' ORDER BY code LIMIT 1")
        regions = [r["code"] for r in await pg.fetch("SELECT code FROM regions WHERE parent_id IS NULL")]
    finally:
        await pg.close()
    needed_by = (date.today() + timedelta(days=14)).isoformat()
    requests = [{"requester": civilian, "destination": warehouses[i % len(warehouses)],
                 "material": materials[i % len(materials)], "quantity": str(50 + i % 400),
                 "priority": PRIORITIES[i % 4], "needed_by": needed_by} for i in range(n)]
    return {"name": "solver latency", "readiness": {code: "emergency" for code in regions}, "requests": requests}


async def probe(client: httpx.AsyncClient, stop: asyncio.Event, every: float = 0.01) -> list[float]:
    seen = []
    while not stop.is_set():
        started = time.perf_counter()
        r = await client.get("/health/live")
        assert r.status_code == 200
        seen.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(every)
    return seen


async def measure(base: str, token: str, body: dict) -> dict:
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        for _ in range(200):
            try:
                if (await client.get("/health/live")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        alone = []
        for _ in range(200):
            started = time.perf_counter()
            await client.get("/health/live")
            alone.append((time.perf_counter() - started) * 1000)
        stop = asyncio.Event()
        watcher = asyncio.create_task(probe(client, stop))
        started = time.perf_counter()
        r = await client.post("/api/v1/drills", json=body, headers={"Authorization": f"Bearer {token}"})
        drill_seconds = time.perf_counter() - started
        stop.set()
        during = await watcher
        assert r.status_code == 201, r.text[:500]
        report = r.json()

    def pct(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))]

    return {"drill_seconds": drill_seconds, "solve_ms": report["solver"]["solve_ms"],
            "build_ms": report["solver"]["build_ms"], "arcs": report["solver"]["arcs"],
            "alone_median_ms": statistics.median(alone), "alone_max_ms": max(alone),
            "during_probes": len(during), "during_median_ms": statistics.median(during),
            "during_p99_ms": pct(during, 0.99), "during_max_ms": max(during)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", "postgresql://root@127.0.0.1:5432/postgres"))
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args()
    with throwaway_database(args.database_url, "stockpile_bench_latency") as url:
        stockpile(ROOT, url, "demo")
        token = stockpile(ROOT, url, "token", "create", "--name", "bench-latency", "--role", "admin",
                          "--clearance", "military").stdout.strip().splitlines()[-1]
        body = asyncio.run(scenario(url, args.requests))
        port = free_port()
        server = stockpile(args.root, url, "serve", "--no-demo", "--port", str(port), background=True)
        try:
            r = asyncio.run(measure(f"http://127.0.0.1:{port}", token, body))
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps(r, indent=2))
    print(f"\ndrill of {args.requests} requests: {r['drill_seconds']:.1f} s in all, solve {r['solve_ms'] / 1000:.2f} s "
          f"({r['arcs']} arcs); GET /health/live alone: median {r['alone_median_ms']:.1f} ms; during the drill "
          f"({r['during_probes']} probes): median {r['during_median_ms']:.1f} ms, p99 {r['during_p99_ms']:.1f} ms, "
          f"worst {r['during_max_ms']:.1f} ms (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
