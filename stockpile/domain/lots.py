"""When stock may be used."""

from __future__ import annotations

from datetime import date, timedelta

from stockpile.domain.errors import Invalid


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


def receipt_expiry(manufactured_on: date | None, expires_on: date | None, shelf_life_days: int | None) -> date | None:
    """The expiry a received lot gets: as given, or manufactured_on + shelf life for a perishable."""
    if expires_on is None and shelf_life_days is not None:
        if manufactured_on is None:
            raise Invalid.field("lot.expires_on", "is required for a perishable material (or give manufactured_on)")
        try:
            expires_on = manufactured_on + timedelta(days=shelf_life_days)
        except OverflowError:
            raise Invalid.field("lot.manufactured_on", "is too late to add the material's shelf life to") from None
    if expires_on and manufactured_on and expires_on < manufactured_on:
        raise Invalid.field("lot.expires_on", "is before manufactured_on")
    return expires_on
