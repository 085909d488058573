"""Allocation requests, plans and drills: the SQL of planning, approval and dispatch."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from typing import Any

import asyncpg

from stockpile.store.db import Statement
from stockpile.store.visibility import COUNTED_STOCK, DRILLS, PLANS, REQUESTS, TARGETS

_REQUEST = """
SELECT r.id::text AS id, r.requester_id, p.code AS requester, p.sector AS requester_sector, r.destination_id,
       w.code AS destination, w.region_id AS destination_region_id, w.latitude::float8 AS latitude,
       w.longitude::float8 AS longitude, r.material_id, m.code AS material, r.substitution_group, r.category,
       r.decimals, r.quantity, r.priority, r.needed_by, r.purpose, r.state, r.created_at
FROM allocation_requests r
JOIN parties p ON p.id = r.requester_id
JOIN warehouses w ON w.id = r.destination_id
LEFT JOIN materials m ON m.id = r.material_id
"""

_CLOSURE = """WITH RECURSIVE closure(ancestor, descendant) AS (
    SELECT id, id FROM regions
    UNION ALL SELECT c.ancestor, r.id FROM closure c JOIN regions r ON r.parent_id = c.descendant)"""


async def insert_request(pg: asyncpg.Connection, values: dict[str, Any]) -> str:
    columns = list(values)
    return await pg.fetchval(
        f"""INSERT INTO allocation_requests ({", ".join(columns)})
            VALUES ({", ".join(f"${i}" for i in range(1, len(columns) + 1))}) RETURNING id::text""",
        *values.values())


async def request(pg: asyncpg.Connection, request_id: str, *, warehouse_ids: list[int] | None = None,
                  cleared: bool = True, for_update: bool = False) -> asyncpg.Record | None:
    """One request as the reader (``warehouse_ids``, ``cleared``; by default everything) may see it."""
    return await pg.fetchrow(
        _REQUEST + f" WHERE r.id = $1::uuid AND {REQUESTS.format(warehouses='$2', cleared='$3')}"
        + (" FOR UPDATE OF r" if for_update else ""), request_id, warehouse_ids, cleared)


def requests(*, state: str | None, priority: str | None, after: str | None, limit: int | None,
             warehouse_ids: list[int] | None = None, cleared: bool = True) -> Statement:
    """Requests the reader may see, by id; ``limit`` None: every one."""
    return Statement(
        _REQUEST + f""" WHERE ($1::text IS NULL OR r.state = $1) AND ($2::text IS NULL OR r.priority = $2)
                         AND ($3::uuid IS NULL OR r.id > $3) AND {REQUESTS.format(warehouses='$5', cleared='$6')}
                       ORDER BY r.id LIMIT $4""",
        (state, priority, after, limit, warehouse_ids, cleared))


async def pending_requests(pg: asyncpg.Connection, *, region_id: int | None, request_ids: list[str] | None,
                           for_update: bool = False, warehouse_ids: list[int] | None = None,
                           cleared: bool = True) -> list[asyncpg.Record]:
    """Pending requests whose destination lies in ``region_id``'s subtree (or the ones named), of
    those the reader (``warehouse_ids``, ``cleared``; by default everything) may see."""
    lock = " FOR UPDATE OF r" if for_update else ""
    return await pg.fetch(
        _CLOSURE + _REQUEST + f"""
        WHERE r.state = 'pending' AND ($2::uuid[] IS NULL OR r.id = ANY($2::uuid[]))
          AND ($1::bigint IS NULL OR w.region_id IN (SELECT descendant FROM closure WHERE ancestor = $1))
          AND {REQUESTS.format(warehouses='$3', cleared='$4')}
        ORDER BY r.id""" + lock, region_id, request_ids, warehouse_ids, cleared)


async def requests_seen(pg: asyncpg.Connection, request_ids: list[str], *, warehouse_ids: list[int] | None = None,
                        cleared: bool = True) -> set[str]:
    """Those of ``request_ids`` (as given) naming a request the reader (``warehouse_ids``,
    ``cleared``; by default everything) may see, whatever its state."""
    rows = await pg.fetch(
        f"""SELECT given.id FROM unnest($1::text[]) AS given(id)
             WHERE EXISTS (SELECT 1 FROM allocation_requests r
                            WHERE r.id = given.id::uuid AND {REQUESTS.format(warehouses='$2', cleared='$3')})""",
        request_ids, warehouse_ids, cleared)
    return {r["id"] for r in rows}


async def destinations(pg: asyncpg.Connection, warehouse_ids: list[int]) -> dict[int, asyncpg.Record]:
    """The ``code`` and the ``latitude`` and ``longitude`` (floats: distances are computed in
    floating point) of each of the warehouses, by id."""
    rows = await pg.fetch("SELECT id, code, latitude::float8 AS latitude, longitude::float8 AS longitude "
                          "FROM warehouses WHERE id = ANY($1::bigint[])", warehouse_ids)
    return {r["id"]: r for r in rows}


async def candidate_positions(pg: asyncpg.Connection, *, material_ids: list[int], groups: list[str], today: date,
                              lost_warehouse_ids: list[int] = (), cleared: bool = True) -> list[asyncpg.Record]:
    """Positions that could send stock: usable lots (available status, not expired) of the materials
    or substitution groups asked for, in active warehouses, with something left after reservations
    (and, unless ``cleared``, no military-owned stock)."""
    return await pg.fetch(
        f"""SELECT a.id AS account_id, l.id::text AS lot_id, l.code AS lot_code, a.owner_id, o.code AS owner,
                  o.sector AS owner_sector, l.warehouse_id, w.code AS warehouse, w.region_id,
                  w.latitude::float8 AS latitude, w.longitude::float8 AS longitude, l.material_id,
                  m.code AS material, m.substitution_group, m.category, m.decimals,
                  a.balance - a.reserved AS available, l.expires_on
             FROM accounts a
             JOIN lots l ON l.id = a.lot_id
             JOIN materials m ON m.id = l.material_id
             JOIN warehouses w ON w.id = l.warehouse_id
             JOIN parties o ON o.id = a.owner_id
            WHERE a.type = 'stock' AND a.balance > a.reserved AND l.status = 'available'
              AND (l.expires_on IS NULL OR l.expires_on > $3) AND w.status = 'active'
              AND NOT (w.id = ANY($4::bigint[]))
              AND (l.material_id = ANY($1::bigint[]) OR m.substitution_group = ANY($2::text[]))
              AND {COUNTED_STOCK.format(cleared="$5")}
            ORDER BY a.id""",
        material_ids, groups, today, list(lost_warehouse_ids), cleared)


# A target has one scope (a warehouse or a region) and one material selector (a material, a category
# or a substitution group): six kinds of match, each an equality join on its own keys, so a position
# meets only the targets filed under its place and its material. A region-scoped target is filed under
# every region of its scope (``below``), so a position is matched on its own region.
_PLACES = {"warehouse": ("reserve_targets t", "t.scope_warehouse_id = h.warehouse_id"),
           "region": ("below t", "t.region_id = h.region_id")}
_SELECTORS = ("material_id", "category", "substitution_group")
_MATCHES = "\n                UNION ALL\n".join(
    f"""SELECT h.account_id, h.decimals, h.owner_id, h.sector, h.expires_on, t.id AS target_id,
                       t.owner_id AS t_owner, t.sector AS t_sector, t.horizon_days
                  FROM held h JOIN {targets} ON {place} AND t.{selector} = h.{selector}
                 WHERE $3::bigint[] IS NULL OR t.id = ANY($3::bigint[])"""
    for targets, place in _PLACES.values() for selector in _SELECTORS)


async def memberships(pg: asyncpg.Connection, account_ids: list[int], today: date,
                      target_ids: Iterable[int] | None = None) -> list[asyncpg.Record]:
    """Per position (``account_id``, with the ``decimals`` of its material): the ``target_ids`` it
    counts toward — scope, material and owner match, and its lot is usable over the target's horizon
    (stockpile.domain.coverage.TargetScope, outlives_horizon); only ``target_ids`` when given. A
    position counting toward none is left out."""
    return await pg.fetch(
        f"""WITH RECURSIVE above(region_id, ancestor) AS (
                SELECT id, id FROM regions
                UNION ALL SELECT a.region_id, r.parent_id FROM above a JOIN regions r ON r.id = a.ancestor
                 WHERE r.parent_id IS NOT NULL),
            held AS MATERIALIZED (
                SELECT a.id AS account_id, a.owner_id, o.sector, m.id AS material_id, m.category, m.substitution_group,
                       m.decimals, l.warehouse_id, w.region_id, l.expires_on
                  FROM accounts a
                  JOIN lots l ON l.id = a.lot_id
                  JOIN materials m ON m.id = l.material_id
                  JOIN warehouses w ON w.id = l.warehouse_id
                  JOIN parties o ON o.id = a.owner_id
                 WHERE a.id = ANY($1::bigint[]) AND l.status = 'available'
                   AND (l.expires_on IS NULL OR l.expires_on > $2::date)),  -- no target counts stock dead by today
            below AS MATERIALIZED (  -- each region-scoped target once per region in its scope
                SELECT t.*, ab.region_id FROM reserve_targets t JOIN above ab ON ab.ancestor = t.scope_region_id),
            matched AS (
                {_MATCHES})
        SELECT account_id, min(decimals) AS decimals, array_agg(target_id ORDER BY target_id) AS target_ids
          FROM matched
         WHERE (t_owner = owner_id OR t_sector = sector OR (t_owner IS NULL AND t_sector IS NULL))
           AND (expires_on IS NULL OR expires_on > $2::date + horizon_days)
         GROUP BY account_id""",
        account_ids, today, None if target_ids is None else sorted(target_ids))


FLOORS_LOCK = "reserve_floors"


async def lock_floors(pg: asyncpg.Connection, target_ids: list[int]) -> None:
    """Serialise approvals drawing on the same reserve targets (guarantee 8 under concurrency):
    the floors lock shared (the rotation planner takes it exclusively, see ``lock_all_floors``),
    then one transaction-level advisory lock per target, taken in id order."""
    await pg.execute("SELECT pg_advisory_xact_lock_shared(hashtext($1))", FLOORS_LOCK)
    for target_id in sorted(set(target_ids)):
        await pg.execute("SELECT pg_advisory_xact_lock(hashtext('reserve_target_floor'), $1::int)", target_id)


async def lock_all_floors(pg: asyncpg.Connection) -> None:
    """Every floor at once, for a planner that weighs all targets (rotation): no approval runs meanwhile."""
    await pg.execute("SELECT pg_advisory_xact_lock(hashtext($1))", FLOORS_LOCK)


async def rotation_outstanding(pg: asyncpg.Connection, within: tuple[list[int], list[int]] | None = None, *,
                               cleared: bool = True) -> list[asyncpg.Record]:
    """Stock open rotation orders are still to take out, per position (its stock account); only at
    the warehouses and of the materials ``within`` names, when given (read from those lots on); and,
    unless ``cleared``, only of positions not owned by the military."""
    if within is None:
        return await pg.fetch(
            f"""SELECT a.id AS account_id, sum(ro.quantity - ro.out_quantity) AS units
                  FROM rotation_orders ro
                  JOIN accounts a ON a.lot_id = ro.lot_id AND a.owner_id = ro.owner_id AND a.type = 'stock'
                  JOIN parties o ON o.id = ro.owner_id
                 WHERE ro.state IN ('planned', 'in_progress') AND ro.out_quantity < ro.quantity
                   AND {COUNTED_STOCK.format(cleared="$1")}
                 GROUP BY a.id""", cleared)
    return await pg.fetch(
        f"""SELECT a.id AS account_id, sum(ro.quantity - ro.out_quantity) AS units
              FROM lots l
              JOIN rotation_orders ro ON ro.lot_id = l.id AND ro.state IN ('planned', 'in_progress')
              JOIN accounts a ON a.lot_id = ro.lot_id AND a.owner_id = ro.owner_id AND a.type = 'stock'
              JOIN parties o ON o.id = ro.owner_id
             WHERE l.warehouse_id = ANY($1::bigint[]) AND l.material_id = ANY($2::bigint[])
               AND ro.out_quantity < ro.quantity AND {COUNTED_STOCK.format(cleared="$3")}
             GROUP BY a.id""", *within, cleared)


async def insert_plan(pg: asyncpg.Connection, plan: dict[str, Any], requests_: list[tuple], lines: list[tuple]) -> str:
    plan_id = await pg.fetchval(
        """INSERT INTO allocation_plans (region_id, rule_version, levels, objective, build_ms, solve_ms, arcs, created_by)
           VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8) RETURNING id::text""",
        plan["region_id"], plan["rule_version"], json.dumps(plan["levels"]), plan["objective"], plan["build_ms"],
        plan["solve_ms"], plan["arcs"], plan["created_by"])
    await pg.executemany(
        """INSERT INTO plan_requests (plan_id, request_id, requested, planned, reasons)
           VALUES ($1, $2::uuid, $3, $4, $5)""", [(plan_id, *r) for r in requests_])
    await pg.executemany(
        """INSERT INTO plan_lines (plan_id, request_id, account_id, lot_id, owner_id, warehouse_id, quantity,
                                   distance_km, rule_code, obligation)
           VALUES ($1, $2::uuid, $3, $4::uuid, $5, $6, $7, $8, $9, $10)""", [(plan_id, *line) for line in lines])
    return plan_id


async def plan(pg: asyncpg.Connection, plan_id: str, *, for_update: bool = False, warehouse_ids: list[int] | None = None,
               cleared: bool = True) -> asyncpg.Record | None:
    """One plan as the reader (``warehouse_ids``, ``cleared``; by default everything) may see it."""
    return await pg.fetchrow(
        f"""SELECT p.*, p.id::text AS id FROM allocation_plans p
             WHERE p.id = $1::uuid AND {PLANS.format(warehouses='$2', cleared='$3')}"""
        + (" FOR UPDATE" if for_update else ""), plan_id, warehouse_ids, cleared)


async def plans(pg: asyncpg.Connection, *, state: str | None, after: str | None, limit: int,
                warehouse_ids: list[int] | None = None, cleared: bool = True) -> list[asyncpg.Record]:
    return await pg.fetch(
        f"""SELECT p.*, p.id::text AS id FROM allocation_plans p
            WHERE ($1::text IS NULL OR p.state = $1) AND ($2::uuid IS NULL OR p.id > $2)
              AND {PLANS.format(warehouses='$4', cleared='$5')}
            ORDER BY p.id LIMIT $3""",
        state, after, limit, warehouse_ids, cleared)


async def plan_place(pg: asyncpg.Connection, plan_id: str) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    """What the policy needs of a plan as it is now: its requests (destination, its region, the
    requester's sector) and the warehouses and owners' sectors its lines draw on."""
    requests_ = await pg.fetch(
        """SELECT r.destination_id, w.region_id AS destination_region_id, q.sector AS requester_sector
             FROM plan_requests pr JOIN allocation_requests r ON r.id = pr.request_id
             JOIN warehouses w ON w.id = r.destination_id JOIN parties q ON q.id = r.requester_id
            WHERE pr.plan_id = $1::uuid""", plan_id)
    sources = await pg.fetch(
        """SELECT DISTINCT pl.warehouse_id, o.sector AS owner_sector
             FROM plan_lines pl JOIN parties o ON o.id = pl.owner_id WHERE pl.plan_id = $1::uuid""", plan_id)
    return requests_, sources


_PLAN_LINES = """
SELECT pl.id, pl.plan_id::text AS plan_id, pl.request_id::text AS request_id, pl.account_id, pl.lot_id::text AS lot_id,
       l.code AS lot_code, l.expires_on, pl.owner_id, o.code AS owner, o.sector AS owner_sector, pl.warehouse_id,
       w.code AS warehouse, pl.quantity, pl.distance_km, pl.rule_code, pl.obligation, m.decimals,
       m.code AS material, l.material_id, pl.transfer_id::text AS transfer_id, t.received_at,
       pl.obligation_id::text AS obligation_id, r.requester_id, rq.code AS requester, rq.sector AS requester_sector,
       r.destination_id, d.code AS destination
  FROM plan_lines pl
  JOIN lots l ON l.id = pl.lot_id
  JOIN materials m ON m.id = l.material_id
  JOIN parties o ON o.id = pl.owner_id
  JOIN warehouses w ON w.id = pl.warehouse_id
  JOIN allocation_requests r ON r.id = pl.request_id
  JOIN parties rq ON rq.id = r.requester_id
  JOIN warehouses d ON d.id = r.destination_id
  LEFT JOIN transfers t ON t.id = pl.transfer_id
"""

_PLAN_REQUESTS = """
SELECT pr.plan_id::text AS plan_id, pr.request_id::text AS request_id, pr.requested, pr.planned, pr.reasons,
       r.decimals, r.priority, r.needed_by, r.state
  FROM plan_requests pr JOIN allocation_requests r ON r.id = pr.request_id
"""
_PLAN_REQUESTS_ORDER = "r.priority = 'routine', r.priority = 'priority', r.priority = 'immediate', pr.request_id"


def _by_plan(rows: list[asyncpg.Record]) -> dict[str, list[asyncpg.Record]]:
    grouped: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        grouped.setdefault(row["plan_id"], []).append(row)
    return grouped


async def plan_lines(pg: asyncpg.Connection, plan_id: str) -> list[asyncpg.Record]:
    """A plan's lines with what they name, and the state of the transfer that carried each."""
    return await pg.fetch(_PLAN_LINES + " WHERE pl.plan_id = $1::uuid ORDER BY pl.id", plan_id)


async def plan_lines_of(pg: asyncpg.Connection, plan_ids: list[str]) -> dict[str, list[asyncpg.Record]]:
    """The lines of several plans (as ``plan_lines`` reads them) in one statement, by plan id; a plan
    without lines is left out."""
    return _by_plan(await pg.fetch(_PLAN_LINES + " WHERE pl.plan_id = ANY($1::uuid[]) ORDER BY pl.plan_id, pl.id",
                                   plan_ids))


async def plan_requests(pg: asyncpg.Connection, plan_id: str) -> list[asyncpg.Record]:
    return await pg.fetch(_PLAN_REQUESTS + f" WHERE pr.plan_id = $1::uuid ORDER BY {_PLAN_REQUESTS_ORDER}", plan_id)


async def plan_requests_of(pg: asyncpg.Connection, plan_ids: list[str]) -> dict[str, list[asyncpg.Record]]:
    """The requests of several plans (as ``plan_requests`` reads them) in one statement, by plan id."""
    return _by_plan(await pg.fetch(
        _PLAN_REQUESTS + f" WHERE pr.plan_id = ANY($1::uuid[]) ORDER BY pr.plan_id, {_PLAN_REQUESTS_ORDER}", plan_ids))


async def lock_accounts(pg: asyncpg.Connection, account_ids: list[int]) -> dict[int, asyncpg.Record]:
    """Lock the plan's positions in id order (the ledger's lock order) and read them with their lot."""
    rows = await pg.fetch(
        """SELECT a.id, a.balance, a.reserved, l.status, l.expires_on
             FROM accounts a JOIN lots l ON l.id = a.lot_id
            WHERE a.id = ANY($1::bigint[]) ORDER BY a.id FOR UPDATE OF a""", sorted(set(account_ids)))
    return {r["id"]: r for r in rows}


async def reserve(pg: asyncpg.Connection, amounts: dict[int, int]) -> None:
    """Add (or, negative, release) reservations; the accounts' CHECK keeps 0 <= reserved <= balance."""
    await pg.executemany("UPDATE accounts SET reserved = reserved + $2 WHERE id = $1", sorted(amounts.items()))


async def set_plan_state(pg: asyncpg.Connection, plan_id: str, state: str, **columns: Any) -> None:
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=3))
    await pg.execute(f"UPDATE allocation_plans SET state = $2{', ' + sets if sets else ''} WHERE id = $1::uuid",
                     plan_id, state, *columns.values())


