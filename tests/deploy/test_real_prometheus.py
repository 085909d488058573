"""The shipped monitoring, with the real thing: Debian's Prometheus (installed by ./dev test, the same
package as promtool) scrapes `stockpile serve --workers 2` and a `stockpile worker` on the demo
data with deploy/prometheus/prometheus.yml and rules.yml — only the targets, the token file and the
intervals templated — and a real Alertmanager with deploy/alertmanager/alertmanager.yml.

On a healthy system every target is up, no operational alert is pending or firing, and every
Grafana panel's query returns data; stopping the worker raises the alert that no worker runs.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import time
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from pathlib import Path

import httpx
import yaml

from stockpile.demo import load_demo
from tests.live import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
STARTUP_SECONDS = 60.0
JOB_SECONDS = {"SEAL_AUDIT": 2, "CHECK_LEDGER": 5, "EVALUATE_ALERTS": 5, "DELIVER_NOTIFICATIONS": 2,
               "REFRESH_METRICS": 1, "EXPIRE_RESERVATIONS": 5}


def _operational_alerts() -> set[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    return {r["alert"] for g in rules["groups"] if g["name"] == "stockpile-operations" for r in g["rules"]}


def _panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((DEPLOY / "grafana" / "stockpile.json").read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]


def prometheus_config(tmp: Path, api: str, worker: str, alertmanager: str, token_file: Path) -> Path:
    """The shipped configuration with its targets (DNS names of the stack) replaced by this test's
    processes, the token file and the rules by their paths here, and intervals of a second."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(DEPLOY / "prometheus" / name) for name in config["rule_files"]]
    config["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [alertmanager]}]
    targets = {"stockpile-api": api, "stockpile-worker": worker}
    for scrape in config["scrape_configs"]:
        scrape.pop("dns_sd_configs")
        scrape["static_configs"] = [{"targets": [targets.pop(scrape["job_name"])]}]
        if "authorization" in scrape:
            scrape["authorization"]["credentials_file"] = str(token_file)
    assert not targets, f"the shipped configuration scrapes no {sorted(targets)}"
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


class Processes:
    """Processes of the stack, each logging to a file; all stopped at the end, whatever happens."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.running = tmp, {}

    def start(self, name: str, args: list[str], **env: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(args, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **env})
        self.running[name] = (process, log)
        return process

    def stop(self, name: str) -> None:
        process, log = self.running.pop(name)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}" for path in self.tmp.glob("*.log"))

    def check_alive(self) -> None:
        for name, (process, _) in self.running.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}:\n{self.logs()}"

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


async def until(condition, processes: Processes, what: str, timeout: float = STARTUP_SECONDS):
    """Poll ``condition`` (a coroutine function returning a truthy value when met) until it holds,
    bounded; ordering only, never a measure of speed."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        processes.check_alive()
        with suppress(httpx.TransportError):
            if result := await condition():
                return result
            last = result
        await asyncio.sleep(0.25)
    raise AssertionError(f"{what} within {timeout:.0f} s (last: {last}):\n{processes.logs()}")


@asynccontextmanager
async def traffic(base: str, token: str):
    """Requests to the API all along, so rates and latency quantiles have something to show."""
    async def run():
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
            while True:
                with suppress(httpx.TransportError):
                    await c.get("/api/v1/stock", params={"limit": 5})
                    await c.get("/api/v1/coverage")
                await asyncio.sleep(0.1)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def test_the_shipped_monitoring_tells_the_truth_about_a_running_stack(make_database, tmp_path):
    for tool in ("prometheus", "prometheus-alertmanager"):
        assert shutil.which(tool), f"{tool} is installed by ./dev test (Debian's prometheus packages)"
    url = make_database()
    demo = await load_demo(url)
    token_file = tmp_path / "metrics-token"
    token_file.write_text(demo.token("metrics"))
    api_port, worker_port, prometheus_port, alertmanager_port, cluster_port = (free_port() for _ in range(5))
    processes = Processes(tmp_path)
    stockpile = [sys.executable, "-m", "stockpile"]
    common = {"DATABASE_URL": url, "STOCKPILE_HOST": "127.0.0.1", "STOCKPILE_RATE_LIMIT_PER_SECOND": "0"}
    try:
        processes.start("api", [*stockpile, "serve", "--no-demo", "--workers", "2", "--port", str(api_port)],
                        **common, STOCKPILE_MIGRATE_ON_START="false", STOCKPILE_METRICS_RELOAD_SECONDS="1",
                        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "api-metrics"))
        processes.start("worker", [*stockpile, "worker"], **common, STOCKPILE_WORKER_METRICS_PORT=str(worker_port),
                        **{f"STOCKPILE_JOB_{job}_SECONDS": str(s) for job, s in JOB_SECONDS.items()})
        processes.start("alertmanager", [
            "prometheus-alertmanager", f"--config.file={DEPLOY / 'alertmanager' / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'alertmanager'}", f"--web.listen-address=127.0.0.1:{alertmanager_port}",
            f"--cluster.listen-address=127.0.0.1:{cluster_port}"])
        config = prometheus_config(tmp_path, f"127.0.0.1:{api_port}", f"127.0.0.1:{worker_port}",
                                   f"127.0.0.1:{alertmanager_port}", token_file)
        processes.start("prometheus", [
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}"])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{prometheus_port}", timeout=10) as prom, \
                traffic(f"http://127.0.0.1:{api_port}", demo.token("admin")):
            await _healthy(prom, processes)
            processes.stop("worker")
            raised = await until(lambda: _alerts(prom, "StockpileWorkerAbsent"), processes,
                                 "stopping the worker raises StockpileWorkerAbsent")
            assert {a["state"] for a in raised} <= {"pending", "firing"}
    finally:
        processes.stop_all()


