"""Allocation planning at national scale, from the database, against a bare scan of the lots.

    .venv/bin/python -m bench.planning [--database-url postgresql://root@127.0.0.1:5432/postgres]
                                       [--lots 1000000] [--targets 20000] [--warehouses 2000]
                                       [--requests 300]

Builds a throwaway database with the national reserve of ``bench/coverage.py`` (1,000,000 lots,
20,000 targets, 2,000 warehouses; the default allocation rules of the migrations), two provinces at
emergency, and ``--requests`` pending allocation requests of every priority — for five materials,
to warehouses across the country, military and civilian requesters. Then times, in the same run:
- the anchor: a bare ``SELECT count(*), sum(…) FROM lots`` (best of 3);
- ``services.planning.plan`` on every pending request, as ``POST /allocation/plans`` runs it
  (candidate positions, the targets they count toward, those targets' floors, the solve), best of 3;
- its three biggest reads on their own: the candidate positions, their memberships, the floors;
and prints each with its ratio to the anchor, with what the plan filled.
The bulk load writes positions directly (triggers off): this database measures planning, not the ledger.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.coverage import load_national, national_arguments, throwaway_database  # noqa: E402
from bench.rotation import ANCHOR, timed  # noqa: E402
from stockpile.services import planning  # noqa: E402
from stockpile.store import allocation as store  # noqa: E402
from stockpile.store import rules as rules_store  # noqa: E402
from stockpile.store.db import Database  # noqa: E402

CRISIS = """
INSERT INTO principals (name, roles) VALUES ('bench-commander', '{{commander}}');
INSERT INTO readiness_declarations (region_id, level, reason, state, declared_by, effective_at)
  SELECT r.id, 'emergency', 'bench', 'effective', (SELECT id FROM principals WHERE name = 'bench-commander'), now()
    FROM regions r WHERE r.code IN ('P1', 'P2');
-- requests for five materials, to warehouses across the country, from military and civilian owners
INSERT INTO allocation_requests (requester_id, destination_id, material_id, category, decimals, quantity, priority,
                                 needed_by, purpose)
  SELECT (SELECT id FROM parties WHERE code = 'OWN' || (1 + i % 2)),
         (SELECT id FROM warehouses WHERE code = 'W' || (1 + (i * 37) % {warehouses})),
         m.id, m.category, m.decimals, 2000 + (i % 17) * 500,
         (ARRAY['flash', 'immediate', 'priority', 'routine'])[1 + i % 4], current_date + 7 + i % 30, 'bench'
    FROM generate_series(1, {requests}) i
    JOIN materials m ON m.code = 'M' || (1 + i % 5);
