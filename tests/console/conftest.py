"""The console's browser tests: the service as production runs it (a uvicorn process) over a
database holding the demo reserve, driven by Debian's chromium (``tests/console/browser.py``).

Every browser context logs its requests; each test ends by asserting that none left for a host
other than the service.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.console.browser import Watched, chromium
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Service:
    base_url: str
    database_url: str
    tokens: dict[str, str]  # principal name → token
    process: subprocess.Popen
    log_path: Path

    def api(self, name: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.tokens[name]}"}, timeout=60)


def start_service(database_url: str, tokens: dict[str, str]) -> Service:
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="stockpile-console-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "stockpile.api.app:app_from_env", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env={**os.environ, "DATABASE_URL": database_url, "STOCKPILE_TOKEN_CACHE_SECONDS": "0",
             "STOCKPILE_RATE_LIMIT_PER_SECOND": "0"},
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    service = Service(f"http://127.0.0.1:{port}", database_url, tokens, process, Path(log.name))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # readiness polling only
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{service.log_path.read_text()}")
        try:
            if httpx.get(f"{service.base_url}/health/ready", timeout=2).status_code == 200:
                return service
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_service(service)
    raise RuntimeError(f"server not ready:\n{service.log_path.read_text()}")


def stop_service(service: Service) -> None:
    if service.process.poll() is None:
        service.process.terminate()
        try:
            service.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait(timeout=10)


@pytest.fixture(scope="session")
async def demo_service(make_database, settings):
    """The demo reserve as ``./dev serve`` starts it (loaded, then rotation planned, alerts and sensors evaluated
    and a metrics snapshot taken once) served on a free port; its tokens by name."""
    from stockpile.demo import load_demo
    from stockpile.jobs.catalog import catalog
    from stockpile.jobs.runs import manual_slot, run_slot
    from stockpile.store.db import Database

    url = make_database()
    result = await load_demo(url)
    db = Database(url, pool_size=2)
    try:
        for job in ("plan-rotation", "evaluate-alerts", "evaluate-sensors", "refresh-metrics"):
            assert (await run_slot(db, catalog(settings)[job], slot=manual_slot())).outcome == "ok", job
    finally:
        await db.dispose()
    service = start_service(url, {name: token for _, name, token in result.tokens})
    yield service
    stop_service(service)


@pytest.fixture(scope="session")
async def browser():
    async with chromium() as b:
        yield b


@pytest.fixture
async def watched(browser, demo_service):
    """A fresh browser context on the demo service; at the end no request may have left for another host."""
    contexts: list[Watched] = []

    async def make(base_url: str = demo_service.base_url, **options) -> Watched:
        w = await Watched.open(browser, base_url, **options)
        contexts.append(w)
        return w

    yield make
    for w in contexts:
        await w.close()
    for w in contexts:
        assert w.requests, "the browser made no request"
        assert w.foreign() == [], f"requests left for another host: {w.foreign()}"


async def sign_in(page, token: str, lang: str | None = None) -> None:
    await page.goto("/console/sign-in" + (f"?lang={lang}" if lang else ""))
    await page.locator("input[name=token]").fill(token)
    await page.locator("form[action='/console/sign-in'] button[type=submit]").click()
    await page.wait_for_url(re.compile(r"/console/?(\?.*)?$"))
