"""Coverage + alert evaluation at national scale against the physical floor, measured in one run.

    .venv/bin/python bench/coverage.py [--database-url postgresql://root@127.0.0.1:5432/postgres]
                                       [--lots 1000000] [--targets 20000] [--warehouses 2000]

Builds a throwaway database (migrations, then bulk-generated regions, 2,000 warehouses, 50
materials, 30 owners, 1,000,000 lots with positions, 20,000 targets), then times:
- the floor: a bare `SELECT … GROUP BY` of usable stock over the same tables, its rows fetched (and,
  for reference, the same aggregate counted in the server, nothing fetched);
- one full `evaluate-alerts` (coverage of every target + expiring / expired lots + overdue transfers),
  the first run (opening the alerts) and steady-state runs, interleaved with the floor (best of 3);
- the same two with parallel query off, in CPU seconds (the backend's, read from /proc, plus the
  bench's own): a ratio that holds on a machine shared with other work;
- `/metrics` scrapes of a running `stockpile serve` after `refresh-metrics`: p50/p99 and series.
The bulk load writes positions directly (triggers off): this database measures reads, not the ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stockpile.config import Settings  # noqa: E402
from stockpile.jobs.catalog import catalog  # noqa: E402
from stockpile.jobs.runs import run_slot  # noqa: E402
from stockpile.services import alerts  # noqa: E402
from stockpile.store.db import Database  # noqa: E402
from stockpile.store.engine import asyncpg_dsn, plain_url, upgrade, with_database  # noqa: E402

STOCKPILE = str(Path(sys.executable).with_name("stockpile"))

LOAD = """
SET session_replication_role = replica;
INSERT INTO regions (code, name) VALUES ('NAT', 'Nation');
INSERT INTO regions (code, name, parent_id) SELECT 'P' || i, 'Province ' || i, (SELECT id FROM regions WHERE code = 'NAT')
  FROM generate_series(1, 20) i;
INSERT INTO regions (code, name, parent_id) SELECT 'D' || i, 'District ' || i, (SELECT id FROM regions WHERE code = 'P' || (1 + i % 20))
  FROM generate_series(1, 200) i;
INSERT INTO parties (code, name, sector) SELECT 'OWN' || i, 'Owner ' || i,
  (ARRAY['military', 'civilian', 'enterprise'])[1 + i % 3] FROM generate_series(1, 30) i;
INSERT INTO warehouses (code, name, operator_id, region_id, kind, latitude, longitude)
  SELECT 'W' || i, 'Warehouse ' || i, (SELECT id FROM parties WHERE code = 'OWN' || (1 + i % 30)),
         (SELECT id FROM regions WHERE code = 'D' || (1 + i % 200)), 'joint', 50 + (i % 100) / 10.0, 20 + (i % 70) / 10.0
    FROM generate_series(1, {warehouses}) i;
INSERT INTO materials (code, name, category, unit, decimals, shelf_life_days, storage_class, substitution_group,
                       daily_consumption_per_person)
  SELECT 'M' || i, 'Material ' || i, (ARRAY['fuel', 'food', 'medical'])[1 + i % 3], 'unit', i % 2, 730, 'ambient',
         CASE WHEN i % 5 = 0 THEN 'G' || (i % 3) END, 0.5 FROM generate_series(1, 50) i;
INSERT INTO lots (warehouse_id, material_id, code, expires_on, status)
  SELECT w.id, m.id, 'L' || i, current_date + ((i::bigint * 7919) % 1460)::int - 60,
         CASE WHEN i % 100 = 0 THEN 'quarantine' ELSE 'available' END
    FROM generate_series(1, {lots}) i
    JOIN warehouses w ON w.code = 'W' || (1 + i % {warehouses})
    JOIN materials m ON m.code = 'M' || (1 + (i / {warehouses}) % 50);
INSERT INTO accounts (type, lot_id, owner_id, material_id, expires_on, balance, reserved)
  SELECT 'stock', l.id, p.id, l.material_id, l.expires_on,
         1000 + abs(hashtext(l.code)) % 5000, CASE WHEN abs(hashtext(l.code)) % 10 = 0 THEN 500 ELSE 0 END
    FROM lots l JOIN parties p ON p.code = 'OWN' || (1 + abs(hashtext(l.code)) % 30);
