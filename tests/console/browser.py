"""Launching Debian's chromium (``/usr/bin/chromium``) through Playwright, and watching where its
pages send requests.

``./dev test`` installs the ``chromium`` package when it is missing (as it installs promtool);
Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = os.environ.get("STOCKPILE_CHROMIUM", "/usr/bin/chromium")
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "console"


@asynccontextmanager
async def chromium():
    """A headless chromium, closed afterwards."""
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium package (./dev test does)")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            await browser.close()


class Watched:
    """A browser context whose every request is logged, so a test can prove none left for another host."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.context = None
        self.requests: list[str] = []

    @classmethod
    async def open(cls, browser, base_url: str, **options) -> Watched:
        watched = cls(base_url)
        watched.context = await browser.new_context(base_url=base_url, viewport={"width": 1100, "height": 900},
                                                    **options)
        watched.context.on("request", lambda request: watched.requests.append(request.url))
        return watched

    async def page(self):
        return await self.context.new_page()

    def foreign(self) -> list[str]:
        """Requests that went anywhere but the service."""
        own = urlsplit(self.base_url).netloc
        return [u for u in self.requests if urlsplit(u).scheme not in ("data", "blob", "about")
                and urlsplit(u).netloc != own]

    async def close(self) -> None:
        await self.context.close()


async def screenshot(page, name: str) -> Path:
    """Save the page as a test artefact (not committed)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
