"""Moments: the clock a use case runs by, and how the API writes a moment (RFC 3339 in UTC, with ``Z``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timezone


@functools.lru_cache(maxsize=256)  # a batch writes the same few moments once per movement
def rfc3339(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC (``Z``); None stays None."""
    return None if moment is None else moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def iso_day(day: date | None) -> str | None:
    """A date as the API writes it (``YYYY-MM-DD``); None stays None."""
    return None if day is None else day.isoformat()


@dataclass
class Clock:
    """The moment a use case runs at, passed in rather than read inside so that one request (or one
    group of them) sees one ``now``, and a loader or a test can run at a moment of its choosing."""

    now: datetime

    @property
    def today(self) -> date:
        return self.now.astimezone(timezone.utc).date()

    @classmethod
    def utc(cls) -> Clock:
        return cls(datetime.now(timezone.utc))
