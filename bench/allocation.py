"""Allocation planning at national scale: OR-Tools min-cost flow, with HiGHS (LP) as the anchor.

    .venv/bin/python -m bench.allocation [--seed 1] [--warehouses 2000] [--positions 12000]
                                         [--requests 1200] [--k 50] [--repeat 3] [--output FILE]

Generates a seeded national instance: warehouses clustered around cities across a country-sized
box, positions of six materials (three substitution groups) owned by military, civilian and
enterprise parties, civilian and military positions in floor pools per sector × category × province,
requests (a quarter of them around one crisis area, so stock there is contested) of every priority,
and an emergency-level rule table (own sector; civil relief may borrow military food and medicine;
military may requisition enterprise and civilian fuel; civilians may buy from enterprises).
Then it times `stockpile.domain.allocation.solve` (build, solve and explanation separately, best
of ``--repeat``), exports the same network to an .npz file and, in a separate process (HiGHS and
OR-Tools wheels clash in one), solves it as an LP with HiGHS: both objectives, equal or not, and
both times. Needs the `bench` extra (`pip install -e .[bench]`, i.e. highspy).
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
AIM_MS = 1000.0
TODAY = date(2027, 1, 15)
# (material id, substitution group, category)
MATERIALS = [(1, "motor-fuel", "fuel"), (2, "motor-fuel", "fuel"), (3, "rations", "food"), (4, "rations", "food"),
             (5, "trauma", "medical"), (6, None, "medical")]
SECTORS = ("military", "civilian", "enterprise")
PRIORITY_WEIGHTS = {"flash": 5, "immediate": 15, "priority": 30, "routine": 50}
CRISIS = (50.6, 23.4)  # lat, lon of the contested area


def generate(seed: int, n_warehouses: int, n_positions: int, n_requests: int):
    """The instance: demands, supplies, pools and the rule callable, all from one seed."""
    from stockpile.domain.allocation import Allowance, Demand, Supply

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
    owners = [(o, SECTORS[o % 3]) for o in range(1, 31)]

    supplies, pooled = [], {}
    for key in range(1, n_positions + 1):
        warehouse, lat, lon = rng.choice(sites)
        material, group, category = rng.choice(MATERIALS)
        owner, sector = rng.choice(owners)
        if category == "fuel" and rng.random() < 0.5:
            expires_on = None
        else:
            expires_on = TODAY + timedelta(days=rng.randint(-20, 1500))
        pool = None if sector == "enterprise" else f"{sector}-{category}-{province[warehouse]}"
        available = rng.randint(100, 5000)
        if pool is not None:
            pooled[pool] = pooled.get(pool, 0) + available
        supplies.append(Supply(key=key, lot_id=f"lot-{key}", owner_id=owner, owner_sector=sector,
                               warehouse_id=warehouse, latitude=lat, longitude=lon, material_id=material,
                               substitution_group=group, category=category, available=available,
                               expires_on=expires_on, pool=pool))
    # Headroom above the protected floor: from nothing (at the floor) to everything.
    pools = {pool: int(total * rng.choice([0.0, 0.3, 0.6, 0.9, 1.0])) for pool, total in sorted(pooled.items())}

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
                              destination_warehouse_id=warehouse))

    table = {}
    for asker in ("military", "civilian"):
        for category in ("fuel", "food", "medical"):
            table[(asker, asker, category)] = Allowance("own-sector", 0)
        table[("civilian", "enterprise", category)] = Allowance("enterprise-contract", 10)
    for category in ("food", "medical"):
        table[("civilian", "military", category)] = Allowance("emergency-loan", 40)
    for owner in ("civilian", "enterprise"):
        table[("military", owner, "fuel")] = Allowance("requisition", 25)

    def rules(demand, supply):
        return table.get((demand.requester_sector, supply.owner_sector, supply.category))

    return demands, supplies, pools, rules


def time_planner(instance, k: int, repeat: int) -> tuple[dict, object]:
    from stockpile.domain.allocation import solve

    demands, supplies, pools, rules = instance
    solve(demands[:5], supplies[:50], pools, rules, k=k)  # loads OR-Tools outside the timed runs
    runs = []
    for _ in range(repeat):
        solution = solve(demands, supplies, pools, rules, k=k)
        runs.append(solution)
    best = min(runs, key=lambda s: s.build_ms + s.solve_ms + s.explain_ms)
    assert all(run.objective == best.objective and run.lines == best.lines for run in runs), "plans differ"
    figures = {
        "build_ms": [round(run.build_ms, 1) for run in runs],
        "solve_ms": [round(run.solve_ms, 1) for run in runs],
        "explain_ms": [round(run.explain_ms, 1) for run in runs],
        "total_ms": round(best.build_ms + best.solve_ms + best.explain_ms, 1),
        "objective": best.objective,
        "arcs": best.arcs,
    }
    return figures, best


def export_network(instance, k: int, path: Path) -> dict:
    from stockpile.domain.allocation import build_network

    demands, supplies, pools, rules = instance
    network = build_network(demands, supplies, pools, rules, k=k)
    np.savez(path, tails=network.tails, heads=network.heads, capacities=network.capacities,
             unit_costs=network.unit_costs, node_supplies=network.node_supplies)
    return {"nodes": len(network.node_supplies), "arcs_total": len(network.tails),
            "positions_with_arcs": len(network.supply_node), "pools_with_arcs": len(network.pool_node)}


def solve_with_highs(path: Path, solver: str = "choose") -> dict:
    """The network as an LP (one column per arc, one balance row per node), solved by HiGHS."""
    import highspy

    data = np.load(path)
    tails, heads = data["tails"], data["heads"]
    n_arcs, n_nodes = len(tails), len(data["node_supplies"])
    started = time.perf_counter()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_arcs, n_nodes
    lp.col_cost_ = data["unit_costs"].astype(np.float64)
    lp.col_lower_ = np.zeros(n_arcs)
    lp.col_upper_ = data["capacities"].astype(np.float64)
    balance = data["node_supplies"].astype(np.float64)
    lp.row_lower_, lp.row_upper_ = balance, balance
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(0, 2 * n_arcs + 1, 2, dtype=np.int32)
    lp.a_matrix_.index_ = np.column_stack([tails, heads]).ravel().astype(np.int32)
    lp.a_matrix_.value_ = np.tile([1.0, -1.0], n_arcs)
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("solver", solver)
    highs.passModel(lp)
    passed = time.perf_counter()
    highs.run()
    solved = time.perf_counter()
    flows = np.asarray(highs.getSolution().col_value)
    integral = np.rint(flows).astype(np.int64)
    return {
        "status": highs.modelStatusToString(highs.getModelStatus()),
        "objective": highs.getInfo().objective_function_value,
        "objective_of_rounded_flows": int(integral @ data["unit_costs"]),
        "integral": bool(np.allclose(flows, integral, atol=1e-6)),
        "build_ms": round((passed - started) * 1000, 1),
        "solve_ms": round((solved - passed) * 1000, 1),
    }


def compare_with_highs(instance, k: int, solver: str, planner: dict) -> tuple[dict, dict | None]:
    """Export the network, solve it with HiGHS in a child process, print both objectives and times."""
    import importlib.util

    if importlib.util.find_spec("highspy") is None:  # the bench extra, installed on first use
        print("installing highspy (the bench extra) ...")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "highspy>=1.7"], check=True)
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "network.npz"
        network = export_network(instance, k, path)
        done = subprocess.run([sys.executable, "-m", "bench.allocation", "--highs", str(path),
                               "--highs-solver", solver], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"HiGHS process failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        return network, None
    highs = json.loads(done.stdout.strip().splitlines()[-1])
    highs["equal"] = highs["objective_of_rounded_flows"] == planner["objective"] and math.isclose(
        highs["objective"], planner["objective"], rel_tol=1e-9, abs_tol=0.5)
    print(f"HiGHS LP, solver={solver} ({network['nodes']:,} nodes, {network['arcs_total']:,} arcs): "
          f"{highs['status']}, build {highs['build_ms']} ms, solve {highs['solve_ms']} ms, "
          f"integral flows: {highs['integral']}")
    print(f"objectives: OR-Tools {planner['objective']:,}  HiGHS {highs['objective']:,.1f} "
          f"(rounded flows {highs['objective_of_rounded_flows']:,}) -> {'EQUAL' if highs['equal'] else 'DIFFERENT'}")
    print(f"solve time HiGHS / OR-Tools (best run): {highs['solve_ms'] / min(planner['solve_ms']):.1f} x")
    return network, highs


def tier_fill(instance, solution) -> dict[str, str]:
    demands = instance[0]
    fill = {}
    for priority in PRIORITY_WEIGHTS:
        asked = sum(d.quantity for d in demands if d.priority == priority)
        got = sum(solution.planned[d.request_id] for d in demands if d.priority == priority)
        fill[priority] = f"{got / asked:.1%}" if asked else "-"
    return fill


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warehouses", type=int, default=2000)
    parser.add_argument("--positions", type=int, default=12000)
    parser.add_argument("--requests", type=int, default=1200)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--highs-solver", default="choose", choices=["choose", "simplex", "ipm", "pdlp"],
                        help="HiGHS's LP method (its `solver` option)")
    parser.add_argument("--no-highs", action="store_true", help="time the planner only")
    parser.add_argument("--highs", type=Path, help=argparse.SUPPRESS)  # the HiGHS side, in its own process
    args = parser.parse_args()
    if args.highs:
        print(json.dumps(solve_with_highs(args.highs, args.highs_solver)))
        return 0

    instance = generate(args.seed, args.warehouses, args.positions, args.requests)
    demands, supplies, pools, _ = instance
    print(f"instance: {len(supplies):,} positions at {len({s.warehouse_id for s in supplies}):,} warehouses, "
          f"{len(demands):,} requests, {len(pools)} floor pools, k={args.k}, seed={args.seed}")
    planner, solution = time_planner(instance, args.k, args.repeat)
    short = sum(1 for q in solution.unfilled.values() if q)
    reasons = {}
    for listed in solution.reasons.values():
        for reason in listed:
            reasons[reason] = reasons.get(reason, 0) + 1
    print(f"OR-Tools min-cost flow: {planner['arcs']:,} candidate arcs, {len(solution.lines):,} lines, "
          f"{short} requests short {reasons}; fill by tier {tier_fill(instance, solution)}")
    print(f"  build {planner['build_ms']} ms, solve {planner['solve_ms']} ms, explain {planner['explain_ms']} ms")

    network, highs = None, None
    if not args.no_highs:
        network, highs = compare_with_highs(instance, args.k, args.highs_solver, planner)
    total = planner["total_ms"]
    print(f"planner total (build + solve + explain, best run): {total:.0f} ms vs the {AIM_MS:.0f} ms aim: "
          f"{total / AIM_MS:.2f} x -> {'within' if total <= AIM_MS else 'OVER'}")

    output = args.output or ROOT / "bench" / "results" / (
        f"allocation-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "planner": planner,
                                  "network": network, "highs": highs, "short": short, "reasons": reasons,
                                  "fill": tier_fill(instance, solution),
                                  "median_total_ms": statistics.median(
                                      b + s + e for b, s, e in zip(planner["build_ms"], planner["solve_ms"],
                                                                   planner["explain_ms"]))}, indent=2))
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
