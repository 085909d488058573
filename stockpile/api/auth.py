"""Bearer-token authentication and role guards.

Authenticators are tried in order; today there is one (API tokens from ``stockpile token create``).
An OIDC/JWT authenticator is a second class with the same ``authenticate(token)`` method that maps
verified claims to a ``Principal`` — add it to ``AUTHENTICATORS`` and nothing else changes.
"""

from __future__ import annotations

import time
from typing import Protocol

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from stockpile.api.problems import Problem
from stockpile.domain.access import READERS, Principal
from stockpile.store import tokens
from stockpile.store.db import Database


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal | None: ...


class ApiTokenAuthenticator:
    """Hashed API tokens, with a short in-process cache so a request costs no lookup round trip.

    A revoked token stops working within ``cache_seconds``.
    """

    def __init__(self, db: Database, cache_seconds: int) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._cache: dict[bytes, tuple[float, Principal | None]] = {}

    def forget(self) -> None:
        """Drop cached lookups (after a revocation in this process)."""
        self._cache.clear()

    async def authenticate(self, token: str) -> Principal | None:
        key = tokens.hash_token(token)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self.db.transaction() as tx:
            principal = await tokens.principal_for_token(tx.pg, token)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + self.cache_seconds, principal)
        return principal


class RateLimiter:
    """A token bucket per principal, per process: ``rate`` requests a second sustained, ``burst`` at
    once. ``rate`` 0 turns it off. Each API replica limits on its own."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, max(burst, 1)
        self._buckets: dict[int, tuple[float, float]] = {}

    def admit(self, principal_id: int) -> float | None:
        """None when admitted, else the seconds to wait before the next request fits."""
        if self.rate <= 0:
            return None
        now = time.monotonic()
        level, last = self._buckets.get(principal_id, (float(self.burst), now))
        level = min(float(self.burst), level + (now - last) * self.rate)
        if level < 1:
            self._buckets[principal_id] = (level, now)
            return (1 - level) / self.rate
        self._buckets[principal_id] = (level - 1, now)
        return None


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException("send Authorization: Bearer <token>")
        for authenticator in connection.app.state.authenticators:
            principal = await authenticator.authenticate(token.strip())
            if principal is not None:
                wait = connection.app.state.rate_limiter.admit(principal.id)
                if wait is not None:
                    raise Problem(429, "rate-limited", "Too many requests",
                                  f"this token is limited to {connection.app.state.rate_limiter.rate:g} requests a second",
                                  retry_after=round(wait, 3))
                return AuthenticationResult(user=principal, auth=None)
        raise NotAuthorizedException("the token is unknown, expired or revoked")


def requires(*roles: str):
    """A route guard: the principal must hold one of ``roles`` (``admin`` is not implied)."""
    wanted = frozenset(roles)

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        principal: Principal = connection.user
        if not principal.has_any(wanted):
            raise PermissionDeniedException(f"this needs one of the roles: {', '.join(sorted(wanted))}")

    guard.__name__ = f"requires_{'_or_'.join(sorted(wanted))}"
    return guard


can_read = requires(*READERS)
can_post_movements = requires("operator", "admin")
can_write_master_data = requires("admin")