INSERT INTO reserve_targets (code, scope_warehouse_id, scope_region_id, material_id, category, substitution_group,
                             sector, quantity, warning_ratio, critical_ratio, floor_ratio, horizon_days)
  SELECT 'T' || i,
         CASE WHEN i % 10 < 8 THEN (SELECT id FROM warehouses WHERE code = 'W' || (1 + i % {warehouses})) END,
         CASE WHEN i % 10 = 8 THEN (SELECT id FROM regions WHERE code = 'D' || (1 + i % 200))
              WHEN i % 10 = 9 AND i % 100 <> 99 THEN (SELECT id FROM regions WHERE code = 'P' || (1 + i % 20))
              WHEN i % 10 = 9 THEN (SELECT id FROM regions WHERE code = 'NAT') END,
         CASE WHEN i % 3 <> 2 THEN (SELECT id FROM materials WHERE code = 'M' || (1 + i % 50)) END,
         CASE WHEN i % 3 = 2 AND i % 2 = 0 THEN (ARRAY['fuel', 'food', 'medical'])[1 + i % 3] END,
         CASE WHEN i % 3 = 2 AND i % 2 = 1 THEN 'G' || (i % 3) END,
         CASE WHEN i % 4 = 0 THEN (ARRAY['military', 'civilian', 'enterprise'])[1 + i % 3] END,
         5000 + (i % 50) * 1000, 0.9, 0.7, 0.5, (ARRAY[30, 60, 90])[1 + i % 3]
    FROM generate_series(1, {targets}) i;
