"""Loading the demo reserve into an empty database, in one transaction.

Everything is loaded through the use cases the API and the command line use (``masterdata.upsert``,
``principals.issue_token``, ``targets.upsert``, ``rotation.upsert_policy``, and for the history
``movements.post_movement``, ``transfers.dispatch`` / ``receive``, ``lots.change_status``) — never by
writing ledger rows directly — so every guarantee of the ledger holds for the demo data exactly as
it does for real traffic.

The whole load is **one transaction**: it either leaves a complete demo or nothing (a half-loaded
demo would make the database "not empty" and block a retry). The transaction first takes an
advisory lock and refuses a database that already holds parties (``DemoRefused``), so two
processes starting on the same empty database cannot both load it.

The scenario is reproducible: the same ``seed`` and the same ``now`` give the same master data,
lot codes, quantities and movements (ids and tokens are random).

The demo tokens are real credentials printed to a log, so they expire ``TOKEN_DAYS`` (30) days after
the load, by the wall clock.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import asyncpg

from stockpile.demo import potential, sensors
from stockpile.demo.data import (
    DEMO_ROTATION_POLICIES, DEMO_TARGETS, MATERIALS, PARTIES, PRINCIPALS, REGIONS, WAREHOUSES, WarehouseSpec,
)
from stockpile.demo.history import History
from stockpile.demo.result import DemoResult, default_api_url, write_tokens
from stockpile.domain.access import Principal
from stockpile.domain.principals import Rights
from stockpile.services import commands as c
from stockpile.services import masterdata, principals, rotation, targets
from stockpile.store import audit, reads, tokens
from stockpile.store import coverage as coverage_store
from stockpile.store import masterdata as masterdata_store
from stockpile.store.db import Database, advisory_xact_lock

ADVISORY_LOCK = 0x5354_4B50_4445_4D4F  # "STKPDEMO": serialises demo loaders on one database
TOKEN_DAYS = 30  # demo tokens are printed to the log: they stop working on their own


class DemoRefused(RuntimeError):
    """The database already holds data; the demo loads only into an empty database."""


async def load_demo(url: str, *, seed: int = 7, tokens_file: Path | None = None, now: datetime | None = None,
                    api_url: str | None = None) -> DemoResult:
    """Load the demo reserve into the empty, migrated database at ``url``, in one transaction.

    Raises ``DemoRefused`` (and writes nothing) when the database already holds parties.
    ``tokens_file``, when given, receives the demo tokens (``role  name  token`` per line, mode 0600).
    ``now`` fixes the present the history is built around (default: the current time).
    """
    started = time.perf_counter()
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as tx:
            pg = tx.pg
            await advisory_xact_lock(pg, ADVISORY_LOCK)
            if await masterdata_store.any_party(pg):
                raise DemoRefused("the database already holds data; the demo loads only into an empty database")
            loader = _Loader(pg, random.Random(seed), now)
            await loader.master_data()
            await loader.rotation_policies()
            tokens_expire_at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=TOKEN_DAYS)
            issued = await loader.principals(tokens_expire_at)
            await loader.history()
            await loader.targets()
            await potential.load(pg, loader.actors["admin"], now.date())
            await loader.finish()
            issued += await sensors.load(pg, now, tokens_expire_at, loader.actors["admin"])
            counts = await reads.reserve_counts(pg, now.date())
            await audit.append(pg, at=now, actor="cli:demo", roles=[], action="cli demo", target=None, outcome="ok",
                               status=None, client=None, request_id=None, details={"seed": seed, **counts})
    finally:
        await db.dispose()
    result = DemoResult(seed=seed, counts=counts, tokens=issued, seconds=time.perf_counter() - started,
                        tokens_expire_at=tokens_expire_at, api_url=api_url or default_api_url(),
                        tokens_file=tokens_file)
    if tokens_file is not None:
        write_tokens(Path(tokens_file), issued)
    return result


class _Loader:
    """Loads the scenario's master data, principals, targets and policies, and has its history
    posted, on one connection."""

    def __init__(self, pg: asyncpg.Connection, rng: random.Random, now: datetime) -> None:
        self.pg, self.rng, self.now = pg, rng, now
        self.actors: dict[str, Principal] = {}
        self.operator_scope: set[str] = set()

    # ---- master data and principals -------------------------------------------------------------

    async def master_data(self) -> None:
        pg = self.pg
        for code, name, parent in REGIONS:
            await masterdata.upsert(pg, "regions", code, c.RegionIn(name=name, parent=parent))
        for code, name, sector, parent in PARTIES:
            await masterdata.upsert(pg, "parties", code, c.PartyIn(name=name, sector=sector, parent=parent))
        for m in MATERIALS:
            await masterdata.upsert(pg, "materials", m.code, c.MaterialIn(
                name=m.name, category=m.category, unit=m.unit, decimals=m.decimals, storage_class=m.storage_class,
                shelf_life_days=m.shelf_life_days, substitution_group=m.substitution_group,
                daily_consumption_per_person=Decimal(m.daily_per_person) if m.daily_per_person else None,
            ))
        for w in WAREHOUSES:
            await masterdata.upsert(pg, "warehouses", w.code, self._warehouse_in(w, "active"))

    @staticmethod
    def _warehouse_in(w: WarehouseSpec, status: str) -> c.WarehouseIn:
        return c.WarehouseIn(
            name=w.name, operator=w.operator, region=w.region, kind=w.kind, latitude=w.latitude,
            longitude=w.longitude, status=status, capacity={k: Decimal(v) for k, v in w.capacity},
        )

    async def principals(self, expires_at: datetime) -> list[tuple[str, str, str]]:
        """The demo's principals, each with a token that stops working at ``expires_at`` (the wall
        clock's, not the scenario's: the tokens are real credentials printed to a log)."""
        issued = []
        for name, role, clearance, warehouses, regions in PRINCIPALS:
            token = (await principals.issue_token(self.pg, name, Rights.of([role], clearance, warehouses, regions),
                                                  label="demo", expires_at=expires_at)).token
            issued.append((role, name, token))
            # The principal as the API would see it: grants expanded, so the use cases' scope and
            # need-to-know checks apply to the demo exactly as to a request.
            principal = await tokens.principal_for_token(self.pg, token)
            if principal is None:
                raise RuntimeError(f"the demo token of {name} does not authenticate")
            self.actors[role] = principal
            if role == "operator":
                self.operator_scope = set(warehouses)
        return issued

    def _actor(self, warehouse: str) -> Principal:
        """The demo operator records movements at its own warehouses (civilian stock only); the
        admin (cleared for military stock) records the rest."""
        return self.actors["operator"] if warehouse in self.operator_scope else self.actors["admin"]

    async def history(self) -> None:
        """The last year of operations (see ``history``), recorded by the demo's own principals."""
        await History(self.pg, self.rng, self.now, self._actor).post()

    async def targets(self) -> None:
        """Reserve targets sized against what the history left, so the demo shows every coverage
        state: each is set so usable ÷ required comes out near its ``ratio``."""
        admin = self.actors["admin"]
        today = self.now.date()
        for code, scope, selector, holder, ratio, population in DEMO_TARGETS:
            def command(quantity: Decimal) -> c.TargetIn:
                return c.TargetIn(scope=c.TargetScope(**scope), quantity=quantity, population=population,
                                  horizon_days=30, **selector, **holder)

            await targets.upsert(self.pg, code, command(Decimal(1)), admin)
            [row] = [r for r in await coverage_store.coverage(self.pg, today=today, region=None, category=None)
                     if r["code"] == code]
            usable = row["usable"]
            required = (usable / Decimal(str(ratio))).quantize(Decimal(1)) if usable > 0 else Decimal(1000)
            await targets.upsert(self.pg, code, command(max(required, Decimal(1))), admin)

    async def rotation_policies(self) -> None:
        """When each kind of stock is rotated (upserts by code: loading them twice changes nothing)."""
        for code, selector, trigger, rest in DEMO_ROTATION_POLICIES:
            await rotation.upsert_policy(self.pg, code, c.RotationPolicyIn(**selector, **trigger, **rest))

    async def finish(self) -> None:
        """Master-data changes that come after the history (a depot suspended after inspection)."""
        for w in WAREHOUSES:
            if w.final_status != "active":
                await masterdata.upsert(self.pg, "warehouses", w.code, self._warehouse_in(w, w.final_status))