async def set_requests_state(pg: asyncpg.Connection, request_ids: list[str], state: str) -> None:
    await pg.execute("UPDATE allocation_requests SET state = $2 WHERE id = ANY($1::uuid[])", request_ids, state)


async def mark_line(pg: asyncpg.Connection, line_id: int, *, transfer_id: str | None = None,
                    obligation_id: str | None = None) -> None:
    await pg.execute(
        """UPDATE plan_lines SET transfer_id = coalesce($2::uuid, transfer_id),
                                 obligation_id = coalesce($3::uuid, obligation_id) WHERE id = $1""",
        line_id, transfer_id, obligation_id)


async def lapsed_plans(pg: asyncpg.Connection, now) -> list[str]:
    """Approved plans whose reservations have lapsed, locked."""
    rows = await pg.fetch(
        """SELECT id::text AS id FROM allocation_plans WHERE state = 'approved' AND reserved_until <= $1
           ORDER BY id FOR UPDATE SKIP LOCKED""", now)
    return [r["id"] for r in rows]


async def unfilled_requests(pg: asyncpg.Connection, today: date) -> list[asyncpg.Record]:
    """Requests past their need date that have not received all they asked for (by the transfers of
    their plan's lines, and the receipts counted toward the tasking orders made for them)."""
    return await pg.fetch(
        _REQUEST + """
        LEFT JOIN LATERAL (
            SELECT coalesce(sum(pl.quantity) FILTER (WHERE t.received_at IS NOT NULL), 0) AS received
              FROM plan_lines pl JOIN allocation_plans ap ON ap.id = pl.plan_id
              LEFT JOIN transfers t ON t.id = pl.transfer_id
             WHERE pl.request_id = r.id AND ap.state IN ('approved', 'dispatched')) got ON true
        LEFT JOIN LATERAL (  -- and the output of the capacity tasked for it, as its receipts arrived
            SELECT coalesce(sum(least(tk.received, tk.quantity)), 0) AS received
              FROM taskings tk WHERE tk.request_id = r.id AND tk.state IN ('open', 'completed')) tasked ON true
        WHERE r.state <> 'cancelled' AND r.needed_by < $1 AND got.received + tasked.received < r.quantity""", today)


