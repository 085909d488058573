"""Sensors' SQL: the sensors, the ingest of readings, their reads, the rules set-wise, and the
readings' partitions, retention and hourly rollups.

The ingest is one ``INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING`` per request (a reading
is its (sensor, at): one sent again is a duplicate and changes nothing). The evaluation reads, per
sensor, its latest reading by the primary key and — only where that reading shows a condition — the
readings back to the one that proves it lasted (``stockpile.domain.sensors.lasted``): a healthy
sensor costs one index probe, however many readings it has.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from stockpile.domain.sensors import EVIDENCE_GAP
from stockpile.store import masterdata
from stockpile.store.visibility import MILITARY_TANK, SENSORS

VISIBLE = SENSORS.format(warehouses="$1", regions="NULL", cleared="$2")

COLUMNS = ("warehouse_id", "kind", "storage_class", "material_id", "unit", "band_min", "band_max", "tolerance_minutes")


async def upsert(pg: asyncpg.Connection, code: str, values: dict[str, Any]) -> bool:
    """Create or replace the sensor ``code``; True when it was created."""
    return await masterdata.upsert(pg, "sensors", code, {c: values[c] for c in COLUMNS})


async def material_by_code(pg: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    """A gauge's material: its ``id`` and ``unit`` (None: no such material)."""
    return await pg.fetchrow("SELECT id, unit FROM materials WHERE code = $1", code)