async def _healthy(prom: httpx.AsyncClient, processes: Processes) -> None:
    async def all_up():
        answer = await prom.get("/api/v1/targets")
        if answer.status_code == 503:  # "Service Unavailable": Prometheus answers so until it is ready
            return None
        targets = answer.json()["data"]["activeTargets"]
        jobs = {t["labels"]["job"] for t in targets}
        return jobs == {"stockpile-api", "stockpile-worker"} and all(t["health"] == "up" for t in targets)

    await until(all_up, processes, "every target up")

    async def every_job_ran():  # each job given a short interval has succeeded in the worker since it started
        result = await _query(prom, "stockpile_worker_job_last_success_timestamp_seconds")
        return {r["metric"]["job_name"] for r in result} >= {job.lower().replace("_", "-") for job in JOB_SECONDS}

    await until(every_job_ran, processes, "every job run by the worker")
    since = time.time()

    async def two_rounds_since():  # two evaluation rounds of every group, on a system now healthy
        groups = (await prom.get("/api/v1/rules")).json()["data"]["groups"]
        return all(_seconds(g["lastEvaluation"]) > since + 1.5 for g in groups)

    await until(two_rounds_since, processes, "two evaluation rounds")
    operational = _operational_alerts()
    alerts = (await prom.get("/api/v1/alerts")).json()["data"]["alerts"]
    raised = [(a["labels"]["alertname"], a["state"], a["labels"]) for a in alerts if a["labels"]["alertname"] in operational]
    assert raised == [], f"{raised}\n{processes.logs()}"
    # Prometheus's job and instance are the only ones: none of the service's series had to be renamed
    for clash in ('{exported_job=~".+"}', '{exported_instance=~".+"}'):
        assert await _query(prom, clash) == [], clash
    # each figure from the role that owns it: the snapshot from the API, the ledger check from the worker
    assert await _query(prom, 'stockpile_metrics_snapshot_timestamp_seconds{job!="stockpile-api"}') == []
    assert await _query(prom, 'stockpile_ledger_mismatched_accounts{job!="stockpile-worker"}') == []
    for title, expr in _panel_queries():
        result = await _query(prom, expr)
        assert result and any(math.isfinite(float(r["value"][1])) for r in result), f"panel {title!r}: {expr} → {result}"
    assert (await prom.get("/api/v1/alertmanagers")).json()["data"]["activeAlertmanagers"]


async def _query(prom: httpx.AsyncClient, expr: str) -> list[dict]:
    answer = (await prom.get("/api/v1/query", params={"query": expr})).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


async def _alerts(prom: httpx.AsyncClient, name: str) -> list[dict]:
    alerts = (await prom.get("/api/v1/alerts")).json()["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == name]


def _seconds(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()
