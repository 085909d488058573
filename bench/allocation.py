"""Allocation planning at national scale: the lexicographic planner (GLOP), with HiGHS as the anchor.

    .venv/bin/python -m bench.allocation [--seed 1] [--warehouses 2000] [--positions 10000]
                                         [--requests 1000] [--k 50] [--repeat 3] [--output FILE]
                                         [--capacities 0]

Generates a seeded national instance: warehouses clustered around cities across a country-sized
box, positions of six materials (three substitution groups) owned by military, civilian and
enterprise parties, ~18,000 reserve targets that overlap without nesting (per depot: each category
and each material over every owner; per district, province and nation: each sector's category; per
province: each owner's category), requests (a quarter of them around one crisis area, so stock there
is contested) of every priority, an emergency-level rule table and, with ``--capacities``, that many
capacities (a daily quantity from a lead day, delivering to a province) as sources of the solve. Then it times
`stockpile.domain.allocation.solve` (build, solve — of which pricing the reach and the LPs — and
explanation, best of ``--repeat``), exports the final model (every arc priced in) and, in a separate
process (HiGHS and OR-Tools wheels clash in one), solves the same lexicographic LPs with HiGHS:
fills per tier (must be equal), costs and times. Needs highspy (the test extra; installed on first use).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
AIM_MS = 2000.0
TODAY = date(2027, 1, 15)
# (material id, substitution group, category)
MATERIALS = [(1, "motor-fuel", "fuel"), (2, "motor-fuel", "fuel"), (3, "rations", "food"), (4, "rations", "food"),
             (5, "trauma", "medical"), (6, None, "medical")]
SECTORS = ("military", "civilian", "enterprise")
PRIORITY_WEIGHTS = {"flash": 5, "immediate": 15, "priority": 30, "routine": 50}
CRISIS = (50.6, 23.4)  # lat, lon of the contested area
DEAREST_PREFERENCE = 40  # the emergency loan's: no rule of the table costs more


def generate(seed: int, n_warehouses: int, n_positions: int, n_requests: int, n_capacities: int = 0):
    """The instance: demands, supplies, each reserve target's headroom, the rule callable and the
    capacities, from one seed (the capacities from their own stream: the rest is the same without them).

    Targets overlap without nesting, as national reserves do: per depot, each category and each
    material over every owner; per district, province and the nation, each sector's category; per
    province, each owner's category. A position counts toward one of each family (seven)."""
    from stockpile.domain.allocation import Allowance, Demand, Supply
    from stockpile.domain.potential import Tasked

    rng = random.Random(seed)
    cities = [(rng.uniform(49.2, 54.6), rng.uniform(14.3, 23.9)) for _ in range(40)]
    sites = []
    for w in range(1, n_warehouses + 1):
        if rng.random() < 0.7:
            lat, lon = rng.choice(cities)
            sites.append((w, lat + rng.gauss(0, 0.25), lon + rng.gauss(0, 0.35)))
        else:
            sites.append((w, rng.uniform(49.0, 54.8), rng.uniform(14.1, 24.1)))
    province = {w: int((lat - 49.0) // 1.2) * 10 + int((lon - 14.0) // 2.0) for w, lat, lon in sites}
    district = {w: (int((lat - 49.0) // 0.25), int((lon - 14.0) // 0.4)) for w, lat, lon in sites}
    owners = [(o, SECTORS[o % 3]) for o in range(1, 31)]

    supplies, stock = [], {}
    for key in range(1, n_positions + 1):
        warehouse, lat, lon = rng.choice(sites)
        material, group, category = rng.choice(MATERIALS)
        owner, sector = rng.choice(owners)
        if category == "fuel" and rng.random() < 0.5:
            expires_on = None
        else:
            expires_on = TODAY + timedelta(days=rng.randint(-20, 1500))
        available = rng.randint(100, 5000)
        floors = (f"depot:{warehouse}:{category}", f"depot:{warehouse}:m{material}",
                  f"district:{district[warehouse]}:{sector}:{category}",
                  f"province:{province[warehouse]}:{sector}:{category}", f"nation:{sector}:{category}",
                  f"province:{province[warehouse]}:owner{owner}:{category}")
        for target in floors:
            stock[target] = stock.get(target, 0) + available
        supplies.append(Supply(key=key, lot_id=f"lot-{key}", owner_id=owner, owner_sector=sector,
                               warehouse_id=warehouse, latitude=lat, longitude=lon, material_id=material,
                               substitution_group=group, category=category, available=available,
                               expires_on=expires_on, floors=floors))
    # Headroom above the protected floor: from nothing (at the floor) to everything.
    headroom = {t: int(total * rng.choice([0.0, 0.3, 0.6, 0.9, 1.0, 1.0])) for t, total in sorted(stock.items())}

    demands = []
    priorities, weights = list(PRIORITY_WEIGHTS), list(PRIORITY_WEIGHTS.values())
    crisis_sites = sorted(sites, key=lambda s: math.dist(s[1:], CRISIS))[:60]
    for n in range(n_requests):
        warehouse, lat, lon = rng.choice(crisis_sites if rng.random() < 0.25 else sites)
        material, group, category = rng.choice(MATERIALS)
        by_group = group is not None and rng.random() < 0.6
        demands.append(Demand(request_id=f"REQ-{n:05d}", priority=rng.choices(priorities, weights)[0],
                              requester_sector=rng.choice(("military", "civilian", "civilian")),
                              material_id=None if by_group else material,
                              substitution_group=group if by_group else None, category=category,
                              latitude=lat, longitude=lon, quantity=rng.randint(500, 20000),
                              needed_by=TODAY + timedelta(days=rng.randint(1, 30)),
                              destination_warehouse_id=warehouse, destination_region_id=province[warehouse]))

    table = {}
    for asker in ("military", "civilian"):
        for category in ("fuel", "food", "medical"):
            table[(asker, asker, category)] = Allowance("own-sector", 0)
        table[("civilian", "enterprise", category)] = Allowance("enterprise-contract", 10)
    for category in ("food", "medical"):
        table[("civilian", "military", category)] = Allowance("emergency-loan", DEAREST_PREFERENCE)
    for owner in ("civilian", "enterprise"):
        table[("military", owner, "fuel")] = Allowance("requisition", 25)

    def rules(demand, supply):
        return table.get((demand.requester_sector, supply.owner_sector, supply.category))

    made = random.Random(seed + 1)
    capacities = []
    for key in range(1, n_capacities + 1):
        material, group, _ = made.choice(MATERIALS)
        capacities.append(Tasked(key=key, material_id=material, daily=made.randint(100, 3000),
                                 lead_days=made.randint(0, 20), region_ids=frozenset({province[made.choice(sites)[0]]}),
                                 substitution_group=group))
    return demands, supplies, headroom, rules, capacities


def planned(solve, instance, k: int, **options):
    demands, supplies, headroom, rules, capacities = instance
    return solve(demands, supplies, headroom, rules, capacities=capacities, today=TODAY,
                 dearest_preference=DEAREST_PREFERENCE, k=k, **options)


def with_capacity(demands, solution) -> dict[str, int]:
    """Units planned per priority, from stock and capacity (what the solve's tiers count)."""
    fill = dict(solution.fill)
    priority = {d.request_id: d.priority for d in demands}
    for t in solution.taskings:
        fill[priority[t.request_id]] += t.quantity
    return fill


def time_planner(instance, k: int, repeat: int) -> tuple[dict, object]:
    from stockpile.domain.allocation import solve

    demands, supplies, headroom, rules, _ = instance
    solve(demands[:5], supplies[:50], headroom, rules, k=k)  # loads OR-Tools outside the timed runs
    runs = [planned(solve, instance, k, time_limit_s=600) for _ in range(repeat)]
    best = min(runs, key=lambda s: s.build_ms + s.solve_ms)
    assert all(run.objective == best.objective and run.lines == best.lines for run in runs), "plans differ"
    figures = {
        "build_ms": [round(run.build_ms, 1) for run in runs],
        "solve_ms": [round(run.solve_ms, 1) for run in runs],
        "reach_ms": [round(run.reach_ms, 1) for run in runs],
        "lp_ms": [round(run.lp_ms, 1) for run in runs],
        "explain_ms": [round(run.explain_ms, 1) for run in runs],
        "build_solve_ms": round(best.build_ms + best.solve_ms, 1),
        "objective": best.objective, "lp_cost": best.lp_cost, "arcs": best.arcs, "priced_in": best.priced_in,
        "widened": best.widened, "pricing_rounds": best.pricing_rounds, "integral_by": best.integral_by,
        "fill": with_capacity(demands, best),
    }
    return figures, best


def export_model(instance, k: int, path: Path) -> dict:
    """The final model of a plan (every arc priced in), as arrays for the HiGHS process."""
    from stockpile.domain.allocation import solve

    kept = {}

    def keep(model):
        kept["model"] = model

    planned(solve, instance, k, time_limit_s=600, on_model=keep)
    m = kept["model"]
    np.savez(path, quantity=np.array(m.quantity, dtype=np.int64), tier=np.array(m.tier_of, dtype=np.int64),
             available=np.array(m.available, dtype=np.int64), arc_request=np.array(m.arc_request, dtype=np.int64),
             arc_supply=np.array(m.arc_supply, dtype=np.int64), arc_cost=np.array(m.arc_cost, dtype=np.int64),
             floor_headroom=np.array([f.headroom for f in m.floor_rows], dtype=np.int64),
             floor_row=np.repeat(np.arange(len(m.floor_rows)), [len(f.supplies) for f in m.floor_rows]),
             floor_supply=np.array([s for f in m.floor_rows for s in f.supplies], dtype=np.int64),
             floor_weight=np.array([w for f in m.floor_rows for w in f.weights], dtype=np.int64))
    return {"arcs": len(m.arc_request), "positions": len(m.available), "requests": len(m.quantity),
            "floor_rows": len(m.floor_rows)}


def solve_with_highs(path: Path, solver: str = "choose") -> dict:
    """The same LP (x per arc, y per position; request, balance, floor and tier rows), tier by tier
    then cost, each tier held at ⌊its optimum⌋ as the planner does, warm-started by HiGHS."""
    import highspy

    data = np.load(path)
    started = time.perf_counter()
    n_arcs, n_pos, n_req = len(data["arc_request"]), len(data["available"]), len(data["quantity"])
    n_floor = len(data["floor_headroom"])
    r_balance, r_floor, r_tier = n_req, n_req + n_pos, n_req + n_pos + n_floor
    # columns: arcs then positions; entries as (row, column, value)
    arcs = np.arange(n_arcs)
    rows = np.concatenate([data["arc_request"], r_balance + data["arc_supply"], r_tier + data["tier"][data["arc_request"]],
                           r_balance + np.arange(n_pos), r_floor + data["floor_row"]])
    cols = np.concatenate([arcs, arcs, arcs, n_arcs + np.arange(n_pos), n_arcs + data["floor_supply"]])
    vals = np.concatenate([np.ones(n_arcs), -np.ones(n_arcs), np.ones(n_arcs), np.ones(n_pos),
                           data["floor_weight"].astype(np.float64)])
    order = np.lexsort((rows, cols))
    rows, cols, vals = rows[order], cols[order], vals[order]
    n_cols = n_arcs + n_pos
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_cols, r_tier + 4
    lp.col_cost_ = np.zeros(n_cols)
    lp.col_lower_ = np.zeros(n_cols)
    lp.col_upper_ = np.concatenate([np.full(n_arcs, highspy.kHighsInf), data["available"].astype(np.float64)])
    inf = highspy.kHighsInf
    lp.row_lower_ = np.concatenate([np.full(n_req, -inf), np.zeros(n_pos), np.full(n_floor, -inf), np.full(4, -inf)])
    lp.row_upper_ = np.concatenate([data["quantity"].astype(np.float64), np.zeros(n_pos),
                                    data["floor_headroom"].astype(np.float64), np.full(4, inf)])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.searchsorted(cols, np.arange(n_cols + 1)).astype(np.int32)
    lp.a_matrix_.index_ = rows.astype(np.int32)
    lp.a_matrix_.value_ = vals
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("solver", solver)
    highs.passModel(lp)
    built = time.perf_counter()
    fills, tiers = [0] * 4, data["tier"][data["arc_request"]]
    for t in range(4):
        if not (data["tier"] == t).any():
            continue
        highs.changeColsCost(n_cols, np.arange(n_cols, dtype=np.int32),
                             np.concatenate([-(tiers == t).astype(np.float64), np.zeros(n_pos)]))
        highs.run()
        fills[t] = math.floor(-highs.getInfo().objective_function_value + 1e-6)
        highs.changeRowBounds(r_tier + t, float(fills[t]), inf)
    highs.changeColsCost(n_cols, np.arange(n_cols, dtype=np.int32),
                         np.concatenate([data["arc_cost"].astype(np.float64), np.zeros(n_pos)]))
    highs.run()
    solved = time.perf_counter()
    return {"status": highs.modelStatusToString(highs.getModelStatus()), "fills": fills,
            "lp_cost": highs.getInfo().objective_function_value,
            "build_ms": round((built - started) * 1000, 1), "solve_ms": round((solved - built) * 1000, 1)}


def compare_with_highs(instance, k: int, solver: str, planner: dict) -> tuple[dict, dict | None]:
    """Export the final model, solve it with HiGHS in a child process, print both results and times."""
    import importlib.util

    if importlib.util.find_spec("highspy") is None:  # the test extra, installed on first use
        print("installing highspy ...")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "highspy>=1.7"], check=True)
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "model.npz"
        shape = export_model(instance, k, path)
        done = subprocess.run([sys.executable, "-m", "bench.allocation", "--highs", str(path),
                               "--highs-solver", solver], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"HiGHS process failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        return shape, None
    highs = json.loads(done.stdout.strip().splitlines()[-1])
    fills = [planner["fill"][p] for p in PRIORITY_WEIGHTS]
    highs["fills_equal"] = highs["fills"] == fills
    highs["cost_gap"] = (planner["objective"] - highs["lp_cost"]) / max(1.0, highs["lp_cost"])
    print(f"HiGHS, the same lexicographic LPs (solver={solver}; {shape['arcs']:,} arcs, {shape['positions']:,} positions, "
          f"{shape['floor_rows']:,} floor rows): {highs['status']}, build {highs['build_ms']} ms, "
          f"solve {highs['solve_ms']} ms")
    print(f"fill per tier: planner {fills}  HiGHS {highs['fills']} -> {'EQUAL' if highs['fills_equal'] else 'DIFFERENT'}; "
          f"cost: planner {planner['objective']:,} (its LP {planner['lp_cost']:,.1f})  HiGHS LP {highs['lp_cost']:,.1f} "
          f"-> gap {highs['cost_gap']:.5%}")
    print(f"planner build + solve / HiGHS solve of its final LPs: "
          f"{planner['build_solve_ms'] / highs['solve_ms']:.2f} x")
    return shape, highs


def tier_fill(instance, solution, capacity: bool = False) -> dict[str, str]:
    demands = instance[0]
    fill, got_by = {}, with_capacity(demands, solution) if capacity else solution.fill
    for priority in PRIORITY_WEIGHTS:
        asked = sum(d.quantity for d in demands if d.priority == priority)
        got = got_by[priority]
        fill[priority] = f"{got / asked:.1%}" if asked else "-"
    return fill


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warehouses", type=int, default=2000)
    parser.add_argument("--positions", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--capacities", type=int, default=0, help="capacities as sources of the solve")
    parser.add_argument("--highs-solver", default="choose", choices=["choose", "simplex", "ipm", "pdlp"],
                        help="HiGHS's LP method (its `solver` option)")
    parser.add_argument("--no-highs", action="store_true", help="time the planner only")
    parser.add_argument("--highs", type=Path, help=argparse.SUPPRESS)  # the HiGHS side, in its own process
    args = parser.parse_args()
    if args.highs:
        print(json.dumps(solve_with_highs(args.highs, args.highs_solver)))
        return 0

    instance = generate(args.seed, args.warehouses, args.positions, args.requests, args.capacities)
    demands, supplies, headroom, _, capacities = instance
    print(f"instance: {len(supplies):,} positions at {len({s.warehouse_id for s in supplies}):,} warehouses, "
          f"{len(demands):,} requests, {len(headroom):,} overlapping reserve targets, {len(capacities):,} capacities, "
          f"k={args.k}, seed={args.seed}")
    planner, solution = time_planner(instance, args.k, args.repeat)
    short = sum(1 for q in solution.unfilled.values() if q)
    reasons = {}
    for listed in solution.reasons.values():
        for reason in listed:
            reasons[reason] = reasons.get(reason, 0) + 1
    print(f"planner (GLOP, lexicographic): {planner['arcs']:,} arcs ({planner['priced_in']:,} priced in beyond the k "
          f"nearest, {planner['widened']} requests widened, {planner['pricing_rounds']} LP solves), "
          f"{len(solution.lines):,} lines, integral by {planner['integral_by']}, {short} requests short {reasons}; "
          f"fill by tier {tier_fill(instance, solution)}"
          + (f"; {len(solution.taskings):,} taskings, with capacity {tier_fill(instance, solution, True)}"
             if capacities else ""))
    print(f"  build {planner['build_ms']} ms, solve {planner['solve_ms']} ms (of which reach {planner['reach_ms']} ms, "
          f"LP {planner['lp_ms']} ms), explain {planner['explain_ms']} ms")

    network, highs = None, None
    if not args.no_highs:
        network, highs = compare_with_highs(instance, args.k, args.highs_solver, planner)
    total = planner["build_solve_ms"]
    print(f"planner build + solve (best run): {total:.0f} ms vs the {AIM_MS:.0f} ms aim: "
          f"{total / AIM_MS:.2f} x -> {'within' if total <= AIM_MS else 'OVER'}")

    output = args.output or ROOT / "bench" / "results" / (
        f"allocation-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "planner": planner,
                                  "network": network, "highs": highs, "short": short, "reasons": reasons,
                                  "fill": tier_fill(instance, solution),
                                  "median_build_solve_ms": statistics.median(
                                      b + s for b, s in zip(planner["build_ms"], planner["solve_ms"]))}, indent=2))
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