async def place(pg: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    """Where the sensor ``code`` is, as the policy judges it: its warehouse and whether it is a
    military tank's gauge (None: no such sensor)."""
    return await pg.fetchrow(f"SELECT s.warehouse_id, {MILITARY_TANK} AS military_tank FROM sensors s WHERE s.code = $1",
                             code)


async def tank_is_military(pg: asyncpg.Connection, warehouse_id: int, material_id: int) -> bool:
    """Whether a gauge of ``material_id`` at ``warehouse_id`` would be a military tank's (``MILITARY_TANK``)."""
    return await pg.fetchval("SELECT " + MILITARY_TANK.replace("s.kind = 'tank_level'", "true")
                             .replace("s.warehouse_id", "$1::bigint").replace("s.material_id", "$2::bigint"),
                             warehouse_id, material_id)


# A sensor as it is read: its references by code and its latest reading (of the last
# ``$3`` — a bound, so the probe stays on the recent partitions).
SENSOR = """
    SELECT s.id, s.code, s.kind, s.storage_class, s.unit, s.band_min, s.band_max, s.tolerance_minutes,
           s.created_at, s.updated_at, w.code AS warehouse, m.code AS material, r.at AS last_at, r.value AS last_value
      FROM sensors s JOIN warehouses w ON w.id = s.warehouse_id LEFT JOIN materials m ON m.id = s.material_id
      LEFT JOIN LATERAL (SELECT at, value FROM sensor_readings r WHERE r.sensor_id = s.id AND r.at > $3
                          ORDER BY at DESC LIMIT 1) r ON true"""


async def get(pg: asyncpg.Connection, code: str, since: datetime, visibility: dict[str, Any]) -> asyncpg.Record | None:
    return await pg.fetchrow(f"{SENSOR} WHERE s.code = $4 AND {VISIBLE}",
                             visibility["warehouse_ids"], visibility["cleared"], since, code)


async def page(pg: asyncpg.Connection, *, warehouse: str | None, after: str | None, limit: int, since: datetime,
               visibility: dict[str, Any]) -> list[asyncpg.Record]:
    return await pg.fetch(
        f"""{SENSOR} WHERE {VISIBLE} AND ($4::text IS NULL OR w.code = $4) AND ($5::text IS NULL OR s.code > $5)
            ORDER BY s.code LIMIT $6""",
        visibility["warehouse_ids"], visibility["cleared"], since, warehouse, after, limit)


async def by_codes(pg: asyncpg.Connection, codes: list[str]) -> list[asyncpg.Record]:
    """The sensors a batch of readings names, with what the ingest judges and counts them by."""
    return await pg.fetch(
        f"""SELECT s.code, s.id, s.warehouse_id, {MILITARY_TANK} AS military_tank, w.kind AS warehouse_kind,
                   coalesce(s.storage_class, m.storage_class) AS storage_class
              FROM sensors s JOIN warehouses w ON w.id = s.warehouse_id LEFT JOIN materials m ON m.id = s.material_id
             WHERE s.code = ANY($1::text[])""", codes)


async def insert_readings(pg: asyncpg.Connection, sensor_ids: list[int], ats: list[datetime],
                          values: list[str]) -> dict[int, int]:
    """Insert readings, skipping those already stored (same sensor and time); returns how many were
    new, per sensor."""
    rows = await pg.fetch(
        """WITH new AS (
               INSERT INTO sensor_readings (sensor_id, at, value)
               SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[]::numeric[])
               ON CONFLICT (sensor_id, at) DO NOTHING
               RETURNING sensor_id)
           SELECT sensor_id, count(*) AS n FROM new GROUP BY sensor_id""",
        sensor_ids, ats, values)
    return {r["sensor_id"]: r["n"] for r in rows}


async def readings(pg: asyncpg.Connection, sensor_id: int, *, since: datetime, until: datetime, after: datetime | None,
                   limit: int) -> list[asyncpg.Record]:
    """Raw readings in [since, until), oldest first, after the keyset position ``after``."""
    return await pg.fetch(
        """SELECT at, value FROM sensor_readings
            WHERE sensor_id = $1 AND at >= $2 AND at < $3 AND ($4::timestamptz IS NULL OR at > $4)
            ORDER BY at LIMIT $5""", sensor_id, since, until, after, limit)


async def averaged(pg: asyncpg.Connection, sensor_id: int, *, since: datetime, until: datetime, step: int,
                   after: datetime | None, limit: int) -> list[asyncpg.Record]:
    """Readings in [since, until) per ``step`` seconds (buckets aligned to the epoch): count, min, max
    and mean — the raw readings and, past their retention, their hourly rollups (a rollup counts
    whole in the bucket its hour starts in)."""
    return await pg.fetch(
        """WITH parts AS (
               SELECT to_timestamp(floor(extract(epoch FROM at) / $4) * $4) AS bucket, count(*) AS n,
                      min(value) AS lo, max(value) AS hi, sum(value) AS total
                 FROM sensor_readings WHERE sensor_id = $1 AND at >= $2 AND at < $3 GROUP BY 1
               UNION ALL
               SELECT to_timestamp(floor(extract(epoch FROM hour) / $4) * $4), sum(readings), min(min_value),
                      max(max_value), sum(sum_value)
                 FROM sensor_readings_hourly WHERE sensor_id = $1 AND hour >= $2 AND hour < $3 GROUP BY 1)
           SELECT bucket AS at, sum(n)::bigint AS readings, min(lo) AS min, max(hi) AS max,
                  round(sum(total) / sum(n), 6) AS mean
             FROM parts WHERE $5::timestamptz IS NULL OR bucket > $5
            GROUP BY bucket ORDER BY bucket LIMIT $6""",
        sensor_id, since, until, step, after, limit)


# -- the rules, set-wise ---------------------------------------------------------------------------

def _shows(value: str) -> str:
    """Whether a reading ``value`` of sensor ``j`` shows its condition: a probe outside its band, a
    gauge differing from the book (``j.book``, smallest units) by more than $3 of it."""
    return f"""(CASE WHEN j.kind = 'tank_level'
                     THEN abs({value} * 10::numeric ^ j.decimals - j.book) > $3::numeric * j.book
                     ELSE coalesce({value} < j.band_min, false) OR coalesce({value} > j.band_max, false) END)"""


GAP = f"interval '{int(EVIDENCE_GAP.total_seconds())} seconds'"  # ``domain.sensors.lasted``'s

# $1 now, $2 the oldest reading looked at, $3 the gauge tolerance (a fraction), $4 the silence
# window in minutes. A row per sensor whose condition lasted or that is silent.
EVALUATE = f"""
WITH watched AS (
    SELECT s.id, s.code, s.kind, s.warehouse_id, s.material_id, s.band_min, s.band_max, s.tolerance_minutes,
           s.created_at, w.code AS warehouse, w.kind AS warehouse_kind, w.region_id, m.code AS material,
           m.decimals, m.unit AS material_unit, coalesce(s.storage_class, m.storage_class) AS storage_class,
           CASE WHEN s.kind = 'tank_level' THEN (
               SELECT coalesce(sum(a.balance), 0)::bigint FROM lots l JOIN accounts a ON a.lot_id = l.id AND a.type = 'stock'
                WHERE l.warehouse_id = s.warehouse_id AND l.material_id = s.material_id) END AS book,
           {MILITARY_TANK} AS military_tank
      FROM sensors s JOIN warehouses w ON w.id = s.warehouse_id LEFT JOIN materials m ON m.id = s.material_id),
latest AS (
    SELECT j.*, r.at AS last_at, r.value AS last_value
      FROM watched j LEFT JOIN LATERAL (
          SELECT at, value FROM sensor_readings r WHERE r.sensor_id = j.id AND r.at > $2
           ORDER BY at DESC LIMIT 1) r ON true),
anchored AS (
    SELECT j.*, an.at AS anchor_at
      FROM latest j LEFT JOIN LATERAL (
          SELECT at FROM sensor_readings r
           WHERE r.sensor_id = j.id AND r.at <= j.last_at - j.tolerance_minutes * interval '1 minute'
             AND r.at >= j.last_at - j.tolerance_minutes * interval '1 minute' - {GAP}
           ORDER BY at DESC LIMIT 1) an ON j.last_at IS NOT NULL AND {_shows("j.last_value")}),
judged AS (
    SELECT j.*,
           j.anchor_at IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM sensor_readings r WHERE r.sensor_id = j.id AND r.at >= j.anchor_at AND r.at <= j.last_at
                  AND NOT {_shows("r.value")}) AS lasted,
           coalesce(j.last_at, j.created_at) < $1::timestamptz - $4 * interval '1 minute' AS silent
      FROM anchored j)
SELECT * FROM judged WHERE lasted OR silent ORDER BY code"""


async def judged(pg: asyncpg.Connection, *, now: datetime, oldest: datetime, gauge_tolerance: Decimal,
                 silence_minutes: int) -> list[asyncpg.Record]:
    """Every sensor whose condition has lasted its tolerance (a probe in excursion, a gauge at
    variance: ``lasted``) or that is silent, with what the alerts say of it."""
    return await pg.fetch(EVALUATE, now, oldest, gauge_tolerance, silence_minutes)


async def window(pg: asyncpg.Connection, sensor_id: int, since: datetime, until: datetime,
                 limit: int) -> list[asyncpg.Record]:
    """The readings that proved a condition (the latest ``limit`` of them), oldest first."""
    return list(reversed(await pg.fetch(
        "SELECT at, value FROM sensor_readings WHERE sensor_id = $1 AND at >= $2 AND at <= $3 ORDER BY at DESC LIMIT $4",
        sensor_id, since, until, limit)))


async def lots_on_hand(pg: asyncpg.Connection, warehouse_id: int, storage_class: str) -> list[asyncpg.Record]:
    """The lots of a storage class at a warehouse with stock on hand, locked, with whether a military
    party holds some of it."""
    return await pg.fetch(
        """SELECT l.id::text AS id, l.code, l.status, m.code AS material,
                  bool_or(o.sector = 'military' AND a.balance > 0) AS military
             FROM lots l JOIN materials m ON m.id = l.material_id
             JOIN accounts a ON a.lot_id = l.id AND a.type = 'stock' JOIN parties o ON o.id = a.owner_id
            WHERE l.warehouse_id = $1 AND m.storage_class = $2
            GROUP BY l.id, l.code, l.status, m.code HAVING sum(a.balance) > 0
            ORDER BY l.id""", warehouse_id, storage_class)


async def sensor_counts(pg: asyncpg.Connection) -> list[asyncpg.Record]:
    """Sensors by warehouse kind, storage class and state — the state from their open alerts (an
    excursion first, then a variance, then offline) — for the metrics snapshot (bounded: kinds ×
    classes × four states, never a series per sensor)."""
    return await pg.fetch(
        """SELECT warehouse_kind, storage_class, state, count(*) AS n FROM (
               SELECT w.kind AS warehouse_kind, coalesce(s.storage_class, m.storage_class) AS storage_class,
                      CASE WHEN bool_or(a.kind = 'cold_chain_excursion') THEN 'excursion'
                           WHEN bool_or(a.kind = 'stock_variance') THEN 'variance'
                           WHEN bool_or(a.kind = 'sensor_offline') THEN 'offline' ELSE 'ok' END AS state
                 FROM sensors s JOIN warehouses w ON w.id = s.warehouse_id LEFT JOIN materials m ON m.id = s.material_id
                 LEFT JOIN alerts a ON a.subject = 'sensor:' || s.code AND a.state <> 'resolved'
                                   AND a.kind IN ('cold_chain_excursion', 'stock_variance', 'sensor_offline')
                GROUP BY s.id, w.kind, coalesce(s.storage_class, m.storage_class)) states
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""")


# -- partitions, retention, rollups ------------------------------------------------------------------

async def make_partitions(pg: asyncpg.Connection, first: date, last: date) -> int:
    """Make the daily partitions of [first, last] that do not exist yet; returns how many were made."""
    return await pg.fetchval(
        "SELECT count(*) FILTER (WHERE sensor_readings_partition(d::date)) FROM generate_series($1::date, $2::date, "
        "interval '1 day') d", first, last)


async def partitions_before(pg: asyncpg.Connection, cutoff: date) -> list[str]:
    """The daily partitions wholly before ``cutoff`` (their day ends by then), oldest first."""
    return await pg.fetch(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'sensor_readings'::regclass AND c.relname ~ '^sensor_readings_[0-9]{8}$'
              AND to_date(substr(c.relname, 17), 'YYYYMMDD') < $1 ORDER BY c.relname""", cutoff)


ROLL_UP = """
    INSERT INTO sensor_readings_hourly AS h (sensor_id, hour, readings, min_value, max_value, sum_value)
    SELECT sensor_id, date_trunc('hour', at, 'UTC'), count(*), min(value), max(value), sum(value)
      FROM {source} GROUP BY 1, 2
    ON CONFLICT (sensor_id, hour) DO UPDATE
       SET readings = h.readings + EXCLUDED.readings, min_value = least(h.min_value, EXCLUDED.min_value),
           max_value = greatest(h.max_value, EXCLUDED.max_value), sum_value = h.sum_value + EXCLUDED.sum_value"""


async def roll_up_partition(pg: asyncpg.Connection, name: str) -> int:
    """Replace a day's raw readings by their hourly rollups (merged into an hour already rolled up)
    and drop the partition; returns how many raw readings it held."""
    held = await pg.fetchval(f'SELECT count(*) FROM "{name}"')
    await pg.execute(ROLL_UP.format(source=f'"{name}"'))
    await pg.execute(f'ALTER TABLE sensor_readings DETACH PARTITION "{name}"')
    await pg.execute(f'DROP TABLE "{name}"')
    return held


async def roll_up_default(pg: asyncpg.Connection, cutoff: datetime) -> int:
    """Replace the readings before ``cutoff`` the default partition caught by their hourly rollups."""
    await pg.execute(ROLL_UP.format(source="(SELECT * FROM sensor_readings_default WHERE at < $1) r"), cutoff)
    status = await pg.execute("DELETE FROM sensor_readings_default WHERE at < $1", cutoff)
    return int(status.split()[-1])


async def simulated(pg: asyncpg.Connection, since: datetime) -> list[asyncpg.Record]:
    """Every sensor with what a simulation of it needs: its band, and for a gauge the book now (in
    the material's unit) and the stock movements at its tank since ``since`` (when, how much), so its
    level can follow the ledger back in time."""
    return await pg.fetch(
        """SELECT s.id, s.code, s.kind, s.band_min, s.band_max, w.code AS warehouse, m.decimals,
                  (SELECT coalesce(sum(a.balance), 0)::bigint FROM lots l JOIN accounts a ON a.lot_id = l.id
                     AND a.type = 'stock' WHERE l.warehouse_id = s.warehouse_id AND l.material_id = s.material_id) AS book,
                  (SELECT coalesce(json_agg(json_build_array(extract(epoch FROM mv.occurred_at), p.delta)
                                            ORDER BY mv.occurred_at), '[]')
                     FROM lots l JOIN accounts a ON a.lot_id = l.id AND a.type = 'stock'
                     JOIN postings p ON p.account_id = a.id JOIN movements mv ON mv.id = p.movement_id
                    WHERE s.kind = 'tank_level' AND l.warehouse_id = s.warehouse_id AND l.material_id = s.material_id
                      AND mv.occurred_at > $1)::text AS moved
             FROM sensors s JOIN warehouses w ON w.id = s.warehouse_id LEFT JOIN materials m ON m.id = s.material_id
            ORDER BY s.code""", since)
