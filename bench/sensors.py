"""Sensor readings: ingest through the API against COPY, and the evaluation against a bare scan,
each pair measured in one run on the same PostgreSQL.

    .venv/bin/python bench/sensors.py [--database-url postgresql://root@127.0.0.1:5432/postgres]
                                      [--ingest-readings 400000] [--connections 16] [--batch 1000]
                                      [--sensors 10000] [--hours 24]

Ingest: a throwaway database (migrations), 1,000 probes at one warehouse; the rows — 1,000 sensors ×
a reading a minute back from now, ``--ingest-readings`` in all — are made once. The anchor:
``COPY`` of those rows into ``sensor_readings`` (one connection, binary), then the table emptied;
then ``stockpile serve --no-demo`` (one API process, request limits off) takes the same rows as
``POST /api/v1/sensor-readings`` of ``--batch`` readings from ``--connections`` connections (the
bodies encoded before the clock starts). Readings/s of each, and their ratio.

Evaluation: a second throwaway database with ``--sensors`` sensors (nine probes in ten, one tank
gauge in ten on a tank of 1,000,000 L), each with a reading a minute for ``--hours`` (set-based
SQL); one probe in a hundred has been out of its band for the last hour and one gauge in a hundred
reads 3 % below the book. The anchor: a bare ``SELECT count(*), sum(value)`` over every reading
(best of 3). Then the ``evaluate-sensors`` job once (it opens the alerts), and the evaluation in the
steady state (alerts open, nothing new), best of 3, rolled back. Its ratio to the scan.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import msgspec
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.coverage import throwaway_database  # noqa: E402
from bench.ledger import Server, make_token  # noqa: E402
from stockpile.config import Settings  # noqa: E402
from stockpile.jobs.catalog import catalog  # noqa: E402
from stockpile.jobs.runs import manual_slot, run_slot  # noqa: E402
from stockpile.services import sensors  # noqa: E402
from stockpile.store.db import Database  # noqa: E402
from stockpile.store.engine import asyncpg_dsn, plain_url  # noqa: E402

WORLD = """
INSERT INTO regions (code, name) VALUES ('BENCH', 'Bench');
INSERT INTO parties (code, name, sector) VALUES ('BENCH-OP', 'Bench operator', 'civilian');
INSERT INTO warehouses (code, name, operator_id, region_id, kind, latitude, longitude)
  SELECT 'WH-' || g, 'Depot ' || g, p.id, r.id, 'civilian', 60, 25
    FROM parties p, regions r, generate_series(1, {warehouses}) g;
INSERT INTO materials (code, name, category, unit, decimals, storage_class)
  VALUES ('DIESEL', 'Diesel', 'fuel', 'L', 1, 'bulk_liquid');
"""

PROBES = """
INSERT INTO sensors (code, warehouse_id, kind, storage_class, unit, band_min, band_max, tolerance_minutes)
  SELECT 'P-' || g, (SELECT id FROM warehouses WHERE code = 'WH-' || (1 + g % {warehouses})), 'temperature',
         'cold_chain', 'C', 2, 8, 30
    FROM generate_series(1, {n}) g;
"""

GAUGES = """
SET session_replication_role = replica;  -- positions written directly: this database measures the sensors
INSERT INTO lots (warehouse_id, material_id, code) SELECT w.id, m.id, 'TANK' FROM warehouses w, materials m;
INSERT INTO accounts (type, lot_id, owner_id, material_id, expires_on, balance)
  SELECT 'stock', l.id, p.id, l.material_id, l.expires_on, 10000000 FROM lots l, parties p;
INSERT INTO sensors (code, warehouse_id, kind, material_id, unit, tolerance_minutes)
  SELECT 'G-' || w.code, w.id, 'tank_level', m.id, 'L', 60 FROM warehouses w, materials m;
SET session_replication_role = origin;
"""

# A reading a minute for every sensor; a probe in a hundred out of band for the last hour, a gauge in
# a hundred 3 % below its book (1,000,000.0 L).
READINGS = """
INSERT INTO sensor_readings (sensor_id, at, value)
SELECT s.id, t, CASE WHEN s.kind = 'tank_level' THEN CASE WHEN s.id % 100 = 0 THEN 970000 ELSE 1000000 END
                     + round((random() * 200 - 100)::numeric, 1)
                     WHEN s.id % 100 = 0 AND t > $1::timestamptz - interval '1 hour' THEN 11.5
                     ELSE round((5 + random())::numeric, 2) END
  FROM sensors s, generate_series($1::timestamptz - $2 * interval '1 hour', $1::timestamptz, interval '1 minute') t
