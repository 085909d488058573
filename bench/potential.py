"""The potential view at national scale against the coverage statement over the same data, one run.

    .venv/bin/python bench/potential.py [--database-url postgresql://root@127.0.0.1:5432/postgres]
                                        [--lots 1000000] [--targets 20000] [--warehouses 2000]
                                        [--capacities 5000]

Builds a throwaway database with the national reserve of bench/coverage.py (1,000,000 lots, 20,000
targets, 2,000 warehouses; region-scoped targets given a population) plus 5,000 capacities spread over
the districts and materials, then times, interleaved and best of 3:
- the anchor: the coverage statement of every target (``store.coverage.coverage``, rows fetched);
- the potential of the whole nation (``services.capacities.potential``: the statement and the days of
  supply with and without capacity for every region × material);
and the same two with parallel query off, in CPU seconds (backend + bench), a ratio that holds on a
machine shared with other work.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.coverage import load_national, national_arguments, throwaway_database, timed  # noqa: E402
from stockpile.domain.access import Principal  # noqa: E402
from stockpile.services import capacities  # noqa: E402
from stockpile.store import coverage as coverage_store  # noqa: E402
from stockpile.store.db import Database  # noqa: E402

CAPACITIES = """
SET session_replication_role = replica;
UPDATE reserve_targets SET population = 20000 + (id % 97) * 1000 WHERE scope_region_id IS NOT NULL;
INSERT INTO capacities (code, party_id, material_id, daily_quantity, lead_days, region_id, held_for, surveyed_on,
                        survey_interval_days)
  SELECT 'K' || i, (SELECT id FROM parties WHERE code = 'OWN' || (1 + i % 30)),
         (SELECT id FROM materials WHERE code = 'M' || (1 + i % 50)), 500 + (i % 40) * 250, i % 21,
         (SELECT id FROM regions WHERE code = 'D' || (1 + (i / 50) % 200)),
         CASE WHEN i % 7 = 0 THEN 'military' END, current_date - (i % 300), 365
    FROM generate_series(1, {capacities}) i;
SET session_replication_role = origin;
ANALYZE;
"""

NATIONAL = Principal(0, "bench", frozenset({"admin"}), "military")


async def measure(url: str, args) -> dict:
    counts, load_s = await load_national(url, args, CAPACITIES.format(capacities=args.capacities))
    db = Database(url, pool_size=2)
    today = datetime.now(timezone.utc).date()

    async def anchor(pg):
        await coverage_store.coverage(pg, today=today, region=None, category=None)

    async def potential(pg):
        return await capacities.potential(pg, NATIONAL, today=today, region=None, category=None)

    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in ("coverage", "potential", "coverage_serial",
                                                                  "potential_serial")}
    try:
        async with db.transaction() as tx:
            rows = len(await potential(tx.pg))
            counts["capacities"] = await tx.pg.fetchval("SELECT count(*) FROM capacities")
        for _ in range(3):  # interleaved, so load from other processes hits both alike
            runs["coverage"].append(await timed(db, anchor))
            runs["potential"].append(await timed(db, potential))
            runs["coverage_serial"].append(await timed(db, anchor, serial=True))
            runs["potential_serial"].append(await timed(db, potential, serial=True))
    finally:
        await db.dispose()
    best = {k: min(w for w, _ in v) for k, v in runs.items()}
    cpu = {k: min(c for _, c in v) for k, v in runs.items()}
    return {**counts, "rows": rows, "load_seconds": load_s, "best": best, "cpu": cpu,
            "load_average": os.getloadavg()[0]}


def main() -> None:
    args = national_arguments(__doc__, capacities=5_000)
    with throwaway_database(args.database_url, "stockpile_bench_pot") as url:
        r = asyncio.run(measure(url, args))
    best, cpu = r["best"], r["cpu"]
    ratio = best["potential"] / best["coverage"]
    cpu_ratio = cpu["potential_serial"] / cpu["coverage_serial"]
    print(f"\nstockpile potential benchmark — {r['lots']} lots, {r['capacities']} capacities, {r['targets']} targets, "
          f"{r['warehouses']} warehouses (load {r['load_seconds']:.0f} s; machine load average "
          f"{r['load_average']:.1f} on {os.cpu_count()} cores)")
    print(f"{'coverage statement, every target (anchor)':<46}{best['coverage']:.3f} s")
    print(f"{'potential, every region × material':<46}{best['potential']:.3f} s = {ratio:.2f} × coverage "
          f"({r['rows']} rows; aim ≤ 1.5 ×: {'met' if ratio <= 1.5 else 'NOT met'})")
    print(f"{'CPU, parallel query off (server + client)':<46}coverage {cpu['coverage_serial']:.2f} s, potential "
          f"{cpu['potential_serial']:.2f} s = {cpu_ratio:.2f} ×")


if __name__ == "__main__":
    main()
