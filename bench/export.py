"""What a CSV export costs the API process: 1,000,000 movements through ``GET /api/v1/movements`` with
``Accept: text/csv``, against PostgreSQL's own ``COPY (…the same rows…) TO STDOUT`` in the same run.

    .venv/bin/python bench/export.py [--database-url postgresql://root@127.0.0.1:5432/postgres]
                                     [--movements 1000000] [--small 100000]

Builds a throwaway database (migrations), starts the API as production runs it (a uvicorn process,
one worker), writes its master data and 1,000 lots through the API (one atomic batch of receipts),
then appends ``--movements`` issues of one unit each straight into the ledger in SQL (the same
tables, triggers and checks as a posted issue; posting a million through the API would measure
posting). Then, for the newest ``--small`` movements (a ``since`` filter) and for all of them:

- the anchor: ``COPY (<the export's own statement>) TO STDOUT (FORMAT csv)`` — the same rows, the
  same postings aggregated in SQL — read by an asyncpg client; rows/s;
- the export: a cleared national admin's ``GET /api/v1/movements`` with ``Accept: text/csv``, read
  to its last byte by an HTTP client; rows/s, as a share of the anchor's, the API process's CPU
  time per row, and its peak resident memory (sampled every 10 ms) before and during it.

Each is run ``--rounds`` times, alternately, and the best taken (the machine may be shared).

Flat memory means the peak exporting all the movements is that of exporting the small set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.coverage import throwaway_database  # noqa: E402
from bench.limits import start_server  # noqa: E402
from stockpile.store.engine import asyncpg_dsn  # noqa: E402
from stockpile.store import reads  # noqa: E402
from tests.live import make_admin_token  # noqa: E402

LOTS = 1000
CHUNK = 100_000  # issues appended per transaction

ISSUES = """
WITH made AS (
    INSERT INTO movements (kind, occurred_at, reason, principal_id)
    SELECT 'issue', timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second', 'consumption', $3
      FROM generate_series($1::bigint, $2::bigint) g
    RETURNING id, seq),
accounts AS (SELECT array_agg(id ORDER BY id) AS ids, min(material_id) AS material_id
               FROM accounts WHERE type = 'stock')
INSERT INTO postings (movement_id, account_id, external, material_id, delta)
SELECT m.id, p.account_id, p.external, a.material_id, p.delta
  FROM made m CROSS JOIN accounts a
  CROSS JOIN LATERAL (VALUES (a.ids[1 + m.seq % cardinality(a.ids)], NULL, -1),
                             (NULL, 'consumption', 1)) p(account_id, external, delta)"""


async def master_data(base: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as c:
        for path, body in [
            ("/api/v1/regions/BENCH", {"name": "Bench region"}),
            ("/api/v1/parties/BENCH-CIV", {"name": "Civil reserve", "sector": "civilian", "parent": None}),
            ("/api/v1/warehouses/BENCH-W", {"name": "Bench depot", "operator": "BENCH-CIV", "region": "BENCH",
                                            "kind": "civilian", "latitude": 60.1, "longitude": 24.9,
                                            "status": "active"}),
            ("/api/v1/materials/BENCH-DSL", {"name": "Diesel", "category": "fuel", "unit": "L", "decimals": 1,
                                             "shelf_life_days": 730, "storage_class": "bulk_liquid"}),
        ]:
            r = await c.put(path, json=body)
            assert r.status_code in (200, 201), (path, r.text)
        receipts = [{"kind": "receipt", "warehouse": "BENCH-W", "material": "BENCH-DSL", "owner": "BENCH-CIV",
                     "quantity": "1000000", "lot": {"code": f"L-{i}", "expires_on": "2030-01-01"}}
                    for i in range(LOTS)]
        r = await c.post("/api/v1/movements/batch", json={"movements": receipts, "atomic": True},
                         headers={"Idempotency-Key": "bench-export-lots"})
        assert r.status_code == 201, r.text


async def append_issues(url: str, count: int) -> None:
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        principal = await conn.fetchval("SELECT id FROM principals WHERE name = 'live-admin'")
        for first in range(1, count + 1, CHUNK):
            async with conn.transaction():
                await conn.execute(ISSUES, first, min(first + CHUNK - 1, count), principal)
            print(f"  {min(first + CHUNK - 1, count):,} issues appended", file=sys.stderr, flush=True)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def since_for(url: str, rows: int) -> str:
    """The ``since`` that keeps exactly the newest ``rows`` movements."""
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        at = await conn.fetchval("SELECT occurred_at FROM movements ORDER BY occurred_at DESC OFFSET $1 LIMIT 1",
                                 rows - 1)
        return at.isoformat()
    finally:
        await conn.close()


async def copy_anchor(url: str, since: str | None) -> tuple[int, float]:
    """Rows and seconds of COPY (the export's statement, as a cleared national reader) TO STDOUT."""
    statement = reads.movements(warehouse=None, material=None, owner=None, kind=None,
                                since=datetime.fromisoformat(since) if since else None, until=None,
                                before_seq=None, limit=None)
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, server_settings={"jit": "off"}, **kwargs)  # as the service's pool

    async def sink(data: bytes) -> None:  # read and dropped, as the HTTP client drops the export
        pass

    try:
        started = time.perf_counter()
        status = await conn.copy_from_query(statement.sql, *statement.args, output=sink, format="csv")
        return int(status.split()[-1]), time.perf_counter() - started
    finally:
        await conn.close()


