"""Bearer-token authentication, the request limits in front of it, and role guards.

Authenticators are tried in order; today there is one (API tokens from ``stockpile token create``).
An OIDC/JWT authenticator is a second class with the same ``authenticate(token)`` method that maps
verified claims to a ``Principal`` — add it to ``AUTHENTICATORS`` and nothing else changes.

Every request to a guarded route passes, in this order (``authenticate_bearer``):

1. the client address's request limit — counted before anything else, so a flood from one address
   is answered 429 at the cost of a dictionary lookup;
2. the address's budget of failed authentications — once spent, only a token this process already
   knows to be good is looked at; anything else (no token, an unknown or a bad token) is answered
   429 without a database lookup;
3. the token lookup (cached, good and bad answers alike, in a bounded LRU);
4. the principal's request limit.

The limits are shared by every API process and replica through PostgreSQL (``SharedLimiter``): each
process decides alone from what it knows, and reconciles its counts with the shared ones in one
statement every ``STOCKPILE_RATE_LIMIT_SYNC_MS`` (or sooner when a key gets busy).
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import Scope

from stockpile.api import tasks
from stockpile.api.problems import Problem
from stockpile.config import Settings
from stockpile.domain.access import MASTER_DATA_WRITERS, MOVEMENT_POSTERS, READERS, READING_POSTERS, Principal
from stockpile.domain.limits import Limit, wait_before_next
from stockpile.store import limits as limits_store
from stockpile.store import tokens
from stockpile.store.db import Database

log = logging.getLogger("stockpile.auth")


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal | None: ...


class ApiTokenAuthenticator:
    """Hashed API tokens, with an in-process LRU cache so a request costs no lookup round trip.

    Unknown tokens are cached too, so a client repeating bad tokens costs at most one lookup per
    distinct token per ``cache_seconds``; concurrent lookups of one token share one query. The
    cache holds at most ``max_entries``: the least recently used entry makes room, so a flood of
    distinct tokens never empties it of the good ones in use. A revoked token stops working within
    ``cache_seconds``.
    """

    def __init__(self, db: Database, cache_seconds: int, max_entries: int = 10_000) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self.max_entries = max(max_entries, 1)
        self.lookups = 0  # database lookups made (the abuse tests and the bench read it)
        self._cache: OrderedDict[bytes, tuple[float, Principal | None]] = OrderedDict()
        self._pending: dict[bytes, asyncio.Future[Principal | None]] = {}

    def forget(self) -> None:
        """Drop the cached good tokens (after a revocation in this process); a revocation makes no
        bad token good, so the bad ones stay cached."""
        for key in [k for k, (_, principal) in self._cache.items() if principal is not None]:
            del self._cache[key]

    def known_good(self, token: str) -> bool:
        """Whether this process holds a live cached answer saying the token is good."""
        hit = self._cache.get(tokens.hash_token(token))
        return hit is not None and hit[1] is not None and hit[0] > time.monotonic()

    async def authenticate(self, token: str) -> Principal | None:
        key = tokens.hash_token(token)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            self._cache.move_to_end(key)
            return hit[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            self.lookups += 1
            async with self.db.transaction() as tx:
                principal = await tokens.principal_for_token(tx.pg, token)
            self._remember(key, principal)
            future.set_result(principal)
            return principal
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so a lookup nobody else waited for logs no warning
            raise
        finally:
            if not future.done():  # cancelled: whoever waited on it looks the token up again
                future.cancel()
            del self._pending[key]

    def _remember(self, key: bytes, principal: Principal | None) -> None:
        self._cache[key] = (time.monotonic() + self.cache_seconds, principal)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)


@dataclass
class _Counts:
    """One key's counts per fixed window: ``known`` totals of every process as last read back,
    ``pending`` admitted here and not yet sent, ``sending`` sent and not yet answered."""

    known: dict[int, int] = field(default_factory=dict)
    pending: dict[int, int] = field(default_factory=dict)
    sending: dict[int, int] = field(default_factory=dict)
    seen: int = 0  # the last window a request of this key came in

    def total(self, window_id: int) -> int:
        return self.known.get(window_id, 0) + self.pending.get(window_id, 0) + self.sending.get(window_id, 0)


class SharedLimiter:
    """A limit per key (a principal, an address) shared by every API process through PostgreSQL.

    Admission is decided locally from the shared totals last read plus this process's own counts
    since; ``RequestLimits.reconcile`` sends the own counts and reads the totals back. Between two
    reconciliations each other process may admit what it sees as room, so a key can exceed its
    limit by at most what the other processes admit in one sync interval.
    """

    def __init__(self, prefix: str, limit: Limit, on_busy=lambda: None, max_keys: int = 10_000,
                 max_watched: int = 2_000) -> None:
        self.prefix, self.limit, self.on_busy = prefix, limit, on_busy
        self.max_keys, self.max_watched = max_keys, max_watched
        self.busy_at = max(1, limit.limit // 20)  # own admissions of a key that call for an early sync
        self._keys: OrderedDict[str, _Counts] = OrderedDict()

    def _counts(self, key: str, window_id: int) -> _Counts:
        counts = self._keys.get(key)
        if counts is None:
            counts = self._keys[key] = _Counts()
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key)
            if counts.seen != window_id:  # a new window: the totals of those before the last are of no use
                for old in [w for w in counts.known if w < window_id - 1]:
                    del counts.known[old]
        counts.seen = window_id
        return counts

    def wait(self, key: str, now: float | None = None) -> float | None:
        """None when one more request of ``key`` fits now, else the seconds until it would.

        A key this process has never counted fits and is not tracked: asking is free, so the failure
        budget, asked on every request, tracks only the addresses that have failed (this process
        learns another's failures of an address from its first own one on, within one sync)."""
        if key not in self._keys:
            return None
        window_id, fraction = self.limit.position(time.time() if now is None else now)
        counts = self._counts(key, window_id)
        return wait_before_next(self.limit, counts.total(window_id - 1), counts.total(window_id), fraction)

    def count(self, key: str, now: float | None = None) -> None:
        """Count one request of ``key`` (admitted, or a failure that spends a budget)."""
        window_id, _ = self.limit.position(time.time() if now is None else now)
        counts = self._counts(key, window_id)
        counts.pending[window_id] = counts.pending.get(window_id, 0) + 1
        if counts.pending[window_id] % self.busy_at == 0:
            self.on_busy()

    def admit(self, key: str, now: float | None = None) -> float | None:
        """Count the request and return None if it fits, else the seconds to wait (not counted)."""
        now = time.time() if now is None else now
        wait = self.wait(key, now)
        if wait is None:
            self.count(key, now)
        return wait

    def take_pending(self, now: float) -> tuple[list[tuple[str, int, int, float]], list[tuple[str, int]]]:
        """This process's counts to add (moved to ``sending``) and the windows whose totals it needs:
        those of the ``max_watched`` keys used last (a spray of one-off addresses costs their
        counts, not a read of each); keys idle for two windows are forgotten."""
        window_id, _ = self.limit.position(now)
        added, watched = [], []
        for key, counts in list(self._keys.items()):
            if counts.seen < window_id - 1 and not counts.pending and not counts.sending:
                del self._keys[key]
                continue
            for w, n in counts.pending.items():
                counts.sending[w] = counts.sending.get(w, 0) + n
                added.append((self.prefix + key, w, n, (w + 2) * self.limit.window))
            counts.pending.clear()
        for key in itertools.islice(reversed(self._keys), self.max_watched):
            watched += [(self.prefix + key, window_id - 1), (self.prefix + key, window_id)]
        return added, watched

    def settle(self, totals: dict[tuple[str, int], int]) -> None:
        """Take the totals read back; what was being sent is now part of them."""
        for counts in self._keys.values():
            counts.sending.clear()
        for (full, window_id), total in totals.items():
            counts = self._keys.get(full[len(self.prefix):]) if full.startswith(self.prefix) else None
            if counts is not None:
                counts.known[window_id] = total

    def unsent(self) -> None:
        """The sync failed: what was being sent is pending again."""
        for counts in self._keys.values():
            for w, n in counts.sending.items():
                counts.pending[w] = counts.pending.get(w, 0) + n
            counts.sending.clear()


def _networks(specs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(s.strip(), strict=False) for s in specs if s.strip())


class RequestLimits:
    """The three shared limits of a process and the task that reconciles them with PostgreSQL.

    ``STOCKPILE_RATE_LIMIT_PER_SECOND=0`` turns every request limit off (the test suite and the
    throughput benches run so); each address limit is also off on its own when set to 0.
    """

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.sync_seconds = max(settings.rate_limit_sync_ms, 1) / 1000
        self.trusted = _networks(settings.trusted_proxies)
        self.rate = settings.rate_limit_per_second
        self._due = asyncio.Event()
        on = settings.rate_limit_per_second > 0
        principal = Limit.of_rate(settings.rate_limit_per_second, settings.rate_limit_burst)
        address = Limit.of_rate(settings.address_rate_limit_per_second, settings.address_rate_limit_burst)
        failures = Limit.per_minute(settings.address_failure_limit_per_minute)
        self.principal = SharedLimiter("p:", principal, self._due.set) if on and principal else None
        self.address = SharedLimiter("a:", address, self._due.set) if on and address else None
        self.failures = SharedLimiter("f:", failures, self._due.set) if on and failures else None
        self.rounds = 0  # reconciliations made (the bench reads it)
        self._task: asyncio.Task | None = None
        self._last_cleanup = 0.0
        self._round = asyncio.Lock()  # one round at a time: a round that returns has sent all counted before it

    @property
    def limiters(self) -> list[SharedLimiter]:
        return [x for x in (self.principal, self.address, self.failures) if x is not None]

    async def start(self) -> None:
        if self.limiters:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await tasks.stop(self._task)
            self._task = None
            await self.reconcile()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._due.wait(), self.sync_seconds)
            except TimeoutError:
                pass
            self._due.clear()
            await self.reconcile()
            await asyncio.sleep(self.sync_seconds / 5)  # a busy key brings a round forward, at most 5 an interval

    async def reconcile(self) -> None:
        """Send this process's counts and read back the shared totals, in one statement."""
        async with self._round:
            await self._reconcile()

    async def _reconcile(self) -> None:
        now = time.time()
        added, watched = [], []
        for limiter in self.limiters:
            a, w = limiter.take_pending(now)
            added += a
            watched += w
        if not added and not watched:
            return
        try:
            pool = await self.db.pool()
            async with pool.acquire() as conn:
                rows = await limits_store.add_and_read(conn, added, watched)
                if now - self._last_cleanup > 10:
                    self._last_cleanup = now
                    await limits_store.drop_expired(conn)
        except asyncio.CancelledError:
            for limiter in self.limiters:
                limiter.unsent()
            raise
        except Exception:  # noqa: BLE001 - each process keeps limiting on what it knows until the next round
            log.warning("rate limit sync failed", exc_info=True)
            for limiter in self.limiters:
                limiter.unsent()
            return
        totals = {(r.key, r.window_id): r.count for r in rows}
        for limiter in self.limiters:
            limiter.settle(totals)
        self.rounds += 1

    def client_address(self, scope: Scope) -> str:
        """The client's address: the peer's, or — when the peer is a trusted proxy — the nearest
        address in ``X-Forwarded-For`` that is not one (rightmost first: only the entries our own
        proxies appended can be believed)."""
        state = scope.setdefault("state", {})
        if "client_address" in state:
            return state["client_address"]
        client = scope.get("client")
        address = client[0] if client else "unknown"
        if self.trusted and _within(address, self.trusted):
            forwarded = [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"x-forwarded-for"]
            hops = [h.strip() for h in ",".join(forwarded).split(",") if h.strip()]
            for hop in reversed(hops):
                address = hop[:64]
                if not _within(hop, self.trusted):
                    break
        state["client_address"] = address
        return address


