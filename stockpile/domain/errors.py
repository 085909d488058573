"""Typed failures of the reserve's rules. Each carries what a client needs to act on it.

The API maps each class to one RFC 9457 problem ``type``; nothing here knows about HTTP.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule of the reserve refused the operation; nothing was written."""

    type = "conflict"
    title = "Conflict"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InsufficientStock(DomainError):
    """Less available stock (balance − reserved) than the operation needs."""

    type = "insufficient-stock"
    title = "Insufficient stock"


class UnusableLot(DomainError):
    """The lot is expired, quarantined or recalled and may not be issued, transferred or allocated."""

    type = "unusable-lot"
    title = "Unusable lot"


class FloorProtected(DomainError):
    """The operation would draw a reserve below its protected floor."""

    type = "floor-protected"
    title = "Protected floor"


class Conflict(DomainError):
    """The operation contradicts the current state (e.g. a movement already reversed)."""


class IdempotencyConflict(DomainError):
    """The Idempotency-Key was already used with a different request."""

    type = "idempotency-conflict"
    title = "Idempotency key reused with a different request"


class Forbidden(DomainError):
    """The principal may not do this here: outside its scope, or stock it is not cleared to see."""

    type = "forbidden"
    title = "Forbidden"


class NotFound(DomainError):
    """The addressed object does not exist (or is not visible to the caller)."""

    type = "not-found"
    title = "Not found"


class Invalid(DomainError):
    """The request is well-formed JSON but breaks a rule on its values.

    ``errors`` lists ``{"field", "message"}`` pairs.
    """

    type = "validation"
    title = "Invalid request"

    def __init__(self, errors: list[dict[str, str]], detail: str | None = None) -> None:
        super().__init__(detail or "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)
        self.errors = errors

    @classmethod
    def field(cls, field: str, message: str) -> Invalid:
        return cls([{"field": field, "message": message}])


class TooLarge(DomainError):
    """The work asked for exceeds the bounds one request may take (e.g. a plan's requests, arcs or solve time)."""

    type = "plan-too-large"
    title = "Plan too large"