SET session_replication_role = origin;
ANALYZE;
"""

FLOOR = """
SELECT l.warehouse_id, l.material_id, a.owner_id, sum(a.balance - a.reserved)
  FROM accounts a JOIN lots l ON l.id = a.lot_id
 WHERE a.type = 'stock' AND l.status = 'available' AND (l.expires_on IS NULL OR l.expires_on > current_date + 30)
 GROUP BY 1, 2, 3"""


async def admin_sql(url: str, sql: str) -> None:
    dsn, kwargs = asyncpg_dsn(with_database(url, "postgres"))
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a PostgreSQL backend on this machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def timed(db: Database, work, *, serial: bool = False) -> tuple[float, float]:
    """(wall seconds, CPU seconds of backend + this process) of ``work`` in one transaction.
    ``serial`` turns parallel query off, so the backend's CPU is all the server's CPU."""
    async with db.transaction() as tx:
        if serial:
            await tx.pg.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        pid = await tx.pg.fetchval("SELECT pg_backend_pid()")
        cpu, client, started = backend_cpu(pid), time.process_time(), time.perf_counter()
        await work(tx.pg)
        wall = time.perf_counter() - started
        return wall, backend_cpu(pid) - cpu + time.process_time() - client


async def measure(url: str, args) -> dict:
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        started = time.perf_counter()
        await conn.execute(LOAD.format(lots=args.lots, targets=args.targets, warehouses=args.warehouses))
        load_s = time.perf_counter() - started
        counts = dict(await conn.fetchrow("SELECT (SELECT count(*) FROM lots) AS lots, "
                                          "(SELECT count(*) FROM reserve_targets) AS targets, "
                                          "(SELECT count(*) FROM warehouses) AS warehouses"))
    finally:
        await conn.close()
    db = Database(url, pool_size=2)
    now = datetime.now(timezone.utc)

    async def evaluate(pg):
        return await alerts.evaluate(pg, today=now.date(), now=now, expiring_days=30)

    async def floor(pg):
        return await pg.fetch(FLOOR)

    async def floor_in_server(pg):
        return await pg.fetchval(f"SELECT count(*) FROM ({FLOOR}) aggregate")

    try:
        first = (await timed(db, evaluate))[0]
        runs: dict[str, list[tuple[float, float]]] = {"floor": [], "floor_server": [], "steady": [],
                                                      "floor_serial": [], "steady_serial": []}
        for _ in range(3):  # interleaved, so load from other processes hits both alike
            runs["floor"].append(await timed(db, floor))
            runs["floor_server"].append(await timed(db, floor_in_server))
            runs["steady"].append(await timed(db, evaluate))
            runs["floor_serial"].append(await timed(db, floor, serial=True))
            runs["steady_serial"].append(await timed(db, evaluate, serial=True))
        refresh = await run_slot(db, catalog(Settings())["refresh-metrics"], slot=-1)
        async with db.transaction() as tx:
            opened = await tx.pg.fetchval("SELECT count(*) FROM alerts WHERE state = 'open'")
    finally:
        await db.dispose()
    best = {k: min(w for w, _ in v) for k, v in runs.items()}
    best_cpu = {k: min(c for _, c in v) for k, v in runs.items()}
    return {**counts, "load_seconds": load_s, "floor_seconds": best["floor"],
            "floor_server_only_seconds": best["floor_server"], "evaluation_first_seconds": first,
            "evaluation_steady_seconds": best["steady"], "floor_cpu_seconds": best_cpu["floor_serial"],
            "evaluation_cpu_seconds": best_cpu["steady_serial"], "open_alerts": opened,
            "refresh_metrics_seconds": refresh.seconds, "load_average": os.getloadavg()[0], "runs": runs}


def scrape(url: str, scrapes: int = 300) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": plain_url(url), "STOCKPILE_METRICS_PUBLIC": "true",
           "STOCKPILE_LOG_LEVEL": "warning", "STOCKPILE_METRICS_RELOAD_SECONDS": "1"}
    server = subprocess.Popen([STOCKPILE, "serve", "--no-demo", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as c:
            for _ in range(300):
                try:
                    if "stockpile_targets{" in c.get("/metrics").text:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            times, text = [], ""
            for _ in range(scrapes):
                started = time.perf_counter()
                text = c.get("/metrics").text
                times.append(time.perf_counter() - started)
        series = sum(1 for line in text.splitlines() if line.startswith("stockpile_") and not line.startswith("stockpile_request"))
        times.sort()
        return {"scrape_p50_ms": 1000 * statistics.median(times), "scrape_p99_ms": 1000 * times[int(0.99 * len(times)) - 1],
                "business_series": series}
    finally:
        server.terminate()
        server.wait(timeout=20)


def national_arguments(doc: str, **extra: int) -> argparse.Namespace:
    """The options every national-scale bench shares: the server, and the size of the reserve (and
    the bench's own integer options, ``extra``: name → default)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    for name, default in extra.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgresql://root@127.0.0.1:5432/postgres"))
    parser.add_argument("--lots", type=int, default=1_000_000)
    parser.add_argument("--targets", type=int, default=20_000)
    parser.add_argument("--warehouses", type=int, default=2_000)
    return parser.parse_args()


async def load_national(url: str, args, *more: str) -> tuple[dict, float]:
    """The national reserve (``LOAD``, sized by ``args``) and then the ``more`` statements of a bench;
    returns the counts of lots, targets and warehouses, and the seconds it took."""
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        started = time.perf_counter()
        await conn.execute(LOAD.format(lots=args.lots, targets=args.targets, warehouses=args.warehouses))
        for statements in more:
            await conn.execute(statements)
        seconds = time.perf_counter() - started
        counts = dict(await conn.fetchrow(
            """SELECT (SELECT count(*) FROM lots) AS lots, (SELECT count(*) FROM reserve_targets) AS targets,
                      (SELECT count(*) FROM warehouses) AS warehouses"""))
        return counts, seconds
    finally:
        await conn.close()


@contextmanager
def throwaway_database(server_url: str, prefix: str):
    """A new database built by the migrations, dropped afterwards whatever happens; yields its URL."""
    name = f"{prefix}_{secrets.token_hex(3)}"
    url = with_database(server_url, name)
    asyncio.run(admin_sql(server_url, f'CREATE DATABASE "{name}"'))
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    args = national_arguments(__doc__)
    with throwaway_database(args.database_url, "stockpile_bench_cov") as url:
        r = asyncio.run(measure(url, args))
        r.update(scrape(url))
    ratio = r["evaluation_steady_seconds"] / r["floor_seconds"]
    cpu_ratio = r["evaluation_cpu_seconds"] / r["floor_cpu_seconds"]
    print(f"\nstockpile coverage benchmark — {r['lots']} lots, {r['targets']} targets, {r['warehouses']} warehouses "
          f"(load {r['load_seconds']:.0f} s; machine load average {r['load_average']:.1f} on {os.cpu_count()} cores)")
    print(f"{'bare GROUP BY, rows fetched (floor)':<44}{r['floor_seconds']:.3f} s "
          f"(in the server alone: {r['floor_server_only_seconds']:.3f} s)")
    print(f"{'full evaluation, first (opens alerts)':<44}{r['evaluation_first_seconds']:.3f} s "
          f"({r['open_alerts']} alerts open)")
    print(f"{'full evaluation, steady state':<44}{r['evaluation_steady_seconds']:.3f} s = {ratio:.2f} × floor "
          f"(target ≤ 1.5 ×: {'met' if ratio <= 1.5 else 'NOT met'}); "
          f"{r['evaluation_steady_seconds'] / r['floor_server_only_seconds']:.2f} × the in-server floor")
    print(f"{'CPU, parallel query off (server + client)':<44}floor {r['floor_cpu_seconds']:.2f} s, evaluation "
          f"{r['evaluation_cpu_seconds']:.2f} s = {cpu_ratio:.2f} ×")
    print(f"{'refresh-metrics job':<44}{r['refresh_metrics_seconds']:.3f} s")
    print(f"{'/metrics scrape p50 / p99':<44}{r['scrape_p50_ms']:.1f} / {r['scrape_p99_ms']:.1f} ms "
          f"(target p99 ≤ 50 ms: {'met' if r['scrape_p99_ms'] <= 50 else 'NOT met'})")
    print(f"{'business metric series':<44}{r['business_series']} (bound ≤ 2,000: "
          f"{'met' if r['business_series'] <= 2000 else 'NOT met'})")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"coverage-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(r, indent=2, default=str))


if __name__ == "__main__":
    main()
