"""The allocation rule table: versioned, so a plan can say which rules it was made under."""

from __future__ import annotations

import asyncpg

from stockpile.domain.rules import Rule

_COLUMNS = ("code, level, category, requester_sector, owner_sector, allowed, floor_ratio, preference_cost,"
            " approval_required, obligation, note")


async def current_version(pg: asyncpg.Connection) -> int:
    return await pg.fetchval("SELECT max(version) FROM allocation_rule_versions")


async def ruleset(pg: asyncpg.Connection, version: int | None = None) -> tuple[int, list[Rule]]:
    """The rules in force at ``version`` (the current version when omitted)."""
    version = version if version is not None else await current_version(pg)
    rows = await pg.fetch(
        f"""SELECT {_COLUMNS} FROM allocation_rules
            WHERE valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1) ORDER BY code""", version)
    return version, [Rule(**dict(r)) for r in rows]


async def put(pg: asyncpg.Connection, rule: Rule, principal_id: int) -> tuple[bool, int]:
    """Replace (or add) the rule with this code, opening a new version of the rule table.

    Concurrent edits queue on a transaction-level advisory lock so versions stay a sequence."""
    await pg.execute("SELECT pg_advisory_xact_lock(hashtext('allocation_rules'))")
    version = await current_version(pg) + 1
    await pg.execute("INSERT INTO allocation_rule_versions (version, created_by, note) VALUES ($1, $2, $3)",
                     version, principal_id, f"rule {rule.code} set")
    closed = await pg.execute("UPDATE allocation_rules SET valid_to = $2 WHERE code = $1 AND valid_to IS NULL",
                              rule.code, version)
    await pg.execute(
        f"""INSERT INTO allocation_rules (valid_from, {_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
        version, rule.code, rule.level, rule.category, rule.requester_sector, rule.owner_sector, rule.allowed,
        rule.floor_ratio, rule.preference_cost, rule.approval_required, rule.obligation, rule.note)
    return closed == "UPDATE 0", version
