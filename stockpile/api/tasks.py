"""The background tasks an API process runs beside its requests (the metrics snapshot reload, the
shared limits' reconciliation, the denial counts' flush)."""

from __future__ import annotations

import asyncio
import contextlib


async def stop(task: asyncio.Task | None) -> None:
    """Cancel a background task and wait until it has stopped (nothing when there is none)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