class PeakMemory:
    """The peak resident memory of a process, sampled every 10 ms on a thread of its own."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()


def export(base: str, token: str, pid: int, since: str | None) -> dict:
    params = {"since": since} if since else {}
    api = psutil.Process(pid)
    before, cpu = api.memory_info().rss, api.cpu_times()
    lines = 0
    with PeakMemory(pid) as memory, httpx.Client(base_url=base, timeout=600) as c:
        started = time.perf_counter()
        with c.stream("GET", "/api/v1/movements", params=params,
                      headers={"Authorization": f"Bearer {token}", "Accept": "text/csv"}) as r:
            assert r.status_code == 200, r.read()
            for chunk in r.iter_raw():
                lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
    used = api.cpu_times()
    return {"rows": lines - 1, "seconds": seconds, "rss_before_mb": before / 2**20, "rss_peak_mb": memory.peak / 2**20,
            "api_cpu_seconds": used.user + used.system - cpu.user - cpu.system}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgresql://root@127.0.0.1:5432/postgres"))
    parser.add_argument("--movements", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="COPY and export alternately; the best of each")
    args = parser.parse_args()
    with throwaway_database(args.database_url, "stockpile_bench_export") as url:
        token = asyncio.run(make_admin_token(url))
        process, base = start_server(url, limits_on=False)
        try:
            started = time.perf_counter()
            asyncio.run(master_data(base, token))
            asyncio.run(append_issues(url, args.movements))
            print(f"  loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            results = {}
            for label, rows in (("small", args.small), ("all", args.movements + LOTS)):
                since = asyncio.run(since_for(url, rows)) if rows < args.movements + LOTS else None
                copies, exports = [], []
                for _ in range(args.rounds):
                    copies.append(asyncio.run(copy_anchor(url, since)))
                    exports.append(export(base, token, process.pid, since))
                copied, copy_seconds = min(copies, key=lambda c: c[1])
                results[label] = {**min(exports, key=lambda e: e["seconds"]), "copy_rows": copied,
                                  "copy_seconds": copy_seconds,
                                  "rss_peak_mb": max(e["rss_peak_mb"] for e in exports),
                                  "api_cpu_seconds": min(e["api_cpu_seconds"] for e in exports)}
        finally:
            process.terminate()
            process.wait(timeout=10)
    print(f"\nstockpile export benchmark — movements as CSV through the API process "
          f"(machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"{'':<12}{'rows':>11}{'export rows/s':>15}{'COPY rows/s':>13}{'share':>8}{'API CPU µs/row':>16}"
          f"{'RSS before':>13}{'RSS peak':>11}")
    for label, r in results.items():
        assert r["rows"] == r["copy_rows"], r
        export_rate, copy_rate = r["rows"] / r["seconds"], r["copy_rows"] / r["copy_seconds"]
        print(f"{label:<12}{r['rows']:>11,}{export_rate:>15,.0f}{copy_rate:>13,.0f}{export_rate / copy_rate:>8.2f}"
              f"{r['api_cpu_seconds'] / r['rows'] * 1e6:>16.1f}{r['rss_before_mb']:>10.1f} MB{r['rss_peak_mb']:>8.1f} MB")
    small, every = results["small"], results["all"]
    print(f"peak RSS exporting {every['rows']:,} rows is {every['rss_peak_mb'] - small['rss_peak_mb']:+.1f} MB "
          f"from exporting {small['rows']:,}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"export-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