"""

SCAN = "SELECT count(*), sum(value) FROM sensor_readings"


async def connect(url: str) -> asyncpg.Connection:
    dsn, kwargs = asyncpg_dsn(url)
    return await asyncpg.connect(dsn, **kwargs)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgresql://root@127.0.0.1:5432/postgres"))
    parser.add_argument("--ingest-readings", type=int, default=400_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--sensors", type=int, default=10_000)
    parser.add_argument("--hours", type=int, default=24)
    return parser.parse_args()


# -- ingest -----------------------------------------------------------------------------------------

async def ingest_world(url: str, probes: int) -> list[tuple[int, str]]:
    conn = await connect(url)
    try:
        await conn.execute(WORLD.format(warehouses=1))
        await conn.execute(PROBES.format(n=probes, warehouses=1))
        return [(r["id"], r["code"]) for r in await conn.fetch("SELECT id, code FROM sensors ORDER BY id")]
    finally:
        await conn.close()


def ingest_rows(sensors_: list[tuple[int, str]], total: int, now: datetime) -> list[tuple[int, str, datetime, Decimal]]:
    """(sensor id, code, at, value): a reading a minute per sensor, back from ``now``."""
    per_sensor = -(-total // len(sensors_))
    rows = []
    for minute in range(per_sensor):
        at = now - timedelta(minutes=minute)
        for sensor_id, code in sensors_:
            rows.append((sensor_id, code, at, Decimal(f"{4 + (sensor_id * 7 + minute) % 300 / 100:.2f}")))
            if len(rows) == total:
                return rows
    return rows


async def copy_anchor(url: str, rows) -> float:
    """Seconds to COPY the rows into sensor_readings; the table is emptied afterwards."""
    conn = await connect(url)
    try:
        records = [(sensor_id, at, value) for sensor_id, _, at, value in rows]
        started = time.perf_counter()
        await conn.copy_records_to_table("sensor_readings", columns=("sensor_id", "at", "value"), records=records)
        seconds = time.perf_counter() - started
        assert await conn.fetchval("SELECT count(*) FROM sensor_readings") == len(rows)
        await conn.execute("TRUNCATE sensor_readings")
        await conn.execute("VACUUM ANALYZE sensor_readings")
        return seconds
    finally:
        await conn.close()


async def post_all(base: str, token: str, bodies: list[bytes], connections: int) -> tuple[float, int, int]:
    """(seconds, accepted, refused) posting every body from ``connections`` connections."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    totals = {"accepted": 0, "refused": 0}

    async def connection() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json"}) as client:
            while not queue.empty():
                body = queue.get_nowait()
                r = await client.post("/api/v1/sensor-readings", content=body)
                r.raise_for_status()
                answer = r.json()
                totals["accepted"] += answer["accepted"]
                totals["refused"] += len(answer["refused"])

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return time.perf_counter() - started, totals["accepted"], totals["refused"]


def measure_ingest(args) -> dict:
    with throwaway_database(args.database_url, "stockpile_bench_sensors") as url:
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        known = asyncio.run(ingest_world(url, 1000))
        rows = ingest_rows(known, args.ingest_readings, now)
        bodies = [msgspec.json.encode({"readings": [{"sensor": code, "at": at.isoformat(), "value": str(value)}
                                                    for _, code, at, value in rows[i:i + args.batch]]})
                  for i in range(0, len(rows), args.batch)]
        copy_seconds = asyncio.run(copy_anchor(url, rows))
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update({"DATABASE_URL": plain_url(url), "STOCKPILE_DEMO": "false", "STOCKPILE_RATE_LIMIT_PER_SECOND": "0",
                    "STOCKPILE_ADDRESS_RATE_LIMIT_PER_SECOND": "0", "STOCKPILE_LOG_LEVEL": "warning",
                    "STOCKPILE_DB_POOL_SIZE": str(args.connections)})
        token = make_token(env, "bench-device", "sensor", "--warehouse", "WH-1")
        with tempfile.TemporaryDirectory() as workdir:
            server = Server(env, 1, Path(workdir))
            try:
                server.wait_ready()
                asyncio.run(post_all(server.base, token, bodies[:2], 2))  # warm-up (stored, so counted below)
                api = psutil.Process(server.pid)
                cpu_before = sum(api.cpu_times()[:2])
                seconds, accepted, refused = asyncio.run(post_all(server.base, token, bodies, args.connections))
                api_cpu = sum(api.cpu_times()[:2]) - cpu_before
            finally:
                server.stop()
        warm = sum(len(msgspec.json.decode(b)["readings"]) for b in bodies[:2])
        assert accepted + warm == len(rows) and refused == 0, (accepted, warm, refused)
    return {"rows": len(rows), "copy_seconds": copy_seconds, "api_seconds": seconds, "requests": len(bodies),
            "api_cpu_seconds": api_cpu}


