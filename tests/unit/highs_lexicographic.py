"""The independent reference of test_allocation_exact.py: the allocation model solved by HiGHS, in
its own process (the HiGHS and OR-Tools wheels clash in one).

Reads one JSON instance per line on stdin, answers one JSON line per instance on stdout::

    {"quantity": [...], "tier": [...], "available": [...],
     "arcs": [[request, supply, cost], ...],                   every allowed arc, at any distance
     "floors": [[headroom, [[supply, weight], ...]], ...]}
    -> {"fills": [...], "mip_cost": c, "lp_cost": c}

Each tier's fill is maximised as a MIP (integral quantities) with the tiers above held at their
optimum; then the least cost is found as a MIP and as an LP (its relaxation), with every tier held.
It shares no code with stockpile.
"""

import json
import sys

import highspy
import numpy as np


def solve(instance: dict) -> dict:
    quantity, tier, available = instance["quantity"], instance["tier"], instance["available"]
    arcs = instance["arcs"]
    n = len(arcs)
    columns = [[] for _ in range(n)]
    rows_lower, rows_upper = [], []

    def row(lower, upper, members):
        r = len(rows_lower)
        rows_lower.append(lower)
        rows_upper.append(upper)
        for a, value in members:
            columns[a].append((r, value))

    for d, q in enumerate(quantity):
        row(-highspy.kHighsInf, q, [(a, 1.0) for a, arc in enumerate(arcs) if arc[0] == d])
    for s, units in enumerate(available):
        row(-highspy.kHighsInf, units, [(a, 1.0) for a, arc in enumerate(arcs) if arc[1] == s])
    for headroom, members in instance["floors"]:
        weight = dict(members)
        row(-highspy.kHighsInf, headroom, [(a, float(weight[arc[1]])) for a, arc in enumerate(arcs) if arc[1] in weight])
    tier_rows = []
    for t in range(4):
        tier_rows.append(len(rows_lower))
        row(-highspy.kHighsInf, highspy.kHighsInf, [(a, 1.0) for a, arc in enumerate(arcs) if tier[arc[0]] == t])

    def run(cost, integral: bool, maximise: bool) -> tuple[float, list[float]]:
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, len(rows_lower)
        lp.col_cost_ = np.array(cost, dtype=np.float64)
        lp.col_lower_ = np.zeros(n)
        lp.col_upper_ = np.full(n, highspy.kHighsInf)
        lp.row_lower_ = np.array(rows_lower, dtype=np.float64)
        lp.row_upper_ = np.array(rows_upper, dtype=np.float64)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        starts, index, value = [0], [], []
        for column in columns:
            index += [r for r, _ in column]
            value += [v for _, v in column]
            starts.append(len(index))
        lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
        lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
        lp.a_matrix_.value_ = np.array(value, dtype=np.float64)
        if maximise:
            lp.sense_ = highspy.ObjSense.kMaximize
        if integral:
            lp.integrality_ = [highspy.HighsVarType.kInteger] * n
        highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
        highs.setOptionValue("mip_rel_gap", 0.0)
        highs.setOptionValue("mip_abs_gap", 1e-9)
        highs.passModel(lp)
        highs.run()
        status = highs.modelStatusToString(highs.getModelStatus())
        if status != "Optimal":
            raise RuntimeError(status)
        return highs.getInfo().objective_function_value, list(highs.getSolution().col_value)

    fills = [0] * 4
    for t in range(4):
        if n == 0 or t not in tier:
            continue
        best, _ = run([1.0 if tier[arc[0]] == t else 0.0 for arc in arcs], True, True)
        fills[t] = round(best)
        rows_lower[tier_rows[t]] = fills[t]
    if n == 0:
        return {"fills": fills, "mip_cost": 0.0, "lp_cost": 0.0}
    mip_cost, _ = run([float(arc[2]) for arc in arcs], True, False)
    lp_cost, _ = run([float(arc[2]) for arc in arcs], False, False)
    return {"fills": fills, "mip_cost": mip_cost, "lp_cost": lp_cost}


def main() -> None:
    for line in sys.stdin:
        print(json.dumps(solve(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
