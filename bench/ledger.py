"""Ledger throughput and latency, next to pgbench's tpcb-like transaction measured in the same run.

    .venv/bin/python bench/ledger.py [--database-url postgresql://root@127.0.0.1:5432/postgres]
                                     [--seconds 20] [--workers 1,2] [--lots 1000] [--scale 64]

One run (about 2 minutes with the defaults), on the PostgreSQL server given by --database-url:

1. creates `stockpile_bench_<random>` (migrated with `stockpile.store.engine.upgrade`) and
   `stockpile_bench_<random>_pgbench` (`pgbench -i -s 64`, initialised in the background meanwhile);
   creates master data through the API with an admin token and an operator token with
   `stockpile token create --name bench --role operator --region BENCH`, and loads the lots
   (receipts of 1,000,000 units) through `POST /api/v1/movements/batch` in chunks of 1000;
2. runs pgbench's built-in tpcb-like transaction: 64 clients, -j 2, --seconds long (the anchor);
   every measured phase starts right after a CHECKPOINT;
3. for each worker count in --workers: starts `stockpile serve --no-demo` with STOCKPILE_WORKERS set,
   as production runs it, waits for /health/ready, warms up for 3 s, then drives single-movement
   POSTs (issues with an explicit lot_id and receipts, random lots, 1-5 units, a unique
   Idempotency-Key each) from 64 connections with wrk (bench/movements.lua) — movements/s, p50/p99,
   non-2xx; the API process tree's RSS (uvicorn parent + workers) is sampled every 100 ms;
4. with the worker count that gave the most single movements/s: atomic batch POSTs of 100
   movements from 16 connections with wrk — movements/s;
5. the p99 latency at half that peak: an open-loop generator (asyncio, raw HTTP/1.1 keep-alive,
   in this process) that starts requests on a fixed schedule of 0.5 × peak per second for 12 s
   whatever the answers do, and measures each latency from the request's *scheduled* start
   (as wrk2 does, so a stall is not hidden by coordinated omission);
6. the ceiling of the batch figure: PostgreSQL alone, running the service's own lock and append
   statements for prebuilt batches of 100 issues and receipts from 16 asyncpg connections on
   disjoint accounts (no HTTP, JSON, rules or lock waits) — what any API over this schema can at
   most reach on this machine;
7. prints a table against the targets, writes bench/results/ledger-<UTC time>.json, stops every
   process it started and drops both databases (also on failure or Ctrl-C).

The per-principal and per-address rate limits (STOCKPILE_RATE_LIMIT_PER_SECOND, 200/s by default;
STOCKPILE_ADDRESS_RATE_LIMIT_PER_SECOND, 1000/s) are set out of reach: production clients hold a
token each and come from many addresses, the bench drives everything through one token from one. Everything else is the service's default configuration. Installs Debian's wrk when it is
missing and the bench runs as root.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import httpx
import psutil

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing the harness
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402  (bench/harness.py: the measuring harness)
    QUIET, ROOT, CHECKPOINTER_SQL, CpuMeter, PgActivity, Server, cleanup, ensure_tool, find_postmaster, log,
    make_token, pgbench_run, sql, start_server, wait_quiet,
)
from stockpile.store.engine import asyncpg_dsn, plain_url, upgrade, with_database  # noqa: E402

LUA = ROOT / "bench" / "movements.lua"
RESULTS = ROOT / "bench" / "results"
SINGLE_CONNECTIONS = 64
BATCH_CONNECTIONS = 16
BATCH_SIZE = 100
LOAD_CHUNK = 1000
WARMUP_SECONDS = 3
HALF_RATE_SECONDS = 12
REGION = "BENCH"
WAREHOUSES = [f"BENCH-WH-{i}" for i in range(1, 5)]
OWNERS = [("BENCH-CIV", "civilian"), ("BENCH-ENT", "enterprise")]
MATERIALS = [
    ("BENCH-DIESEL", {"name": "Diesel fuel", "category": "fuel", "unit": "L", "decimals": 1,
                      "shelf_life_days": 1825, "storage_class": "bulk_liquid"}),
    ("BENCH-RATION", {"name": "Field ration", "category": "food", "unit": "pcs", "decimals": 0,
                      "shelf_life_days": 1095, "storage_class": "ambient"}),
]
TARGETS = {"single_vs_pgbench": 0.6, "batch_vs_pgbench": 2.0, "p99_half_rate_ms": 50.0, "rss_mb": 250.0}


# -- data ---------------------------------------------------------------------------------------


def setup_data(base: str, admin_token: str, env: dict, lots: int, lots_file: Path) -> tuple[str, list[dict], float]:
    """Master data (admin), the operator token, and `lots` lots through the batch API."""
    with httpx.Client(base_url=base, timeout=300, headers={"Authorization": f"Bearer {admin_token}"}) as c:
        puts = [
            (f"/api/v1/regions/{REGION}", {"name": "Bench region", "parent": None}),
            *[(f"/api/v1/parties/{code}", {"name": f"Bench {sector} owner", "sector": sector, "parent": None})
              for code, sector in OWNERS],
            *[(f"/api/v1/materials/{code}", body) for code, body in MATERIALS],
            *[(f"/api/v1/warehouses/{code}", {"name": f"Bench depot {i}", "operator": OWNERS[0][0], "region": REGION,
                                              "kind": "civilian", "latitude": 60.0 + i / 10, "longitude": 25.0 + i / 10})
              for i, code in enumerate(WAREHOUSES)],
        ]
        for path, body in puts:
            r = c.put(path, json=body)
            if r.status_code not in (200, 201):
                raise RuntimeError(f"PUT {path} → {r.status_code}: {r.text}")

    token = make_token(env, "bench", "operator", "--region", REGION, "--label", "bench/ledger.py")

    today = date.today()
    rows: list[dict] = []
    t0 = time.monotonic()
    with httpx.Client(base_url=base, timeout=300, headers={"Authorization": f"Bearer {token}"}) as c:
        for start in range(0, lots, LOAD_CHUNK):
            chunk = []
            for i in range(start, min(start + LOAD_CHUNK, lots)):
                lot = {"warehouse": WAREHOUSES[i % len(WAREHOUSES)], "material": MATERIALS[i % len(MATERIALS)][0],
                       "owner": OWNERS[(i // len(MATERIALS)) % len(OWNERS)][0], "code": f"BENCH-{i:06d}",
                       "expires_on": (today + timedelta(days=730 + i % 365)).isoformat()}
                rows.append(lot)
                chunk.append({"kind": "receipt", "warehouse": lot["warehouse"], "material": lot["material"],
                              "owner": lot["owner"], "quantity": "1000000",
                              "lot": {"code": lot["code"], "manufactured_on": today.isoformat(),
                                      "expires_on": lot["expires_on"]},
                              "note": "bench load"})
            r = c.post("/api/v1/movements/batch", json={"atomic": True, "movements": chunk},
                       headers={"Idempotency-Key": f"bench-load-{start}-{secrets.token_hex(4)}"})
            if r.status_code != 201:
                raise RuntimeError(f"loading lots: POST /movements/batch → {r.status_code}: {r.text[:2000]}")
            for lot, result in zip(rows[start:], r.json()["results"]):
                stock = [p for p in result["movement"]["postings"] if p["account"]["type"] == "stock"]
                lot["lot_id"] = stock[0]["account"]["lot_id"]
    lots_file.write_text("".join(f"{x['lot_id']} {x['owner']} {x['warehouse']} {x['material']} {x['code']} "
                                 f"{x['expires_on']}\n" for x in rows))
    return token, rows, time.monotonic() - t0


# -- load generators ----------------------------------------------------------------------------


def run_wrk(wrk: str, base: str, token: str, lots_file: Path, *, mode: str, connections: int,
            seconds: int) -> dict:
    env = {**os.environ, "TOKEN": token, "LOTS": str(lots_file), "MODE": mode, "BATCH": str(BATCH_SIZE),
           "RUN": f"{mode}-{secrets.token_hex(6)}"}
    cmd = [wrk, "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "--timeout", "10s",
           "-s", str(LUA), base]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0 or "RESULT " not in done.stdout:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(done.stdout.split("RESULT ", 1)[1].splitlines()[0])
    duration = raw["duration_us"] / 1e6
    per_request = BATCH_SIZE if mode == "batch" else 1
    lat = raw["latency_us"]
    return {
        "mode": mode, "connections": connections, "threads": 2, "seconds": round(duration, 2),
        "requests": raw["requests"], "requests_per_s": raw["requests"] / duration,
        "movements_per_s": raw["requests"] * per_request / duration,
        "ok_movements_per_s": (raw["requests"] - raw["non2xx"]) * per_request / duration,
        "latency_ms": {k: v / 1000 for k, v in lat.items()},
        "non2xx": raw["non2xx"], "by_status": raw["by_status"], "socket_errors": raw["socket_errors"],
        "movements_generated": raw["movements_generated"],
        "wrk_summary": done.stdout.split("RESULT ", 1)[0].strip(),
    }


class OpenLoop:
    """Fixed-rate (open-loop) single-movement POSTs over raw HTTP/1.1 keep-alive connections.

    Request i is due at start + i / rate. It is sent on an idle connection (a new one is opened
    when none is idle, up to `max_in_flight`), whatever earlier requests are doing, and its latency
    is counted from when it was due, so queueing behind a slow answer is part of the figure."""

    def __init__(self, port: int, token: str, lots: list[dict], rate: float, seconds: float,
                 issue_share: float = 0.5, max_in_flight: int = 256) -> None:
        self.port, self.token, self.rate, self.seconds = port, token, rate, seconds
        self.issue_share, self.max_in_flight = issue_share, max_in_flight
        self.run_id = f"open-{secrets.token_hex(6)}"
        self.issue = [(f'{{"kind":"issue","warehouse":"{x["warehouse"]}","material":"{x["material"]}",'
                       f'"owner":"{x["owner"]}","lot_id":"{x["lot_id"]}","reason":"consumption","quantity":"')
                      for x in lots]
        self.receipt = [(f'{{"kind":"receipt","warehouse":"{x["warehouse"]}","material":"{x["material"]}",'
                         f'"owner":"{x["owner"]}","lot":{{"code":"{x["code"]}","expires_on":"{x["expires_on"]}"}},'
                         f'"quantity":"') for x in lots]

    def _request(self, i: int) -> bytes:
        lot = random.randrange(len(self.issue))
        prefix = self.issue[lot] if random.random() < self.issue_share else self.receipt[lot]
        body = f'{prefix}{random.randint(1, 5)}"}}'.encode()
        return (f"POST /api/v1/movements HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
                f"Idempotency-Key: {self.run_id}-{i}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    @staticmethod
    async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
            elif name == b"connection" and value == b"close":
                close = True
        if chunked:
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await reader.readexactly(length)
        return status, not close

    async def _run(self) -> dict:
        clock = time.perf_counter  # not loop.time(): uvloop's clock ticks in whole milliseconds
        slots = asyncio.Semaphore(self.max_in_flight)
        idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []  # (…, last answer at)
        latencies, service, lags = [], [], []
        statuses, errors, retries = Counter(), Counter(), Counter()
        opened = 0
        last_done = 0.0

        async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter, float] | None:
            nonlocal opened
            while idle:
                reader, writer, since = idle.pop()
                if clock() - since < 2.0 and not reader.at_eof():  # uvicorn drops keep-alives idle for 5 s
                    return reader, writer, since
                writer.close()
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError as exc:
                errors[type(exc).__name__] += 1
                return None
            opened += 1
            return reader, writer, -1.0

        async def fire(i: int, due: float) -> None:
            nonlocal last_done
            payload = self._request(i)
            async with slots:
                for attempt in (1, 2):
                    conn = await connection()
                    if conn is None:
                        return
                    reader, writer, since = conn
                    sent = clock()
                    try:
                        writer.write(payload)
                        status, keep = await asyncio.wait_for(self._response(reader), timeout=10)
                        break
                    except asyncio.IncompleteReadError as exc:
                        writer.close()
                        if attempt == 1 and since >= 0 and not exc.partial:
                            retries["closed keep-alive connection, sent again"] += 1
                            continue  # the server had closed the reused connection: as any client, resend
                        errors[type(exc).__name__] += 1
                        return
                    except (OSError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError, IndexError) as exc:
                        errors[type(exc).__name__] += 1
                        writer.close()
                        return
                now = clock()
                last_done = now
                latencies.append(now - due)
                service.append(now - sent)
                statuses[status] += 1
                if keep:
                    idle.append((reader, writer, now))
                else:
                    writer.close()

        total = int(self.rate * self.seconds)
        start = clock() + 0.2
        tasks = set()
        for i in range(total):
            due = start + i / self.rate
            wait = due - clock()
            if wait > 0:
                await asyncio.sleep(wait)
            lags.append(clock() - due)
            task = asyncio.create_task(fire(i, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(set(tasks), timeout=30)
        for _, writer, _ in idle:
            writer.close()

        def pct(values: list[float], q: float) -> float:
            if not values:
                return float("nan")
            values = sorted(values)
            return values[min(len(values) - 1, int(q / 100 * len(values)))] * 1000

        completed = len(latencies)
        elapsed = max(last_done - start, 1e-9)
        non2xx = sum(n for s, n in statuses.items() if not 200 <= s < 300)
        return {
            "target_rate": self.rate, "seconds": self.seconds, "scheduled": total, "completed": completed,
            "achieved_rate": completed / elapsed,
            "latency_ms": {"p50": pct(latencies, 50), "p90": pct(latencies, 90), "p99": pct(latencies, 99),
                           "p999": pct(latencies, 99.9), "max": pct(latencies, 100)},
            "service_time_ms": {"p50": pct(service, 50), "p99": pct(service, 99)},
            "schedule_lag_ms": {"p99": pct(lags, 99), "max": pct(lags, 100)},
            "connections_opened": opened,
            "non2xx": non2xx, "by_status": {str(s): n for s, n in statuses.items() if not 200 <= s < 300},
            "client_errors": dict(errors), "errors": sum(errors.values()), "retries": dict(retries),
        }

    def run(self) -> dict:
        try:
            import uvloop  # the service runs on it too; the generator's own overhead stays small
            return uvloop.run(self._run())
        except ImportError:
            return asyncio.run(self._run())


# -- the schema's own cost ---------------------------------------------------------------------


class SqlOnly:
    """What PostgreSQL alone can append through the ledger's schema: the service's own statements
    (``lock_accounts``' ordered ``FOR UPDATE``, ``insert_movements``' one append statement with every
    constraint and trigger), batches of 100 prebuilt issues and receipts, from BATCH_CONNECTIONS
    asyncpg connections, each on its own share of the accounts (no lock waits: the best case), one
    transaction per batch. No HTTP, no JSON, no rules: the ceiling any API over this schema meets
    on this machine."""

    def __init__(self, url: str, seconds: int) -> None:
        self.url, self.seconds = url, seconds

    async def _run(self) -> dict:
        from types import SimpleNamespace

        from stockpile.domain.ledger import Posting
        from stockpile.store.ledger import insert_movements, lock_accounts

        dsn, kwargs = asyncpg_dsn(self.url)
        conns = [await asyncpg.connect(dsn, **kwargs) for _ in range(BATCH_CONNECTIONS)]
        try:
            accounts = await conns[0].fetch("SELECT id, material_id FROM accounts WHERE type = 'stock' ORDER BY id")
            principal = await conns[0].fetchval("SELECT id FROM principals WHERE name = 'bench'")
            shares = [accounts[i::BATCH_CONNECTIONS] for i in range(BATCH_CONNECTIONS)]
            done = [0] * BATCH_CONNECTIONS
            stop = time.monotonic() + self.seconds

            def batch(share) -> list:
                now = datetime.now(timezone.utc)
                pending = []
                for _ in range(BATCH_SIZE):
                    account = random.choice(share)
                    units = random.randint(1, 5)
                    issue = random.random() < 0.5
                    postings = [Posting(account["material_id"], -units if issue else units, account_id=account["id"]),
                                Posting(account["material_id"], units if issue else -units,
                                        external="consumption" if issue else "supply")]
                    posted = SimpleNamespace(id=str(uuid.uuid4()), kind="issue" if issue else "receipt", occurred_at=now,
                                             recorded_at=now, reason=None, note=None, reverses=None, transfer_id=None,
                                             postings=postings, rotation_order_id=None)
                    pending.append(SimpleNamespace(posted=posted, principal_id=principal, idempotency=None,
                                                   audit_event=None))
                return pending

            async def client(i: int) -> None:
                while time.monotonic() < stop:
                    pending = batch(shares[i])
                    async with conns[i].transaction():
                        await lock_accounts(conns[i], sorted({x.posted.postings[0].account_id for x in pending}))
                        await insert_movements(conns[i], pending)
                    done[i] += len(pending)

            started = time.monotonic()
            await asyncio.gather(*(client(i) for i in range(BATCH_CONNECTIONS)))
            elapsed = time.monotonic() - started
        finally:
            for conn in conns:
                await conn.close()
        return {"movements_per_s": sum(done) / elapsed, "movements": sum(done), "seconds": round(elapsed, 2),
                "connections": BATCH_CONNECTIONS, "batch_size": BATCH_SIZE}

    def run(self) -> dict:
        return asyncio.run(self._run())


# -- the run ------------------------------------------------------------------------------------


def single_phase(wrk: str, server: Server, token: str, lots_file: Path, seconds: int, dbs: tuple,
                 postmaster: int | None, admin_url: str) -> dict:
    log(f"  warm-up {WARMUP_SECONDS} s")
    run_wrk(wrk, server.base, token, lots_file, mode="single", connections=SINGLE_CONNECTIONS, seconds=WARMUP_SECONDS)
    wait_quiet("single")
    log(f"  single-movement POSTs, {SINGLE_CONNECTIONS} connections, {seconds} s")
    with CpuMeter(server.pid, dbs, postmaster) as cpu, PgActivity(admin_url, dbs[0]) as activity:
        result = run_wrk(wrk, server.base, token, lots_file, mode="single", connections=SINGLE_CONNECTIONS,
                         seconds=seconds)
    result["cpu"], result["pg_activity"] = cpu.result, activity.result
    log(f"  → {result['movements_per_s']:.0f} movements/s, p50 {result['latency_ms']['p50']:.1f} ms, "
        f"p99 {result['latency_ms']['p99']:.1f} ms, non-2xx {result['non2xx']}")
    return result


def benchmark(args: argparse.Namespace, wrk: str, pgbench: str, started: list, workdir: Path) -> dict:
    suffix = secrets.token_hex(4)
    ledger_db = f"stockpile_bench_{suffix}"
    pgbench_db = f"{ledger_db}_pgbench"
    admin_url = args.database_url
    ledger_url, pgbench_url = with_database(admin_url, ledger_db), with_database(admin_url, pgbench_db)
    started.append(("databases", (admin_url, [ledger_db, pgbench_db])))
    dbs = (ledger_db, pgbench_db)
    before = psutil.cpu_times()
    time.sleep(2)
    after = psutil.cpu_times()
    busy_before = ((sum(after) - after.idle - after.iowait) - (sum(before) - before.idle - before.iowait)) / 2
    if busy_before > 0.3:
        log(f"warning: the machine is not idle ({busy_before:.1f} cores busy before the bench started); "
            f"the figures will be lower than on a quiet machine")
    results: dict = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cores": psutil.cpu_count(), "loadavg_at_start": os.getloadavg(),
                    "busy_cores_before_start": round(busy_before, 2),
                    "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version()},
        "settings": {"seconds": args.seconds, "lots": args.lots, "workers_tried": args.workers,
                     "single_connections": SINGLE_CONNECTIONS, "batch_connections": BATCH_CONNECTIONS,
                     "batch_size": BATCH_SIZE, "pgbench_scale": args.scale, "pgbench_clients": SINGLE_CONNECTIONS,
                     "half_rate_seconds": HALF_RATE_SECONDS, "issue_share": 0.5},
        "targets": TARGETS,
    }

    log(f"creating databases {ledger_db} and {pgbench_db} on {plain_url(admin_url).split('@')[-1]}")
    sql(admin_url, f'CREATE DATABASE "{ledger_db}"', f'CREATE DATABASE "{pgbench_db}"')
    version = sql(admin_url, "SHOW server_version", "SHOW shared_buffers", "SHOW max_connections",
                  CHECKPOINTER_SQL)
    postmaster = find_postmaster(version[3])
    results["postgres"] = {"version": version[0][0][0], "shared_buffers": version[1][0][0],
                           "max_connections": version[2][0][0], "postmaster_pid": postmaster}

    log(f"pgbench -i -s {args.scale} in the background")
    init_log = open(workdir / "pgbench-init.log", "wb")
    pg_init = subprocess.Popen([pgbench, "-i", "-q", "-s", str(args.scale), plain_url(pgbench_url)],
                               stdout=init_log, stderr=subprocess.STDOUT, start_new_session=True)
    started.append(("process", pg_init))
    t0 = time.monotonic()

    log("applying migrations")
    upgrade(plain_url(ledger_url))
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"DATABASE_URL": plain_url(ledger_url), "STOCKPILE_DEMO": "false",
                "STOCKPILE_DATA_DIR": str(workdir / "data"),
                # one bench token stands for many clients: keep the per-principal limiter out of reach
                "STOCKPILE_RATE_LIMIT_PER_SECOND": "1000000000", "STOCKPILE_RATE_LIMIT_BURST": "1000000000",
                "STOCKPILE_ADDRESS_RATE_LIMIT_PER_SECOND": "1000000000",
                "STOCKPILE_ADDRESS_RATE_LIMIT_BURST": "1000000000"})
    results["service_env"] = {k: v for k, v in env.items() if k.startswith("STOCKPILE_")}

    t_token = time.monotonic()
    admin_token = make_token(env, "bench-admin", "admin", "--label", "bench/ledger.py setup")
    token_seconds = time.monotonic() - t_token
    lots_file = workdir / "lots.txt"
    log(f"loading master data and {args.lots} lots through the API")
    server = start_server(env, 1, workdir)
    started.append(("server", server))
    t1 = time.monotonic()
    token, lots, load_seconds = setup_data(server.base, admin_token, env, args.lots, lots_file)
    results["setup"] = {"lots": len(lots), "master_data_token_and_load_seconds": round(time.monotonic() - t1, 2),
                        "token_cli_seconds": round(token_seconds, 2), "lot_batches_seconds": round(load_seconds, 2)}
    server.stop()
    log(f"  {len(lots)} lots loaded ({results['setup']['master_data_token_and_load_seconds']} s with the master data "
        f"and the operator token)")

    init_rc = pg_init.wait(timeout=600)
    init_log.close()
    if init_rc != 0:
        raise RuntimeError(f"pgbench -i failed:\n{(workdir / 'pgbench-init.log').read_text()}")
    results["pgbench_init_seconds"] = round(time.monotonic() - t0, 1)
    sql(ledger_url, "VACUUM ANALYZE")
    sql(admin_url, "CHECKPOINT")

    wait_quiet("pgbench")
    log(f"pgbench tpcb-like: {SINGLE_CONNECTIONS} clients, -j 2, {args.seconds} s (scale {args.scale})")
    with CpuMeter(None, dbs, postmaster) as cpu, PgActivity(admin_url, pgbench_db) as activity:
        results["pgbench"] = pgbench_run(pgbench, pgbench_url, SINGLE_CONNECTIONS, args.seconds)
    results["pgbench"]["cpu"], results["pgbench"]["pg_activity"] = cpu.result, activity.result
    log(f"  → {results['pgbench']['tps']:.0f} tps")
    sql(admin_url, "CHECKPOINT")

    configs: dict[int, dict] = {}
    server = None
    for workers in args.workers:
        log(f"stockpile serve with STOCKPILE_WORKERS={workers}")
        server = start_server(env, workers, workdir)
        started.append(("server", server))
        configs[workers] = {"workers": workers, "single": single_phase(wrk, server, token, lots_file, args.seconds, dbs,
                                                                              postmaster, admin_url)}
        if workers != args.workers[-1]:
            server.stop()
            configs[workers]["rss_peak_mb"] = server.rss.peak / 2**20
            configs[workers]["rss_processes"] = server.rss.processes_at_peak
            configs[workers]["rss_mb_per_process_at_peak"] = server.rss.each_at_peak
            configs[workers]["pss_peak_mb"] = server.rss.peak_pss / 2**20
            configs[workers]["rss_phases"] = ["warm-up", "single"]
            server = None
            sql(admin_url, "CHECKPOINT")

    best = max(configs, key=lambda w: configs[w]["single"]["ok_movements_per_s"])
    if server is None or server.workers != best:
        if server is not None:
            server.stop()
            configs[server.workers].update(rss_peak_mb=server.rss.peak / 2**20,
                                           rss_processes=server.rss.processes_at_peak,
                                           rss_mb_per_process_at_peak=server.rss.each_at_peak,
                                           pss_peak_mb=server.rss.peak_pss / 2**20,
                                           rss_phases=["warm-up", "single"])
        log(f"stockpile serve with STOCKPILE_WORKERS={best} again (the better configuration)")
        server = start_server(env, best, workdir)
        started.append(("server", server))
        configs[best]["restarted_for_batch"] = True
    chosen = configs[best]

    sql(admin_url, "CHECKPOINT")  # every measured phase starts from a checkpoint, as pgbench's does
    wait_quiet("batch")
    log(f"batch POSTs of {BATCH_SIZE} movements (atomic), {BATCH_CONNECTIONS} connections, {args.seconds} s")
    with CpuMeter(server.pid, dbs, postmaster) as cpu, PgActivity(admin_url, ledger_db) as activity:
        chosen["batch"] = run_wrk(wrk, server.base, token, lots_file, mode="batch", connections=BATCH_CONNECTIONS,
                                  seconds=args.seconds)
    chosen["batch"]["cpu"], chosen["batch"]["pg_activity"] = cpu.result, activity.result
    log(f"  → {chosen['batch']['movements_per_s']:.0f} movements/s ({chosen['batch']['requests_per_s']:.1f} batches/s), "
        f"non-2xx {chosen['batch']['non2xx']}")

    sql(admin_url, "CHECKPOINT")
    half = chosen["single"]["ok_movements_per_s"] / 2
    wait_quiet("half-rate")
    log(f"open-loop single-movement POSTs at {half:.0f}/s (half the peak) for {HALF_RATE_SECONDS} s")
    with CpuMeter(server.pid, dbs, postmaster) as cpu, PgActivity(admin_url, ledger_db) as activity:
        chosen["half_rate"] = OpenLoop(server.port, token, lots, half, HALF_RATE_SECONDS).run()
    chosen["half_rate"]["cpu"], chosen["half_rate"]["pg_activity"] = cpu.result, activity.result
    log(f"  → p50 {chosen['half_rate']['latency_ms']['p50']:.1f} ms, p99 {chosen['half_rate']['latency_ms']['p99']:.1f} ms "
        f"at {chosen['half_rate']['achieved_rate']:.0f}/s, non-2xx {chosen['half_rate']['non2xx']}, "
        f"client errors {chosen['half_rate']['errors']}")

    server.stop()
    phases = ["warm-up", "single", "batch", "half-rate"]
    if not chosen.get("restarted_for_batch"):
        chosen.update(rss_peak_mb=server.rss.peak / 2**20, rss_processes=server.rss.processes_at_peak,
                      rss_mb_per_process_at_peak=server.rss.each_at_peak, rss_phases=phases,
                      pss_peak_mb=server.rss.peak_pss / 2**20)
    else:
        chosen["rss_peak_mb_batch_half_rate"] = server.rss.peak / 2**20
        chosen["rss_mb_per_process_at_peak_batch_half_rate"] = server.rss.each_at_peak
        chosen["pss_peak_mb"] = max(chosen.get("pss_peak_mb", 0), server.rss.peak_pss / 2**20)
        chosen["rss_peak_mb"] = max(chosen["rss_peak_mb"], chosen["rss_peak_mb_batch_half_rate"])
        chosen["rss_phases"] = phases

    sql(admin_url, "CHECKPOINT")
    wait_quiet("sql-only")
    log(f"PostgreSQL alone: the service's lock and append statements, batches of {BATCH_SIZE} from "
        f"{BATCH_CONNECTIONS} connections on disjoint accounts, {args.seconds} s")
    with CpuMeter(None, dbs, postmaster) as cpu, PgActivity(admin_url, ledger_db) as activity:
        results["sql_only"] = SqlOnly(ledger_url, args.seconds).run()
    results["sql_only"]["cpu"], results["sql_only"]["pg_activity"] = cpu.result, activity.result
    log(f"  → {results['sql_only']['movements_per_s']:.0f} movements/s")

    ledger_rows = sql(ledger_url, "SELECT count(*) FROM movements", "SELECT count(*) FROM postings")
    results["ledger_rows_at_end"] = {"movements": ledger_rows[0][0][0], "postings": ledger_rows[1][0][0]}
    results["configs"] = {str(w): c for w, c in configs.items()}
    results["chosen_workers"] = best
    return results


def summarise(r: dict) -> dict:
    tps = r["pgbench"]["tps"]
    chosen = r["configs"][str(r["chosen_workers"])]
    single = chosen["single"]
    batch_rate = chosen["batch"]["ok_movements_per_s"]
    figures = {
        "chosen_workers": r["chosen_workers"],
        "single_movements_per_s": single["ok_movements_per_s"],
        "single_p50_ms": single["latency_ms"]["p50"], "single_p99_ms": single["latency_ms"]["p99"],
        "single_non2xx": single["non2xx"], "single_socket_errors": sum(single["socket_errors"].values()),
        "batch_movements_per_s": batch_rate, "batch_non2xx": chosen["batch"]["non2xx"],
        "batch_socket_errors": sum(chosen["batch"]["socket_errors"].values()),
        "half_rate_p99_ms": chosen["half_rate"]["latency_ms"]["p99"],
        "half_rate_achieved_per_s": chosen["half_rate"]["achieved_rate"],
        "half_rate_non2xx": chosen["half_rate"]["non2xx"], "half_rate_client_errors": chosen["half_rate"]["errors"],
        "api_peak_rss_mb": chosen["rss_peak_mb"],
        "pgbench_tps": tps,
        "single_vs_pgbench": single["ok_movements_per_s"] / tps,
        "batch_vs_pgbench": batch_rate / tps,
        "sql_only_movements_per_s": r["sql_only"]["movements_per_s"],
        "sql_only_vs_pgbench": r["sql_only"]["movements_per_s"] / tps,
        "batch_vs_sql_only": batch_rate / r["sql_only"]["movements_per_s"],
    }
    # PostgreSQL's own CPU per appended movement, and what the machine's every core could append at that cost
    sql_cpu = r["sql_only"]["cpu"]
    pg_us = 1e6 * sql_cpu["cores_used"]["postgres"] / max(r["sql_only"]["movements_per_s"], 1e-9)
    figures["sql_only_pg_cpu_us_per_movement"] = pg_us
    figures["sql_only_all_cores_movements_per_s"] = sql_cpu["cores"] * 1e6 / max(pg_us, 1e-9)
    figures["sql_only_all_cores_vs_pgbench"] = figures["sql_only_all_cores_movements_per_s"] / tps
    figures["met"] = {
        "single_vs_pgbench": figures["single_vs_pgbench"] >= TARGETS["single_vs_pgbench"],
        "batch_vs_pgbench": figures["batch_vs_pgbench"] >= TARGETS["batch_vs_pgbench"],
        "p99_half_rate_ms": figures["half_rate_p99_ms"] <= TARGETS["p99_half_rate_ms"],
        "rss_mb": figures["api_peak_rss_mb"] <= TARGETS["rss_mb"],
    }
    return figures


def report(r: dict, path: Path) -> None:
    f = r["summary"]
    tps = f["pgbench_tps"]

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    rows = [
        ("single-movement POSTs", f"{f['single_movements_per_s']:.0f} movements/s",
         f"{f['single_vs_pgbench']:.2f} × pgbench", f"≥ {TARGETS['single_vs_pgbench']} × pgbench", mark(f["met"]["single_vs_pgbench"])),
        ("  latency p50 / p99", f"{f['single_p50_ms']:.1f} / {f['single_p99_ms']:.1f} ms", "", "", ""),
        ("  non-2xx / socket errors", f"{f['single_non2xx']} / {f['single_socket_errors']}", "", "", ""),
        (f"batch POSTs of {BATCH_SIZE} (atomic)", f"{f['batch_movements_per_s']:.0f} movements/s",
         f"{f['batch_vs_pgbench']:.2f} × pgbench", f"≥ {TARGETS['batch_vs_pgbench']:g} × pgbench", mark(f["met"]["batch_vs_pgbench"])),
        ("  non-2xx / socket errors", f"{f['batch_non2xx']} / {f['batch_socket_errors']}", "", "", ""),
        ("  PostgreSQL alone (ceiling)", f"{f['sql_only_movements_per_s']:.0f} movements/s",
         f"{f['sql_only_vs_pgbench']:.2f} × pgbench", f"API: {f['batch_vs_sql_only']:.0%} of it", ""),
        ("    PostgreSQL CPU per movement", f"{f['sql_only_pg_cpu_us_per_movement']:.0f} µs",
         f"all {r['machine']['cores']} cores: ≤ {f['sql_only_all_cores_movements_per_s']:.0f}/s",
         f"= {f['sql_only_all_cores_vs_pgbench']:.2f} × pgbench", ""),
        ("p99 at half the peak (open loop)", f"{f['half_rate_p99_ms']:.1f} ms",
         f"at {f['half_rate_achieved_per_s']:.0f}/s", "≤ 50 ms", mark(f["met"]["p99_half_rate_ms"])),
        ("  non-2xx / client errors", f"{f['half_rate_non2xx']} / {f['half_rate_client_errors']}", "", "", ""),
        ("API peak RSS", f"{f['api_peak_rss_mb']:.0f} MB", f"{f['chosen_workers']} worker(s)", "≤ 250 MB",
         mark(f["met"]["rss_mb"])),
        ("pgbench tpcb-like (anchor)", f"{tps:.0f} tps", f"{SINGLE_CONNECTIONS} clients, -j 2", "", ""),
    ]
    print()
    print(f"stockpile ledger benchmark — {r['setup']['lots']} lots, {r['settings']['seconds']} s per phase, "
          f"{r['machine']['cores']} cores, PostgreSQL {r['postgres']['version']}")
    print(f"{'':<34}{'figure':<24}{'':<24}{'target':<18}")
    for name, value, extra, target, ok in rows:
        print(f"{name:<34}{value:<24}{extra:<24}{target:<18}{ok}")
    print()
    print("per worker count (single-movement POSTs, 64 connections):")
    for w, c in r["configs"].items():
        s = c["single"]
        cores = s["cpu"]["cores_used"]
        print(f"  STOCKPILE_WORKERS={w}: {s['ok_movements_per_s']:.0f} movements/s, p50 {s['latency_ms']['p50']:.1f} ms, "
              f"p99 {s['latency_ms']['p99']:.1f} ms, non-2xx {s['non2xx']}, peak RSS {c['rss_peak_mb']:.0f} MB "
              f"(during {', '.join(c['rss_phases'])}; MB per process, parent first: "
              f"{' + '.join(str(x) for x in c.get('rss_mb_per_process_at_peak', []))}; "
              f"PSS peak {c.get('pss_peak_mb', 0):.0f} MB)")
        print(f"      cores used: API {cores['api']}, postgres {cores['postgres']}, wrk {cores['load_generator']}, "
              f"other processes {cores['other']}; machine {cores['machine']} of {s['cpu']['cores']}")
    print(f"  chosen: STOCKPILE_WORKERS={f['chosen_workers']} (most single movements/s); batch and half-rate ran on it")
    chosen = r["configs"][str(f["chosen_workers"])]
    phases = [("pgbench", r["pgbench"]["cpu"]), ("single", chosen["single"]["cpu"]), ("batch", chosen["batch"]["cpu"]),
              ("half-rate", chosen["half_rate"]["cpu"]), ("sql-only", r["sql_only"]["cpu"])]
    print("cores used by processes not part of the bench (other users): "
          + ", ".join(f"{name} {cpu['cores_used']['other']}" for name, cpu in phases)
          + f"; before the start {r['machine']['busy_cores_before_start']}")
    if max(cpu["cores_used"]["other"] for _, cpu in phases) > 0.25:
        print("  warning: other processes competed for the CPU during the run; the ratios are less reliable")
    print("where the time went (cores: API / postgres / load generator / other; PostgreSQL backends of the phase's "
          "database by state/wait, on average):")
    for name, phase in [("pgbench", r["pgbench"]), ("single", chosen["single"]), ("batch", chosen["batch"]),
                        ("half-rate", chosen["half_rate"]), ("sql-only", r["sql_only"])]:
        c = phase["cpu"]["cores_used"]
        waits = ", ".join(f"{k} {v}" for k, v in list(phase["pg_activity"]["avg_backends"].items())[:4])
        print(f"  {name:<10} {c['api']} / {c['postgres']} / {c['load_generator']} / {c['other']}; {waits}")
    print(f"\nwritten to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgresql://root@127.0.0.1:5432/postgres"),
                        help="a server the bench may create and drop databases on")
    parser.add_argument("--seconds", type=int, default=20, help="length of the single, batch and pgbench phases")
    parser.add_argument("--workers", default="1,2", help="STOCKPILE_WORKERS values to try, comma-separated")
    parser.add_argument("--lots", type=int, default=1000)
    parser.add_argument("--scale", type=int, default=64, help="pgbench scale factor")
    parser.add_argument("--output", type=Path, help="JSON path (default bench/results/ledger-<UTC time>.json)")
    parser.add_argument("--quiet-wait", type=float, default=0, metavar="SECONDS",
                        help="on a shared machine: before each phase wait up to this long for the CPU to be idle")
    args = parser.parse_args()
    args.workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    if args.lots < 1 or not args.workers or min(args.workers) < 1:
        parser.error("--lots and --workers must be positive")

    wrk = ensure_tool("wrk", "wrk")
    pgbench = ensure_tool("pgbench", "postgresql-client")
    QUIET["seconds"] = args.quiet_wait

    # SIGTERM/SIGHUP run the same cleanup as Ctrl-C
    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    started: list = []
    workdir = Path(tempfile.mkdtemp(prefix="stockpile-bench-"))
    t0 = time.monotonic()
    try:
        results = benchmark(args, wrk, pgbench, started, workdir)
    except BaseException:
        for kind, thing in started:
            if kind == "server" and thing.process.poll() not in (None, 0, -15):
                print(f"--- stockpile serve ({thing.workers} workers) log tail ---\n{thing.log_tail()}", file=sys.stderr)
        raise
    finally:
        cleanup(started)
        shutil.rmtree(workdir, ignore_errors=True)
    results["wall_seconds"] = round(time.monotonic() - t0, 1)
    results["waited_for_quiet_seconds"] = round(QUIET["waited"], 1)
    results["summary"] = summarise(results)
    path = args.output or RESULTS / f"ledger-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    report(results, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
