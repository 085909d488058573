"""Where the time goes in the single-movement path (companion to bench/ledger.py).

    .venv/bin/python bench/profile_single.py [--workers 1] [--seconds 10] [--lots 1000]
                                             [--database-url postgresql://root@127.0.0.1:5432/postgres]

Same data and load as bench/ledger.py's single-movement phase (wrk, 64 connections,
bench/movements.lua), in three parts, each on a freshly started `stockpile serve`:

1. SQL census: `log_min_duration_statement = 0` on the bench database only, 5 s of load, then the
   server log (Debian: /var/log/postgresql/postgresql-*-main.log; --pg-log to override) is read
   back: statements per second by statement, server time per statement, statements and
   transactions per movement (transactions from pg_stat_database);
2. plain load with CPU accounting (API, PostgreSQL, wrk, other processes);
3. py-spy (`record --nonblocking --subprocesses`, 250 Hz, active threads only) on the API
   processes under load: self time by package and by function, inclusive time of the main
   stages.

Needs root (py-spy attaches with ptrace; the server log is readable by root/adm) and py-spy in
the virtualenv (installed with pip when missing). Drops its database at the end.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing the harness and ledger.py
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as H  # noqa: E402  (bench/harness.py: the measuring harness)
import ledger as L  # noqa: E402  (bench/ledger.py: the same setup and load)

from stockpile.store.engine import plain_url, upgrade, with_database  # noqa: E402


def ensure_py_spy() -> str:
    found = Path(sys.executable).with_name("py-spy")
    if found.exists():
        return str(found)
    if shutil.which("py-spy"):
        return shutil.which("py-spy")
    H.log("installing py-spy from PyPI into the virtualenv …")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    return str(found)


def xacts(url: str, db: str) -> int:
    rows = H.sql(url, f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{db}'")
    return rows[0][0][0]


def normalise(statement: str) -> str:
    text = re.sub(r"\s+", " ", statement).strip()
    return text[:110]


def sql_census(log_path: Path, start: int, end: int, db: str) -> tuple[Counter, Counter, Counter]:
    """Executed statements (count, total ms) and protocol steps, from the server log lines of `db`."""
    count, total_ms, steps = Counter(), Counter(), Counter()
    with open(log_path, "rb") as f:
        f.seek(start)
        text = f.read(end - start).decode(errors="replace")
    entries = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", text)
    pattern = re.compile(r"@" + re.escape(db) + r" LOG:\s+duration: ([\d.]+) ms\s+(.*)", re.S)
    for entry in entries:
        m = pattern.search(entry)
        if not m:
            continue
        ms, rest = float(m.group(1)), m.group(2)
        step = re.match(r"(parse|bind|execute|statement)( [^:]*)?: (.*)", rest, re.S)
        if not step:
            continue
        kind, statement = step.group(1), normalise(step.group(3))
        steps[kind] += 1
        if kind in ("execute", "statement"):
            count[statement] += 1
            total_ms[statement] += ms
        else:
            total_ms[f"({kind}) {statement}"] += ms
    return count, total_ms, steps


PACKAGES = [
    ("stockpile/services/posting", "stockpile.services.posting (group commit)"),
    ("stockpile/api/", "stockpile.api (controllers, auth, audit)"),
    ("stockpile/services/", "stockpile.services (rules)"),
    ("stockpile/store/", "stockpile.store (SQL, row handling)"),
    ("stockpile/domain/", "stockpile.domain"),
    ("stockpile/", "stockpile (other)"),
    ("logging/", "logging (the request log's line)"),
    ("prometheus_client/", "prometheus_client"),
    ("litestar/", "litestar"),
    ("uvicorn/", "uvicorn"),
    ("asyncpg/", "asyncpg"),
    ("msgspec/", "msgspec"),
    ("asyncio/", "asyncio"),
]


def package_of(frame: str) -> str:
    path = frame[frame.rfind("(") + 1:]
    for needle, name in PACKAGES:
        if needle in path:
            return name
    return "other: " + path.split(":")[0][-50:]


# Components, innermost first wins: a sample is charged to the innermost frame that belongs to one
# of these; frames of asyncpg, asyncio and the standard library are charged to their caller.
COMPONENTS = [
    ("rules: prepare_movement (stockpile.services)", r"^prepare_movement \(|stockpile/services/movements|stockpile/domain/"),
    ("Workspace.preload: resolve codes, open receipt lots, lock positions", r"^Workspace\.preload|^Workspace\._resolve_bulk|open_receipt_positions|lock_positions_bulk|resolve_codes"),
    ("Workspace.flush → insert_movements (the one write statement)", r"^insert_movements \(|^Workspace\.flush"),
    ("idempotency Keys.claim / release (claim_many, stored_many, release_many)", r"^Keys\.(claim|release) \(|^(claim_many|stored_many|release_many) \("),
    ("answer: present_posted + msgspec encode", r"^present_posted \(|^_posting \(|format_quantity|^rfc3339 \("),
    ("audit event values (AuditNote.take_event)", r"take_event \(|event_values \(|^request_id \(|stockpile/store/audit"),
    ("idempotency fingerprint (re-decode, sort, sha256)", r"^request_fingerprint \(|^_idempotency_key \("),
    ("transaction begin/commit + pool acquire/release (stockpile.store.db)", r"stockpile/store/db\.py|asyncpg/pool\.py|asyncpg/transaction\.py"),
    ("group commit loop (rest of _drain/_commit/in_transaction/post)", r"stockpile/services/posting"),
    ("auth: bearer middleware, token cache, rate limiter", r"stockpile/api/auth\.py|stockpile/store/tokens\.py"),
    ("request log line and metrics (log_response, logging, prometheus_client)",
     r"^log_response \(|stockpile/logs\.py|logging/__init__\.py|prometheus_client/"),
    ("controller + other stockpile code", r"stockpile/"),
    ("litestar: routing, kwargs/msgspec decoding, middleware, response", r"litestar/"),
    ("uvicorn: HTTP protocol (httptools), ASGI send/receive", r"uvicorn/protocols|uvicorn/middleware"),
]


def component_of(frames: list[str]) -> str:
    if frames and re.search(r"asyncio/runners\.py|asyncio/base_events\.py|uvicorn/server\.py", frames[-1]):
        return "event loop, socket I/O (uvloop, in C)"
    for frame in reversed(frames):
        for name, pattern in COMPONENTS:
            if re.search(pattern, frame):
                return name
    return "other: " + (frames[-1] if frames else "?")[:70]


def profile_report(raw: Path) -> dict:
    stacks: list[tuple[list[str], int]] = []
    for line in raw.read_text(errors="replace").splitlines():
        head, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        if head.startswith("process "):
            cut = head.find('";')
            if cut < 0:
                continue  # a process line without frames
            head = head[cut + 2:]
        frames = [f for f in head.split(";") if f and not f.startswith("thread ")]
        stacks.append((frames, int(n)))
    total = sum(n for _, n in stacks) or 1
    by_component, by_package, by_self, by_incl = Counter(), Counter(), Counter(), Counter()
    strip = re.compile(r":\d+\)$")
    asyncpg_total = 0
    for frames, n in stacks:
        if not frames:
            continue
        frames = [strip.sub(")", f) for f in frames]
        by_component[component_of(frames)] += n
        by_package[package_of(frames[-1])] += n
        by_self[frames[-1]] += n
        for f in set(frames):
            by_incl[f] += n
        if any("(asyncpg/" in f for f in frames):
            asyncpg_total += n
    pct = lambda c: {k: round(100 * v / total, 1) for k, v in c.most_common()}  # noqa: E731
    return {"samples": total, "by_component": pct(by_component), "self_by_package": pct(by_package),
            "self_by_function": dict(list(pct(by_self).items())[:30]),
            "inclusive_by_function": dict(list(pct(by_incl).items())[:60]),
            "asyncpg_inclusive": round(100 * asyncpg_total / total, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgresql://root@127.0.0.1:5432/postgres"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--mode", choices=("single", "batch"), default="single",
                        help="single-movement POSTs (64 connections) or atomic batches of 100 (16 connections)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--lots", type=int, default=1000)
    parser.add_argument("--pg-log", type=Path, help="the server's log file (default: newest /var/log/postgresql/*.log)")
    parser.add_argument("--keep", type=Path, help="directory to keep py-spy's raw output in")
    args = parser.parse_args()

    wrk = H.ensure_tool("wrk", "wrk")
    conns = L.SINGLE_CONNECTIONS if args.mode == "single" else L.BATCH_CONNECTIONS
    per_request = 1 if args.mode == "single" else L.BATCH_SIZE
    py_spy = ensure_py_spy()
    logs = sorted(glob.glob("/var/log/postgresql/postgresql-*.log"), key=os.path.getmtime)
    pg_log = args.pg_log or (Path(logs[-1]) if logs else None)

    db = f"stockpile_bench_{secrets.token_hex(4)}"
    admin_url, url = args.database_url, with_database(args.database_url, db)
    workdir = Path(tempfile.mkdtemp(prefix="stockpile-profile-"))
    started: list = [("databases", (admin_url, [db]))]
    report: dict = {"workers": args.workers, "mode": args.mode}
    try:
        H.sql(admin_url, f'CREATE DATABASE "{db}"')
        upgrade(plain_url(url))
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update({"DATABASE_URL": plain_url(url), "STOCKPILE_DEMO": "false", "STOCKPILE_DATA_DIR": str(workdir / "d"),
                    "STOCKPILE_RATE_LIMIT_PER_SECOND": "1000000000", "STOCKPILE_RATE_LIMIT_BURST": "1000000000"})
        admin = H.make_token(env, "bench-admin", "admin")
        server = H.start_server(env, 1, workdir)
        started.append(("server", server))
        lots_file = workdir / "lots.txt"
        token, lots, _ = L.setup_data(server.base, admin, env, args.lots, lots_file)
        server.stop()
        H.sql(url, "VACUUM ANALYZE")

        # 1. SQL census
        if pg_log is not None and pg_log.exists():
            H.log(f"SQL census: log_min_duration_statement = 0 on {db} only; server log {pg_log}")
            H.sql(admin_url, f'ALTER DATABASE "{db}" SET log_min_duration_statement = 0')
            try:
                server = H.start_server(env, args.workers, workdir)
                started.append(("server", server))
                L.run_wrk(wrk, server.base, token, lots_file, mode=args.mode, connections=conns, seconds=2)
                x0, start = xacts(admin_url, db), pg_log.stat().st_size
                census = L.run_wrk(wrk, server.base, token, lots_file, mode=args.mode, connections=conns, seconds=5)
                x1 = xacts(admin_url, db)
                server.stop()
            finally:
                H.sql(admin_url, f'ALTER DATABASE "{db}" RESET log_min_duration_statement')
            time.sleep(0.5)
            count, total_ms, steps = sql_census(pg_log, start, pg_log.stat().st_size, db)
            movements = (census["requests"] - census["non2xx"]) * per_request
            executed = sum(count.values())
            report["sql"] = {
                "movements": movements, "movements_per_s_with_logging": round(census["movements_per_s"]),
                "transactions_incl_implicit": x1 - x0, "commits": count["COMMIT;"],
                "movements_per_transaction": round(movements / max(1, count["COMMIT;"]), 1),
                "statements_executed": executed, "statements_per_movement": round(executed / max(1, movements), 3),
                "protocol_steps": dict(steps),
                "by_statement": {k: {"count": v, "per_movement": round(v / max(1, movements), 3),
                                     "ms_total": round(total_ms[k], 1), "ms_avg": round(total_ms[k] / v, 3)}
                                 for k, v in count.most_common(25)},
                "server_ms_per_movement": round(sum(total_ms.values()) / max(1, movements), 3),
            }
        else:
            H.log("no PostgreSQL server log found: skipping the SQL census (give --pg-log)")

        # 2 + 3. CPU accounting, then py-spy, under the same load
        server = H.start_server(env, args.workers, workdir)
        started.append(("server", server))
        L.run_wrk(wrk, server.base, token, lots_file, mode=args.mode, connections=conns, seconds=3)
        postmaster = H.find_postmaster(H.sql(admin_url, H.CHECKPOINTER_SQL)[0])
        with H.CpuMeter(server.pid, (db,), postmaster) as cpu:
            plain = L.run_wrk(wrk, server.base, token, lots_file, mode=args.mode, connections=conns, seconds=args.seconds)
        report["plain"] = {"movements_per_s": round(plain["movements_per_s"]), "p50_ms": plain["latency_ms"]["p50"],
                           "p99_ms": plain["latency_ms"]["p99"], "cpu": cpu.result}
        mps = plain["movements_per_s"]
        cores = cpu.result["cores_used"]
        report["plain"]["cpu_us_per_movement"] = {k: round(1e6 * cores[k] / mps) for k in ("api", "load_generator", "machine")}

        raw = (args.keep or workdir) / f"py-spy-{args.workers}w.txt"
        raw.parent.mkdir(parents=True, exist_ok=True)
        H.log(f"py-spy on the API processes for {args.seconds} s under load")
        env_wrk = {**os.environ, "TOKEN": token, "LOTS": str(lots_file), "MODE": args.mode, "RUN": secrets.token_hex(6)}
        load = subprocess.Popen([wrk, "-t2", f"-c{conns}", f"-d{args.seconds + 4}s", "-s", str(L.LUA), server.base],
                                env=env_wrk, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started.append(("process", load))
        time.sleep(2)
        subprocess.run([py_spy, "record", "--pid", str(server.pid), "--subprocesses", "--nonblocking", "--function",
                        "--rate", "250", "--duration", str(args.seconds), "--format", "raw", "--output", str(raw)],
                       check=True, capture_output=True)
        out = load.communicate(timeout=60)[0].decode()
        report["py_spy_run"] = {"movements_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)) * per_request}
        report["profile"] = profile_report(raw)
        server.stop()
    finally:
        H.cleanup(started)
        shutil.rmtree(workdir, ignore_errors=True)

    print_report(report)
    path = L.RESULTS / f"profile-{report['mode']}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    import json
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {path.relative_to(H.ROOT)}")
    return 0


def print_report(r: dict) -> None:
    print(f"\n{r['mode']} path, STOCKPILE_WORKERS={r['workers']}")
    if "sql" in r:
        s = r["sql"]
        print(f"\nSQL (5 s with statement logging, {s['movements_per_s_with_logging']} movements/s): "
              f"{s['movements_per_transaction']} movements per transaction, "
              f"{s['statements_per_movement']} statements per movement, "
              f"{s['server_ms_per_movement']} ms of server time per movement")
        for k, v in s["by_statement"].items():
            print(f"  {v['count']:>7}  {v['per_movement']:>6}/mvt  avg {v['ms_avg']:>7.3f} ms  {k}")
    p = r["plain"]
    c = p["cpu"]["cores_used"]
    print(f"\nplain load: {p['movements_per_s']} movements/s, p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms; "
          f"cores: API {c['api']}, postgres {c['postgres']}, wrk {c['load_generator']}, other {c['other']}, "
          f"machine {c['machine']}; CPU per movement: API {p['cpu_us_per_movement']['api']} µs, "
          f"machine {p['cpu_us_per_movement']['machine']} µs")
    prof = r["profile"]
    print(f"\npy-spy ({prof['samples']} samples of active API threads; {r['py_spy_run']['movements_per_s']:.0f} movements/s "
          f"while sampling)")
    print("  by component (each sample charged to the innermost component on its stack; asyncpg, asyncio and")
    print("  the standard library are charged to their caller):")
    for k, v in list(prof["by_component"].items())[:18]:
        print(f"    {v:>5}%  {k}")
    print(f"  (asyncpg frames on the stack, inclusive: {prof['asyncpg_inclusive']}%)")
    print("  self time by package:")
    for k, v in list(prof["self_by_package"].items())[:14]:
        print(f"    {v:>5}%  {k}")
    print("  self time by function:")
    for k, v in list(prof["self_by_function"].items())[:20]:
        print(f"    {v:>5}%  {k}")


if __name__ == "__main__":
    sys.exit(main())