# -- evaluation -------------------------------------------------------------------------------------

async def measure_evaluation(url: str, args) -> dict:
    gauges = args.sensors // 10
    conn = await connect(url)
    try:
        await conn.execute(WORLD.format(warehouses=gauges))
        await conn.execute(PROBES.format(n=args.sensors - gauges, warehouses=gauges))
        await conn.execute(GAUGES)
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        started = time.perf_counter()
        await conn.execute(READINGS, now, args.hours)
        load = time.perf_counter() - started
        await conn.execute("VACUUM ANALYZE")
        readings = await conn.fetchval("SELECT count(*) FROM sensor_readings")
        scans = []
        for _ in range(3):
            started = time.perf_counter()
            await conn.fetchrow(SCAN)
            scans.append(time.perf_counter() - started)
    finally:
        await conn.close()
    settings = Settings()
    db = Database(url, pool_size=2)
    try:
        first = await run_slot(db, catalog(settings)["evaluate-sensors"], slot=manual_slot())
        assert first.outcome == "ok", first.detail
        steady = []
        for _ in range(3):
            pool = await db.pool()
            async with pool.acquire() as pg:
                tx = pg.transaction()
                await tx.start()
                started = time.perf_counter()
                found = await sensors.evaluate(pg, now=datetime.now(timezone.utc),
                                               gauge_tolerance=settings.gauge_tolerance,
                                               silence_minutes=settings.sensor_silence_minutes)
                steady.append(time.perf_counter() - started)
                await tx.rollback()
    finally:
        await db.dispose()
    return {"readings": readings, "load_seconds": load, "scan_seconds": min(scans), "first_seconds": first.seconds,
            "first": first.detail, "steady_seconds": min(steady), "steady": found}


def main() -> None:
    args = arguments()
    ingest = measure_ingest(args)
    with throwaway_database(args.database_url, "stockpile_bench_eval") as url:
        evaluation = asyncio.run(measure_evaluation(url, args))
    copy_rate = ingest["rows"] / ingest["copy_seconds"]
    api_rate = ingest["rows"] / ingest["api_seconds"]
    print(f"\nstockpile sensor benchmark (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"{'COPY of the rows (anchor)':<46}{ingest['rows']:,} readings in {ingest['copy_seconds']:.2f} s = "
          f"{copy_rate:,.0f} readings/s")
    print(f"{'POST /sensor-readings, one API process':<46}{ingest['requests']} × {args.batch} from "
          f"{args.connections} connections in {ingest['api_seconds']:.2f} s = {api_rate:,.0f} readings/s "
          f"= {api_rate / copy_rate:.2f} × COPY (aim ≥ 0.3 × and ≥ 50,000/s)")
    print(f"{'  CPU of the API process':<46}{ingest['api_cpu_seconds']:.2f} s = "
          f"{ingest['rows'] / ingest['api_cpu_seconds']:,.0f} readings per CPU second")
    ratio = evaluation["steady_seconds"] / evaluation["scan_seconds"]
    print(f"{'bare scan of every reading (anchor)':<46}{evaluation['readings']:,} readings in "
          f"{evaluation['scan_seconds']:.3f} s (loaded in {evaluation['load_seconds']:.0f} s)")
    print(f"{'evaluate-sensors, first run (opens alerts)':<46}{evaluation['first_seconds']:.3f} s: "
          f"{evaluation['first']['excursions']} excursions, {evaluation['first']['variances']} variances")
    print(f"{'evaluation, steady state (best of 3)':<46}{evaluation['steady_seconds']:.3f} s = {ratio:.2f} × the scan "
          f"(aim ≤ 2 ×)")


if __name__ == "__main__":
    main()