async def insert_drill(pg: asyncpg.Connection, name: str, scenario: dict, report: dict, principal_id: int) -> str:
    return await pg.fetchval(
        """INSERT INTO drills (name, scenario, report, created_by) VALUES ($1, $2::jsonb, $3::jsonb, $4)
           RETURNING id::text""", name, json.dumps(scenario), json.dumps(report), principal_id)


# A drill's report as the reader sees it: as computed when cleared, else the variant computed without
# military stock (stored beside it; a drill stored without one is not shown to uncleared readers).
_DRILL_REPORT = "CASE WHEN {cleared}::boolean THEN d.report - 'restricted' ELSE d.report->'restricted' END"
_DRILL_SHOWN = "({cleared} OR d.report ? 'restricted')"


async def drill(pg: asyncpg.Connection, drill_id: str, *, warehouse_ids: list[int] | None = None,
                cleared: bool = True) -> asyncpg.Record | None:
    """One drill with the report the reader (``warehouse_ids``, ``cleared``; by default everything) may see."""
    return await pg.fetchrow(
        f"""SELECT d.id::text AS id, d.name, d.created_at, d.scenario, {_DRILL_REPORT.format(cleared='$3')} AS report
              FROM drills d
             WHERE d.id = $1::uuid AND {DRILLS.format(warehouses='$2')} AND {_DRILL_SHOWN.format(cleared='$3')}""",
        drill_id, warehouse_ids, cleared)


