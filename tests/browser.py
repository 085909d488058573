"""A headless Chromium for tests that look at pages as a person would (Debian's ``chromium``,
driven by Playwright), on a network with no way out: every request to a host other than the
service is aborted and recorded, so a test can assert that none was made."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@dataclass
class AirGappedPage:
    """A page that may reach only ``origin``; ``blocked`` lists every other URL it tried."""

    page: object  # playwright.async_api.Page
    origin: str
    blocked: list[str] = field(default_factory=list)


@asynccontextmanager
async def air_gapped_page(origin: str) -> AsyncIterator[AirGappedPage]:
    """A fresh browser page that can reach ``origin`` (scheme://host:port) and nothing else."""
    from playwright.async_api import async_playwright

    allowed = urlsplit(origin).netloc
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            context = await browser.new_context()
            gapped = AirGappedPage(await context.new_page(), origin)

            async def only_the_service(route) -> None:
                url = route.request.url
                if urlsplit(url).netloc == allowed or url.startswith(("data:", "blob:")):
                    await route.continue_()
                else:
                    gapped.blocked.append(url)
                    await route.abort("internetdisconnected")

            await context.route("**/*", only_the_service)
            yield gapped
        finally:
            await browser.close()
