"""How the API writes a moment: RFC 3339 in UTC, with ``Z``."""

from __future__ import annotations

import functools
from datetime import datetime, timezone


@functools.lru_cache(maxsize=256)  # a batch writes the same few moments once per movement
def rfc3339(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC (``Z``); None stays None."""
    return None if moment is None else moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