def _within(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


def _rate_limited(detail: str, wait: float) -> Problem:
    return Problem(429, "rate-limited", "Too many requests", detail, retry_after=round(wait, 3))


def _knows_good(authenticators, token: str) -> bool:
    return bool(token) and any(getattr(a, "known_good", lambda _: False)(token) for a in authenticators)


async def authenticate_bearer(connection: ASGIConnection, missing: str = "send Authorization: Bearer <token>") -> Principal:
    """The principal of the request's bearer token, past the limits (see the module docstring);
    401 ``unauthenticated`` or 429 ``rate-limited`` otherwise."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return await authenticate_token(connection, token.strip() if scheme.lower() == "bearer" else "", missing)


async def authenticate_token(connection: ASGIConnection, token: str, missing: str) -> Principal:
    """The principal of ``token`` however the request carried it (a bearer header, the console's
    session), past the same limits."""
    state = connection.app.state
    limits: RequestLimits = state.limits
    authenticators = state.authenticators
    address = limits.client_address(connection.scope)
    if limits.address is not None and (wait := limits.address.admit(address)) is not None:
        raise _rate_limited("too many requests from this address", wait)
    if limits.failures is not None and (wait := limits.failures.wait(address)) is not None \
            and not _knows_good(authenticators, token):
        raise _rate_limited("too many failed authentications from this address", wait)
    if token:
        for authenticator in authenticators:
            principal = await authenticator.authenticate(token)
            if principal is not None:
                if limits.principal is not None and (wait := limits.principal.admit(str(principal.id))) is not None:
                    connection.scope["user"] = principal  # the denial is counted against the principal
                    raise _rate_limited(f"this token is limited to {limits.rate:g} requests a second", wait)
                return principal
    if limits.failures is not None:
        limits.failures.count(address)
    if not token:
        raise NotAuthorizedException(missing)
    raise NotAuthorizedException("the token is unknown, expired or revoked")


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        return AuthenticationResult(user=await authenticate_bearer(connection), auth=None)


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
can_post_movements = requires(*MOVEMENT_POSTERS)
can_write_master_data = requires(*MASTER_DATA_WRITERS)
can_post_readings = requires(*READING_POSTERS)
