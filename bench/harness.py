"""The benchmarks' measuring harness: tools, the service under test, and what a phase cost.

- ``log``, ``ensure_tool`` (installs Debian's package when running as root), ``stockpile_command``,
  ``free_port``, ``sql`` (statements on a server, outside any test fixture);
- ``Server`` (`stockpile serve --no-demo` in its own process group, as production runs it),
  ``start_server``, ``run_cli``, ``make_token``;
- ``RssSampler`` (peak memory of a process tree), ``CpuMeter`` (cores used per phase by the API,
  PostgreSQL, the load generator and everything else — on a shared machine other people's work shows
  up there), ``PgActivity`` (what the database's backends wait on), ``wait_quiet`` (``--quiet-wait``);
- ``pgbench_run``: the anchor every ratio is measured against, on the same server in the same run;
- ``cleanup``: stops what a run started and drops its databases, also on failure or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stockpile.store.engine import asyncpg_dsn, plain_url  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- tools --------------------------------------------------------------------------------------


def ensure_tool(name: str, package: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(f"{name} is needed: install Debian's {package} package (sudo apt-get install -y {package}) "
                         f"or run this bench as root so it can install it")
    log(f"installing {name} (Debian package {package}) …")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, stdout=subprocess.DEVNULL, env=env)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{package} was installed but {name} is still not on PATH")
    return found


def stockpile_command() -> list[str]:
    script = Path(sys.executable).with_name("stockpile")
    return [str(script)] if script.exists() else [sys.executable, "-m", "stockpile"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _sql(url: str, *statements: str) -> list:
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        return [await conn.fetch(s) for s in statements]
    finally:
        await conn.close()


def sql(url: str, *statements: str) -> list:
    return asyncio.run(_sql(url, *statements))


# -- resource sampling --------------------------------------------------------------------------


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and every descendant (empty once it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


class RssSampler:
    """Peak resident memory of a process tree (the uvicorn parent and its workers), every 100 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.processes_at_peak, self.samples = pid, 0, 0, 0
        self.each_at_peak: list[float] = []  # MB per process (the uvicorn parent first) at the peak
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total, count, each = 0, 0, []
            for p in process_tree(self.pid):
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                count += 1
                each.append(round(rss / 2**20, 1))
            self.samples += 1
            if total > self.peak:
                self.peak, self.processes_at_peak, self.each_at_peak = total, count, each
            if self.samples % 10 == 1:  # proportional set size (shared pages split): slower to read, every 1 s
                pss = 0
                for p in process_tree(self.pid):
                    try:
                        pss += p.memory_full_info().pss
                    except (psutil.Error, AttributeError):
                        pass
                self.peak_pss = max(self.peak_pss, pss)
            self._stop.wait(0.1)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class CpuMeter:
    """Where the machine's CPU went over a phase, as cores in use on average: the API processes,
    PostgreSQL (the postmaster's tree, minus backends serving other people's databases), the load
    generator (this process and its children: wrk, pgbench), and everything else — other users'
    processes, kernel threads. Every process is sampled every 250 ms, so short-lived ones (pgbench's
    backends, someone's test run) are counted too."""

    def __init__(self, api_pid: int | None, databases: tuple[str, ...] = (), postmaster: int | None = None) -> None:
        self.api_pid, self.databases, self.postmaster = api_pid, databases, postmaster
        self._first: dict[tuple[int, float], float] = {}  # (pid, create time) → CPU seconds when first seen
        self._last: dict[tuple[int, float], float] = {}
        self._kind: dict[tuple[int, float], str] = {}
        self._label: dict[tuple[int, float], str] = {}
        self._pgrole: dict[tuple[int, float], str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._me = os.getpid()

    def _classify(self, p: psutil.Process, key: tuple[int, float]) -> None:
        try:
            parents = {q.pid for q in p.parents()}
            title = " ".join(p.cmdline()) or p.name()
        except psutil.Error:
            return
        if self.api_pid and (p.pid == self.api_pid or self.api_pid in parents):
            kind = "api"
        elif self.postmaster and (p.pid == self.postmaster or self.postmaster in parents):
            foreign = (re.search(r"\d+\.\d+\.\d+\.\d+\(\d+\)|\[local\]", title) and self.databases
                       and not any(f" {db} " in title for db in self.databases))
            kind = "other_postgres_backends" if foreign else "postgres"
            role = re.search(r"(autovacuum \w+|walwriter|checkpointer|background writer|wal\w*|logical \w+)", title)
            self._pgrole[key] = role.group(1) if role and not re.search(r"\(\d+\)|\[local\]", title) else \
                "client backends"
        elif p.pid == self._me or self._me in parents:
            kind = "load_generator"
        else:
            kind = "other"
        self._kind[key], self._label[key] = kind, title[:80]

    def _sample(self, first: bool = False) -> None:
        for p in psutil.process_iter(["create_time", "cpu_times"]):
            times = p.info["cpu_times"]
            if times is None or p.info["create_time"] is None:
                continue
            key = (p.pid, p.info["create_time"])
            cpu = times.user + times.system
            if key not in self._kind:
                self._classify(p, key)
                self._first[key] = cpu if first else 0.0  # born during the phase: all of it counts
            self._last[key] = cpu

    def _follow(self) -> None:
        while not self._stop.wait(0.25):
            self._sample()

    def __enter__(self) -> CpuMeter:
        self._t0, self._busy0 = time.monotonic(), self._busy()
        self._sample(first=True)
        self._thread.start()
        return self

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        wall = time.monotonic() - self._t0
        machine = self._busy() - self._busy0
        used: Counter = Counter()
        others: Counter = Counter()
        postgres: Counter = Counter()
        for key, last in self._last.items():
            kind = self._kind.get(key, "other")
            spent = max(0.0, last - self._first.get(key, 0.0))
            used[kind] += spent
            if kind == "postgres":
                postgres[self._pgrole.get(key, "?")] += spent
            if kind == "other" and spent > 0:
                others[self._label.get(key, "?")[:60]] += spent
        self.result = {
            "wall_s": round(wall, 2),
            "cores_used": {"api": round(used["api"] / wall, 2), "postgres": round(used["postgres"] / wall, 2),
                           "load_generator": round(used["load_generator"] / wall, 2),
                           "other": round((used["other"] + used["other_postgres_backends"]) / wall, 2),
                           "other_postgres_backends": round(used["other_postgres_backends"] / wall, 2),
                           "machine": round(machine / wall, 2)},
            "postgres_by_process": {name: round(v / wall, 2) for name, v in postgres.most_common() if v / wall >= 0.005},
            "busiest_other_processes": {name: round(v / wall, 2) for name, v in others.most_common(5)},
            "cores": psutil.cpu_count(),
        }


def find_postmaster(checkpointer_rows: list) -> int | None:
    """The server's postmaster pid when it runs on this machine (parent of its checkpointer)."""
    try:
        candidate = psutil.Process(checkpointer_rows[0][0]).parent() if checkpointer_rows else None
        if candidate is not None and candidate.name().startswith(("postgres", "postmaster")):
            return candidate.pid
    except psutil.Error:
        pass
    return None


CHECKPOINTER_SQL = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'"


class PgActivity:
    """What the bench database's backends are doing, sampled from pg_stat_activity every 200 ms:
    the average number of non-idle backends per state and wait event ("active/CPU" is running,
    "active/Lock:transactionid" waits for another transaction's row lock, "idle in
    transaction/Client:ClientRead" waits for the application in the middle of a transaction,
    "active/IO:WALSync" waits for the commit's fsync …)."""

    def __init__(self, url: str, database: str) -> None:
        self.url, self.database = url, database
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.counts: Counter = Counter()
        self.samples = 0

    async def _run(self) -> None:
        dsn, kwargs = asyncpg_dsn(self.url)
        conn = await asyncpg.connect(dsn, **kwargs)
        try:
            while not self._stop.is_set():
                rows = await conn.fetch(
                    """SELECT state, coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait, count(*) AS n
                         FROM pg_stat_activity
                        WHERE datname = $1 AND pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle'
                        GROUP BY 1, 2""", self.database)
                for r in rows:
                    self.counts[f"{r['state']}/{r['wait']}"] += r["n"]
                self.samples += 1
                await asyncio.sleep(0.2)
        finally:
            await conn.close()

    def __enter__(self) -> PgActivity:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        n = max(1, self.samples)
        self.result = {"samples": self.samples,
                       "avg_backends": {k: round(v / n, 2) for k, v in self.counts.most_common() if v / n >= 0.01}}


# -- the service --------------------------------------------------------------------------------


class Server:
    """`stockpile serve --no-demo` as production runs it, in its own process group."""

    def __init__(self, env: dict, workers: int, workdir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log_path = workdir / f"serve-{workers}w-{self.port}.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [*stockpile_command(), "serve", "--no-demo", "--port", str(self.port)],
            env={**env, "STOCKPILE_WORKERS": str(workers)}, cwd=workdir,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.rss: RssSampler | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"stockpile serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base}/health/ready", timeout=2).status_code == 200:
                    if self.workers <= 1:
                        return
                    if len(process_tree(self.pid)) > self.workers:
                        time.sleep(1.5)  # every worker up, not just the one that answered
                        return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"stockpile serve was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.rss is not None:
            self.rss.stop()
        if self.process.poll() is None:
            workers = process_tree(self.pid)[1:]  # psutil handles: safe against pid reuse
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            for p in workers:  # should the parent have left any behind
                try:
                    p.kill()
                except psutil.Error:
                    pass
        if not self._log.closed:
            self._log.close()


def run_cli(env: dict, *args: str) -> str:
    done = subprocess.run([*stockpile_command(), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"stockpile {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def make_token(env: dict, name: str, role: str, *extra: str) -> str:
    out = run_cli(env, "token", "create", "--name", name, "--role", role, *extra)
    return out.strip().splitlines()[-1].strip()


# -- pgbench ------------------------------------------------------------------------------------


def pgbench_run(pgbench: str, url: str, clients: int, seconds: int) -> dict:
    done = subprocess.run([pgbench, "-c", str(clients), "-j", "2", "-T", str(seconds), plain_url(url)],
                          capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    out = done.stdout
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out) or re.search(r"tps = ([\d.]+)", out)
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    return {"tps": float(tps.group(1)), "latency_avg_ms": float(latency.group(1)) if latency else None,
            "failed": int(failed.group(1)) if failed else 0, "clients": clients, "threads": 2,
            "seconds": seconds, "output": out.strip()}


QUIET = {"seconds": 0.0, "waited": 0.0}  # --quiet-wait: how long each phase may wait for a quiet machine


def wait_quiet(phase: str) -> None:
    """Before a measured phase: wait (up to --quiet-wait seconds) until the machine is nearly idle —
    below 0.25 busy cores over a second — so other people's jobs do not land in the figures."""
    deadline = time.monotonic() + QUIET["seconds"]
    started, warned = time.monotonic(), False
    while time.monotonic() < deadline:
        a = psutil.cpu_times()
        time.sleep(1)
        b = psutil.cpu_times()
        busy = (sum(b) - b.idle - b.iowait) - (sum(a) - a.idle - a.iowait)
        if busy < 0.25:
            break
        if not warned:
            log(f"  waiting for a quiet machine before the {phase} phase ({busy:.1f} cores busy)")
            warned = True
    QUIET["waited"] += time.monotonic() - started if warned else 0.0



def start_server(env: dict, workers: int, workdir: Path) -> Server:
    server = Server(env, workers, workdir)
    server.wait_ready()
    server.rss = RssSampler(server.pid).start()
    return server


def cleanup(started: list) -> None:
    for kind, thing in reversed(started):
        try:
            if kind == "server":
                thing.stop()
            elif kind == "process" and thing.poll() is None:
                os.killpg(thing.pid, signal.SIGTERM)
                try:
                    thing.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(thing.pid, signal.SIGKILL)
                    thing.wait(timeout=5)
            elif kind == "databases":
                admin_url, names = thing
                for name in names:
                    sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                log(f"dropped {', '.join(names)}")
        except Exception as exc:  # noqa: BLE001 - keep cleaning up the rest
            print(f"cleanup of {kind} failed: {exc}", file=sys.stderr)
