"""Ledger throughput against an anchor measured in the same run: pgbench's tpcb-like transaction.

    .venv/bin/python bench/ledger.py [--database-url postgresql://root@127.0.0.1:5432/postgres]
                                     [--seconds 20] [--workers 2] [--lots 1000]

One run: a fresh database built by the migrations, ≥ 1,000 lots loaded through the batch API; the
service started as production runs it (`stockpile serve`, uvicorn workers); single-movement POSTs
(issues and receipts over random lots, unique Idempotency-Keys) from 64 connections with wrk;
pgbench tpcb-like with 64 clients at scale 64 on the same server; batch POSTs of 100 movements;
the p99 latency at about half the single-movement peak; the API's peak RSS. Prints a table with
the ratios and writes bench/results/ledger-<time>.json. Installs wrk (Debian) if it is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stockpile.store.engine import asyncpg_dsn, plain_url, upgrade, with_database  # noqa: E402

STOCKPILE = str(Path(sys.executable).with_name("stockpile"))
LUA = ROOT / "bench" / "wrk_movements.lua"
CONNECTIONS = 64


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("wrk is needed: install Debian's wrk package (apt-get install wrk)")
    print("installing wrk (Debian package) …", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def admin_sql(url: str, sql: str) -> None:
    dsn, kwargs = asyncpg_dsn(with_database(url, "postgres"))
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run_wrk(wrk: str, base: str, token: str, lots_file: Path, *, mode: str, connections: int, seconds: int,
            delay_ms: float = 0) -> dict:
    env = {**os.environ, "TOKEN": token, "LOTS": str(lots_file), "MODE": mode, "DELAY_MS": str(delay_ms)}
    out = subprocess.run([wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA), base],
                         env=env, capture_output=True, text=True, check=True).stdout
    fields = dict(re.findall(r"(\w+)=(\d+)", out.split("RESULT", 1)[1]))
    requests, duration = int(fields["requests"]), int(fields["duration_us"]) / 1e6
    return {"requests": requests, "rate": requests / duration, "p50_ms": int(fields["p50_us"]) / 1000,
            "p99_ms": int(fields["p99_us"]) / 1000, "non2xx": int(fields["non2xx"]), "socket_errors": int(fields["errors"])}


def pgbench_tps(url: str, seconds: int, scale: int) -> float:
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        raise SystemExit("pgbench is needed (Debian: postgresql-client)")
    plain = plain_url(url)
    subprocess.run([pgbench, "-i", "-q", "-s", str(scale), plain], check=True, capture_output=True)
    out = subprocess.run([pgbench, "-c", str(CONNECTIONS), "-j", "2", "-T", str(seconds), "-n", plain],
                         check=True, capture_output=True, text=True).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


class PeakRss:
    """Samples the resident memory of a process and its children (the uvicorn workers)."""

    def __init__(self, pid: int) -> None:
        self.process, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.2)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


async def load_lots(base: str, token: str, lots: int, lots_file: Path) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    warehouses = [f"BENCH-WH-{i}" for i in range(4)]
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as c:
        for path, body in [
            ("/api/v1/regions/BENCH-REGION", {"name": "Bench region"}),
            ("/api/v1/parties/BENCH-OWNER", {"name": "Bench reserve bureau", "sector": "civilian"}),
            ("/api/v1/materials/BENCH-DIESEL", {"name": "Diesel", "category": "fuel", "unit": "L", "decimals": 1,
                                                "shelf_life_days": 3650, "storage_class": "bulk_liquid"}),
            *[(f"/api/v1/warehouses/{w}", {"name": w, "operator": "BENCH-OWNER", "region": "BENCH-REGION",
                                           "kind": "civilian", "latitude": 60 + i, "longitude": 25})
              for i, w in enumerate(warehouses)],
        ]:
            r = await c.put(path, json=body)
            r.raise_for_status()
        rows = []
        for start in range(0, lots, 1000):
            chunk = [{"kind": "receipt", "warehouse": warehouses[i % 4], "material": "BENCH-DIESEL",
                      "owner": "BENCH-OWNER", "quantity": "1000000",
                      "lot": {"code": f"LOT-{i:06d}", "expires_on": "2035-01-01"}}
                     for i in range(start, min(start + 1000, lots))]
            r = await c.post("/api/v1/movements/batch", json={"atomic": True, "movements": chunk},
                             headers={"Idempotency-Key": uuid.uuid4().hex})
            r.raise_for_status()
            for item, result in zip(chunk, r.json()["results"]):
                rows.append(f"{result['movement']['postings'][0]['account']['lot_id']} {item['lot']['code']} {item['warehouse']}")
    lots_file.write_text("\n".join(rows) + "\n")


def wait_ready(base: str, process: subprocess.Popen) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"the service exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the service did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgresql://root@127.0.0.1:5432/postgres"))
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lots", type=int, default=1000)
    parser.add_argument("--scale", type=int, default=64)
    args = parser.parse_args()
    wrk = ensure_wrk()

    suffix = secrets.token_hex(3)
    ledger_db, pgbench_db = f"stockpile_bench_{suffix}", f"pgbench_{suffix}"
    ledger_url, pgbench_url = with_database(args.database_url, ledger_db), with_database(args.database_url, pgbench_db)
    results: dict = {"workers": args.workers, "seconds": args.seconds, "lots": args.lots, "connections": CONNECTIONS}
    server = None
    workdir = Path(tempfile.mkdtemp(prefix="stockpile-bench-"))
    try:
        asyncio.run(admin_sql(args.database_url, f'CREATE DATABASE "{ledger_db}"'))
        asyncio.run(admin_sql(args.database_url, f'CREATE DATABASE "{pgbench_db}"'))
        upgrade(ledger_url)
        env = {**os.environ, "DATABASE_URL": plain_url(ledger_url), "STOCKPILE_RATE_LIMIT_PER_SECOND": "0",
               "STOCKPILE_LOG_LEVEL": "warning", "STOCKPILE_DB_POOL_SIZE": str(max(8, 32 // args.workers))}
        token = subprocess.run([STOCKPILE, "token", "create", "--name", "bench", "--role", "operator", "--role", "admin"],
                               env=env, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([STOCKPILE, "serve", "--no-demo", "--port", str(port), "--workers", str(args.workers)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(base, server)
        lots_file = workdir / "lots.txt"
        asyncio.run(load_lots(base, token, args.lots, lots_file))
        asyncio.run(admin_sql(args.database_url, f'ALTER DATABASE "{ledger_db}" SET jit = off'))
        subprocess.run(["psql", plain_url(ledger_url), "-qc", "ANALYZE"], check=False, capture_output=True)

        with PeakRss(server.pid) as rss:
            run_wrk(wrk, base, token, lots_file, mode="single", connections=CONNECTIONS, seconds=3)  # warm-up
            results["single"] = run_wrk(wrk, base, token, lots_file, mode="single", connections=CONNECTIONS,
                                        seconds=args.seconds)
            results["batch"] = run_wrk(wrk, base, token, lots_file, mode="batch", connections=16, seconds=args.seconds)
            half = results["single"]["rate"] / 2
            connections = 32
            results["half_rate"] = run_wrk(wrk, base, token, lots_file, mode="single", connections=connections,
                                           seconds=args.seconds, delay_ms=1000 * connections / half)
            results["half_rate"]["target_rate"] = half
        results["api_peak_rss_mb"] = rss.peak / 2**20
        server.terminate()
        server.wait(timeout=20)
        server = None
        results["pgbench_tps"] = pgbench_tps(pgbench_url, args.seconds, args.scale)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        for db in (ledger_db, pgbench_db):
            asyncio.run(admin_sql(args.database_url, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        shutil.rmtree(workdir, ignore_errors=True)

    report(results)


def report(r: dict) -> None:
    tps = r["pgbench_tps"]
    single, batch, half = r["single"], r["batch"], r["half_rate"]
    batch_movements = batch["rate"] * 100
    rows = [
        ("single-movement POSTs", f"{single['rate']:.0f} movements/s", f"{single['rate'] / tps:.2f} × pgbench", "≥ 0.5 ×",
         single["rate"] / tps >= 0.5),
        ("  latency p50 / p99", f"{single['p50_ms']:.1f} / {single['p99_ms']:.1f} ms", "", "", None),
        ("  non-2xx / socket errors", f"{single['non2xx']} / {single['socket_errors']}", "", "", None),
        ("batch POSTs of 100", f"{batch_movements:.0f} movements/s", f"{batch_movements / tps:.2f} × pgbench", "≥ 10 ×",
         batch_movements / tps >= 10),
        ("  latency p50 / p99 per batch", f"{batch['p50_ms']:.1f} / {batch['p99_ms']:.1f} ms", "", "", None),
        ("p99 at half the peak rate", f"{half['p99_ms']:.1f} ms at {half['rate']:.0f}/s", "", "≤ 50 ms",
         half["p99_ms"] <= 50),
        ("API peak RSS", f"{r['api_peak_rss_mb']:.0f} MB ({r['workers']} workers)", "", "≤ 250 MB",
         r["api_peak_rss_mb"] <= 250),
        ("pgbench tpcb-like (anchor)", f"{tps:.0f} tps", "", "", None),
    ]
    print(f"\nstockpile ledger benchmark — {r['lots']} lots, {r['connections']} connections, {r['seconds']} s per phase")
    for name, value, ratio, target, met in rows:
        mark = "" if met is None else ("met" if met else "NOT met")
        print(f"{name:<32}{value:<30}{ratio:<20}{target:<10}{mark}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"ledger-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(r, indent=2))
    print(f"\nwritten to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
