"""When stock may be used."""

from __future__ import annotations

from datetime import date

LOT_STATUSES = ("available", "quarantine", "recalled")


def is_expired(expires_on: date | None, today: date) -> bool:
    """A lot is expired from its ``expires_on`` date on; non-perishables never expire."""
    return expires_on is not None and expires_on <= today


def unusable_reason(status: str, expires_on: date | None, today: date) -> str | None:
    """Why a lot may not be issued, transferred or allocated — or ``None`` when it may.

    Guarantee 7: expired, quarantined or recalled stock is never issued, transferred or
    allocated for use (it may still be written off, quarantined or rotated out).
    """
    if status != "available":
        return status
    if is_expired(expires_on, today):
        return "expired"
    return None