ANALYZE;
"""


async def measure(url: str, args) -> dict:
    counts, load_seconds = await load_national(url, args, CRISIS.format(requests=args.requests,
                                                                        warehouses=args.warehouses))
    db = Database(url, pool_size=2)
    today = datetime.now(timezone.utc).date()
    limits = planning.Limits()
    shapes: dict = {}

    async def anchor(pg):
        return await pg.fetchrow(ANCHOR)

    async def requests(pg):
        return await store.pending_requests(pg, region_id=None, request_ids=None, for_update=False)

    async def plan(pg):
        pending = await requests(pg)
        return await planning.plan(pg, pending, today=today, limits=limits)

    async def positions(pg):
        pending = await requests(pg)
        rows = await store.candidate_positions(pg, material_ids=sorted({r["material_id"] for r in pending}),
                                               groups=[], today=today)
        shapes["positions"] = len(rows)
        return rows

    async def memberships(pg):
        rows = await store.memberships(pg, [p["account_id"] for p in await positions(pg)], today)
        shapes["memberships"] = sum(len(m["target_ids"]) for m in rows)
        shapes["targets_counted"] = len({t for m in rows for t in m["target_ids"]})
        return rows

    async def floors(pg):
        _, ruleset = await rules_store.ruleset(pg)
        ids = {t for m in await memberships(pg) for t in m["target_ids"]}
        return await planning.load_floors(pg, today, ruleset, ids)

    try:
        runs: dict[str, list[float]] = {"anchor": [], "plan": [], "positions": [], "memberships": [], "floors": []}
        planned = None
        for _ in range(3):  # interleaved, so load from other processes hits each alike
            runs["anchor"].append((await timed(db, anchor, commit=False))[0])
            seconds, planned = await timed(db, plan, commit=False)
            runs["plan"].append(seconds)
            runs["positions"].append((await timed(db, positions, commit=False))[0])
            seconds, _ = await timed(db, memberships, commit=False)
            runs["memberships"].append(seconds - runs["positions"][-1])  # its own share
            seconds, _ = await timed(db, floors, commit=False)
            runs["floors"].append(seconds - runs["positions"][-1] - runs["memberships"][-1])
    finally:
        await db.dispose()
    solution = planned.solution
    filled = Counter()
    for request_id, request in planned.requests.items():
        filled["planned" if solution.unfilled.get(request_id, 0) == 0 else "short"] += 1
    best = {k: min(v) for k, v in runs.items()}
    return {**counts, "load_seconds": load_seconds, "anchor_seconds": best["anchor"], "plan_seconds": best["plan"],
            "positions_seconds": best["positions"], "memberships_seconds": best["memberships"],
            "floors_seconds": best["floors"], **shapes, "lines": len(solution.lines), "requests_filled": dict(filled),
            "requests": len(planned.requests), "floors_bound": len(planned.bound), "load_average": os.getloadavg()[0], "runs": runs,
            "solver": {"build_ms": solution.build_ms, "solve_ms": solution.solve_ms, "reach_ms": solution.reach_ms,
                       "lp_ms": solution.lp_ms, "explain_ms": solution.explain_ms, "arcs": solution.arcs,
                       "priced_in": solution.priced_in, "integral_by": solution.integral_by}}


def main() -> None:
    args = national_arguments(__doc__, requests=300)
    with throwaway_database(args.database_url, "stockpile_bench_plan") as url:
        r = asyncio.run(measure(url, args))
    anchor = r["anchor_seconds"]

    def ratio(key: str) -> str:
        return f"{r[key]:.3f} s = {r[key] / anchor:.1f} × anchor"

    print(f"\nstockpile planning benchmark — {r['lots']} lots, {r['targets']} targets, {r['warehouses']} warehouses, "
          f"{r['requests']} requests (load {r['load_seconds']:.0f} s; machine load average {r['load_average']:.1f} "
          f"on {os.cpu_count()} cores)")
    print(f"{'bare count(*), sum(…) FROM lots (anchor)':<44}{anchor:.3f} s")
    print(f"{'a plan of every pending request':<44}{ratio('plan_seconds')} — {r['lines']} lines; requests "
          f"{r['requests_filled']}; {r['floors_bound']} floors bound it")
    print(f"{'  of which: candidate positions':<44}{ratio('positions_seconds')} ({r['positions']} positions)")
    print(f"{'  of which: the targets they count toward':<44}{ratio('memberships_seconds')} "
          f"({r['memberships']} pairs, {r['targets_counted']} targets)")
    print(f"{'  of which: those targets floors':<44}{ratio('floors_seconds')}")
    s = r["solver"]
    print(f"{'  of which: the model and its solve':<44}{(s['build_ms'] + s['solve_ms']) / 1000:.3f} s (build "
          f"{s['build_ms']:.0f} ms, solve {s['solve_ms']:.0f} ms: reach {s['reach_ms']:.0f} ms, LPs {s['lp_ms']:.0f} ms; "
          f"{s['arcs']} arcs, {s['priced_in']} priced in, integral by {s['integral_by']}); explained in {s['explain_ms']:.0f} ms")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"planning-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(r, indent=2, default=str))


if __name__ == "__main__":
    main()
