"""A served API process moves what starting built out of the garbage collector's reach (full
collections would otherwise walk it again and again under load); an app built by a test does not.
Each case runs in a process of its own, as a served app does."""

from __future__ import annotations

import subprocess
import sys

import pytest

STARTED = """
import asyncio, gc, sys
from litestar.testing import AsyncTestClient
from stockpile.api.app import create_app

async def main():
    app = create_app(database_url=sys.argv[1], serving=sys.argv[2] == "served")
    async with AsyncTestClient(app) as client:
        assert (await client.get("/health/live")).status_code == 200
        print(gc.get_freeze_count())

asyncio.run(main())
"""


@pytest.mark.parametrize("how", ["served", "built"])
def test_a_served_process_freezes_its_startup_heap_and_a_built_app_does_not(database_url, how):
    done = subprocess.run([sys.executable, "-c", STARTED, database_url, how], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    frozen = int(done.stdout.strip().splitlines()[-1])
    if how == "served":
        assert frozen > 50_000  # the modules, the app, its routes and the OpenAPI document
    else:
        assert frozen == 0
