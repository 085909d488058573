"""Readiness declarations (commanders, two-person rule for wartime) and the allocation rule table
(admins). Obligations are ``stockpile.services.obligations``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from stockpile.domain import readiness
from stockpile.domain.access import Principal
from stockpile.domain.errors import Conflict, Invalid, NotFound
from stockpile.domain.rules import Rule
from stockpile.services import commands as c
from stockpile.store import masterdata, rules
from stockpile.store import readiness as store


@dataclass(frozen=True)
class RuleTable:
    """The allocation rules at one version, and the version now in force."""

    version: int
    current_version: int
    rules: list[Rule]


async def declare(pg: asyncpg.Connection, data: c.DeclarationIn, principal: Principal, now: datetime) -> asyncpg.Record:
    """Record a declaration. Wartime waits for a second commander; the other levels take effect at once."""
    region_id = (await masterdata.ids_by_code(pg, "regions", [data.region])).get(data.region)
    if region_id is None:
        raise Invalid.field("region", f"unknown code {data.region!r}")
    if data.ends_at is not None and data.ends_at <= now:
        raise Invalid.field("ends_at", "must be in the future")
    declaration_id = await store.declare(pg, region_id=region_id, level=data.level, reason=data.reason,
                                         principal_id=principal.id, pending=readiness.needs_confirmation(data.level),
                                         ends_at=data.ends_at)
    return await store.declaration(pg, declaration_id)


async def confirm(pg: asyncpg.Connection, declaration_id: str, principal: Principal) -> asyncpg.Record:
    row = await store.declaration(pg, declaration_id, for_update=True)
    if row is None:
        raise NotFound(f"no readiness declaration {declaration_id}")
    readiness.check_confirmation(row["state"], row["declared_by"], principal.id)
    await store.confirm(pg, declaration_id, row["region_id"], principal.id)
    return await store.declaration(pg, declaration_id)


async def withdraw(pg: asyncpg.Connection, declaration_id: str, principal: Principal) -> asyncpg.Record:
    """A pending wartime declaration may be withdrawn (by any commander) instead of confirmed."""
    row = await store.declaration(pg, declaration_id, for_update=True)
    if row is None:
        raise NotFound(f"no readiness declaration {declaration_id}")
    if row["state"] != "pending_confirmation":
        raise Conflict(f"the declaration is {row['state']}; only a pending one is withdrawn (declare a new level instead)")
    await store.withdraw(pg, declaration_id)
    return await store.declaration(pg, declaration_id)


async def declarations(pg: asyncpg.Connection, *, region: str | None, state: str | None,
                       before: tuple[datetime, str] | None, limit: int) -> list[asyncpg.Record]:
    """Declarations newest first, of one region (by code) if given; an unknown region is a 422."""
    region_id = None
    if region is not None:
        region_id = (await masterdata.ids_by_code(pg, "regions", [region])).get(region)
        if region_id is None:
            raise Invalid.field("region", f"unknown code {region!r}")
    return await store.declarations(pg, region_id=region_id, state=state, before=before, limit=limit)


async def declaration(pg: asyncpg.Connection, declaration_id: str) -> asyncpg.Record:
    row = await store.declaration(pg, declaration_id)
    if row is None:
        raise NotFound(f"no readiness declaration {declaration_id}")
    return row


@dataclass(frozen=True)
class RegionLevel:
    """A region's effective level (``api.presenters.readiness.present_level`` shows it): its row,
    its parent's code, and the nearest region (itself or an ancestor) declaring that level, if any."""

    region: asyncpg.Record
    parent: str | None
    level: str
    source: asyncpg.Record | None


async def levels(pg: asyncpg.Connection) -> list[RegionLevel]:
    """Every region's effective level, with the region its level comes from."""
    rows = await store.regions(pg)
    by_id = {r["id"]: r for r in rows}
    effective = await store.effective_levels(pg)
    items = []
    for r in rows:
        source, walk = None, r
        while walk is not None:  # the nearest region (itself or an ancestor) declaring the effective level
            if walk["own_level"] == effective[r["id"]]:
                source = walk
                break
            walk = by_id.get(walk["parent_id"])
        items.append(RegionLevel(r, by_id[r["parent_id"]]["code"] if r["parent_id"] else None, effective[r["id"]], source))
    return items


async def rule_table(pg: asyncpg.Connection, version: int | None) -> RuleTable:
    current = await rules.current_version(pg)
    if version is not None and not 1 <= version <= current:
        raise Invalid.field("version", f"must be between 1 and {current}")
    version, ruleset = await rules.ruleset(pg, version)
    return RuleTable(version, current, ruleset)


async def put_rule(pg: asyncpg.Connection, code: str, data: c.RuleIn, principal: Principal) -> tuple[bool, Rule, int]:
    if data.floor_ratio is not None and not (data.floor_ratio.is_finite() and 0 <= data.floor_ratio <= 1):
        raise Invalid.field("floor_ratio", "must be between 0 and 1")
    if data.obligation is not None and not data.allowed:
        raise Invalid.field("obligation", "a rule that forbids the draw creates no obligation")
    floor = None if data.floor_ratio is None else data.floor_ratio.quantize(Decimal("0.0001"))
    rule = Rule(code, data.level, data.category, data.requester_sector, data.owner_sector, data.allowed, floor,
                data.preference_cost, data.approval_required, data.obligation, data.note)
    created, version = await rules.put(pg, rule, principal.id)
    return created, rule, version
