"""Logs are JSON lines in every process — the API's uvicorn workers and the worker alike — with the
request's id, principal, route, status and duration; a forwarded client address is believed only
from a configured proxy; the scheduler's routine lines are DEBUG."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from stockpile.logs import JsonFormatter, RoutineAtDebug
from tests.live import free_port, make_admin_token


def _lines(path: Path) -> list[dict]:
    text = path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        if line.startswith("stockpile serving on"):  # the one line serve prints for a person, on stdout
            continue
        parsed.append(json.loads(line))  # every other line is one JSON object
    return parsed


@dataclass
class TwoProcessApi:
    base_url: str
    token: str
    log_path: Path


@pytest.fixture(scope="module")
async def two_process_api(database_url, tmp_path_factory):
    """``stockpile serve --workers 2`` as production runs it, trusting 127.0.0.1 as its proxy."""
    tmp = tmp_path_factory.mktemp("two-process-api")
    token = await make_admin_token(database_url, "log-reader")
    port = free_port()
    log_path = tmp / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "stockpile", "serve", "--no-demo", "--workers", "2", "--port", str(port)],
            env={**os.environ, "DATABASE_URL": database_url, "STOCKPILE_TRUSTED_PROXIES": "127.0.0.1",
                 "STOCKPILE_MIGRATE_ON_START": "false", "STOCKPILE_RATE_LIMIT_PER_SECOND": "0",
                 "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics")},
            stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
                for _ in range(300):
                    assert process.poll() is None, log_path.read_text()
                    try:
                        if (await c.get("/health/ready")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
            yield TwoProcessApi(f"http://127.0.0.1:{port}", token, log_path)
        finally:
            process.terminate()
            process.wait(timeout=20)


async def test_api_processes_log_each_request_as_one_json_line(two_process_api):
    api, auth = two_process_api, {"Authorization": f"Bearer {two_process_api.token}"}
    async with httpx.AsyncClient(base_url=api.base_url, timeout=10) as c:
        proxied = await c.get("/api/v1/regions", headers={**auth, "X-Forwarded-For": "203.0.113.7",
                                                          "X-Request-Id": "trace-123"})
        missing = await c.get("/api/v1/lots/not-a-lot", headers=auth)
    # from 127.0.0.2, not a configured proxy: its X-Forwarded-For is not believed
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=api.base_url, transport=transport, timeout=10) as c:
        spoofed = await c.get("/api/v1/regions", headers={**auth, "X-Forwarded-For": "198.51.100.1"})
    assert proxied.status_code == 200 and proxied.headers["x-request-id"] == "trace-123"
    assert missing.status_code == 404 and spoofed.status_code == 200
    lines = await _logged(api.log_path, spoofed.headers["x-request-id"])
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    requests = {line["request_id"]: line for line in lines if line["logger"] == "stockpile.api.requests"}
    assert requests["trace-123"] | {"time": None, "duration_ms": None} == {
        "time": None, "level": "info", "logger": "stockpile.api.requests", "message": "request",
        "request_id": "trace-123", "principal": "log-reader", "route": "/api/v1/regions", "method": "GET",
        "status": 200, "client": "203.0.113.7", "duration_ms": None}
    assert requests["trace-123"]["duration_ms"] > 0
    not_found = requests[missing.headers["x-request-id"]]
    assert not_found["status"] == 404 and not_found["route"] == "/api/v1/lots/{lot_id}" and "not-a-lot" not in str(not_found)
    assert requests[spoofed.headers["x-request-id"]]["client"] == "127.0.0.2"
    # both uvicorn worker processes started and logged as JSON
    started = [line for line in lines if line["message"].startswith("Started server process")]
    assert len(started) == 2 and all(line["logger"] == "uvicorn.error" for line in started)
    assert api.token not in api.log_path.read_text()


async def test_a_scrape_of_either_process_counts_both(two_process_api):
    """Multiprocess mode: each request on a connection of its own (the two processes share the
    listening socket, so they take turns); one scrape counts every one of them."""
    for _ in range(40):
        async with httpx.AsyncClient(base_url=two_process_api.base_url, timeout=10) as c:
            assert (await c.get("/health/live")).status_code == 200
    async with httpx.AsyncClient(base_url=two_process_api.base_url, timeout=10) as c:
        text = (await c.get("/metrics", headers={"Authorization": f"Bearer {two_process_api.token}"})).text
    (counted,) = [s.value for family in text_string_to_metric_families(text) for s in family.samples
                  if s.name == "stockpile_requests_total" and s.labels["path"] == "/health/live"]
    assert counted == 40


async def _logged(path: Path, request_id: str) -> list[dict]:
    """The log's lines once the request ``request_id`` is in it (the processes write as they go)."""
    for _ in range(100):
        if request_id in path.read_text():
            break
        await asyncio.sleep(0.1)
    return _lines(path)


def test_the_worker_logs_its_routine_at_debug(database_url, tmp_path):
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "stockpile", "worker"],
            env={**os.environ, "DATABASE_URL": database_url, "STOCKPILE_LOG_LEVEL": "debug",
                 "STOCKPILE_WORKER_METRICS_PORT": "0", "STOCKPILE_JOB_SEAL_AUDIT_SECONDS": "1"},
            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 60
            while "executed successfully" not in log_path.read_text() and time.monotonic() < deadline:
                assert process.poll() is None, log_path.read_text()
                time.sleep(0.2)
        finally:
            process.terminate()
            process.wait(timeout=20)
    lines = _lines(log_path)
    routine = [line for line in lines if line["logger"].startswith("apscheduler") and "seal-audit" in line["message"]]
    assert routine and {line["level"] for line in routine} == {"debug"}
    assert any(line["logger"] == "stockpile.worker" and line["message"].startswith("worker started") for line in lines)


def _record(name: str, level: int, message: str, **extra) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


def test_routine_scheduler_lines_are_dropped_at_info_and_others_kept():
    at_info = RoutineAtDebug("info")
    assert not at_info.filter(_record("apscheduler.executors.default", logging.INFO, 'Job "seal-audit" executed'))
    assert at_info.filter(_record("apscheduler.scheduler", logging.WARNING, "Run time of job was missed"))
    assert at_info.filter(_record("stockpile.jobs", logging.INFO, "sealed"))


def test_a_line_carries_its_fields_and_no_others():
    line = json.loads(JsonFormatter().format(_record("stockpile.api.requests", logging.INFO, "request",
                                                      route="/api/v1/stock", status=200, token="sp_secret")))
    assert line["route"] == "/api/v1/stock" and line["status"] == 200 and line["level"] == "info"
    assert "token" not in line and line["time"].endswith("+00:00")