async def drills(pg: asyncpg.Connection, *, after: str | None, limit: int, warehouse_ids: list[int] | None = None,
                 cleared: bool = True) -> list[asyncpg.Record]:
    return await pg.fetch(
        f"""SELECT d.id::text AS id, d.name, d.created_at, ({_DRILL_REPORT.format(cleared='$4')})->'fill_rate' AS fill_rate
              FROM drills d
             WHERE ($1::uuid IS NULL OR d.id > $1) AND {DRILLS.format(warehouses='$3')}
               AND {_DRILL_SHOWN.format(cleared='$4')}
             ORDER BY d.id LIMIT $2""", after, limit, warehouse_ids, cleared)


async def visible_targets(pg: asyncpg.Connection, codes: list[str], *, warehouse_ids: list[int] | None = None,
                          region_ids: list[int] | None = None, cleared: bool = True) -> set[str]:
    """The codes among ``codes`` of the reserve targets the reader (``warehouse_ids``, ``region_ids``,
    ``cleared``; by default everything) may see."""
    rows = await pg.fetch(
        f"""SELECT t.code FROM reserve_targets t LEFT JOIN parties o ON o.id = t.owner_id
             WHERE t.code = ANY($1::text[]) AND {TARGETS.format(warehouses='$2', regions='$3', cleared='$4')}""",
        codes, warehouse_ids, region_ids, cleared)
    return {r["code"] for r in rows}
