"""The service as production runs it: a uvicorn subprocess on a free local port, serving the test
session's database (``database_url``), with the token cache off so every request authenticates.

Import the fixture into a test module (``from tests.integration.live_server import live_server``).
The process is started once per session and always stopped at the end, also when a test fails;
its log is kept in a file so a failure can show what the server said.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.live import free_port

READY_TIMEOUT_SECONDS = 30.0
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveServer:
    base_url: str
    database_url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        """What the server wrote to stdout/stderr so far (for failure messages)."""
        return self.log_path.read_text(errors="replace")

    def client(self, headers: dict[str, str] | None = None, timeout: float = 60.0) -> httpx.AsyncClient:
        """A client of its own: its own connection pool, so concurrent clients are separate connections."""
        return httpx.AsyncClient(base_url=self.base_url, headers=headers or {}, timeout=timeout)


async def _wait_ready(server: LiveServer) -> None:
    """Poll /health/ready until it answers 200, the process dies, or the bounded timeout passes."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2) as c:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
            try:
                if (await c.get("/health/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)  # readiness polling only; never used to order test steps
    raise RuntimeError(f"server not ready within {READY_TIMEOUT_SECONDS:.0f} s:\n{server.log()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
async def live_server(database_url):
    port = free_port()
    log_file = tempfile.NamedTemporaryFile(prefix="stockpile-live-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "stockpile.api.app:app_from_env", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, "DATABASE_URL": database_url, "STOCKPILE_TOKEN_CACHE_SECONDS": "0"},
        cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", database_url, process, Path(log_file.name))
    try:
        await _wait_ready(server)
        yield server
    finally:
        _stop(process)
        log_file.close()
        os.unlink(log_file.name)
