"""The notification outbox: messages written with the change they announce, delivered later.

A message is fanned out once into one delivery per configured endpoint entitled to it
(``dispatch``); deliveries are claimed with a short lease (``claim``), sent with no transaction
open, and their outcomes recorded in a transaction of their own (``record``). Need-to-know: an
endpoint without military clearance is entitled to a message only when the message is not about
military stock and no member of its payload names a military owner, a lot a military owner holds,
or a target an uncleared reader may not see (military, or counting every owner's stock — its
figures could include military stock); the trigger of migration 0015 refuses any other delivery.

Guarantees (migration 0015): one delivery per (message, endpoint); no delivery of a military
message to an endpoint without clearance; a message once military stays military.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from stockpile.store.visibility import TARGET_FIGURES_HIDDEN

# Every name a payload carries: each string member, what follows the "kind:" of a subject
# ("lot:…", "target:…"), and each word of a title or explanation.
_NAMED = r"""
member AS MATERIALIZED (
    SELECT f.id, v.value #>> '{}' AS s
      FROM fresh f CROSS JOIN LATERAL jsonb_path_query(f.payload, 'strict $.**') AS v(value)
     WHERE NOT f.military AND jsonb_typeof(v.value) = 'string'),
named AS MATERIALIZED (
    SELECT DISTINCT id, name FROM (
        SELECT id, s AS name FROM member
         UNION ALL
        SELECT id, substr(s, strpos(s, ':') + 1) FROM member WHERE strpos(s, ':') > 0
         UNION ALL
        SELECT id, rtrim(w, '.:') FROM member CROSS JOIN LATERAL regexp_split_to_table(s, '[\s,;()\[\]{}"'']+') AS w
    ) n WHERE name <> ''),
named_lot_ids AS MATERIALIZED (
    SELECT name, name::uuid AS lot_id FROM named
     WHERE name ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'),
military_name AS (
    SELECT p.code AS name FROM parties p WHERE p.sector = 'military' AND p.code IN (SELECT name FROM named)
     UNION
    SELECT t.code FROM reserve_targets t LEFT JOIN parties o ON o.id = t.owner_id
     WHERE t.code IN (SELECT name FROM named) AND {target_figures_hidden}
     UNION
    SELECT l.code FROM lots l WHERE l.code IN (SELECT name FROM named) AND {military_lot}
     UNION
    SELECT n.name FROM named_lot_ids n JOIN lots l ON l.id = n.lot_id WHERE {military_lot})"""

MILITARY_LOT = """EXISTS (SELECT 1 FROM accounts ma JOIN parties mo ON mo.id = ma.owner_id
                           WHERE ma.lot_id = l.id AND mo.sector = 'military')"""

DISPATCH = f"""
WITH fresh AS MATERIALIZED (
    SELECT id, military, payload FROM outbox WHERE dispatched_at IS NULL
     ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED),
{_NAMED.replace('{military_lot}', MILITARY_LOT).replace('{target_figures_hidden}', TARGET_FIGURES_HIDDEN)},
decided AS (
    SELECT f.id, f.military OR EXISTS (SELECT 1 FROM named n JOIN military_name m ON m.name = n.name
                                        WHERE n.id = f.id) AS military
      FROM fresh f)
UPDATE outbox o
   SET dispatched_at = now(), military = d.military,
       delivered_at = CASE WHEN $2 OR ($3 AND NOT d.military) THEN NULL ELSE now() END
  FROM decided d
 WHERE o.id = d.id
RETURNING o.id, o.military"""


async def dispatch(pg: asyncpg.Connection, endpoints: list[tuple[str, bool]], limit: int) -> dict[str, int]:
    """Fan messages not yet dispatched out into one delivery per ``(url, cleared)`` endpoint
    entitled to them. A message no endpoint is entitled to (none configured, or a military one
    with only uncleared endpoints) is settled at once: it is never sent later to an endpoint
    configured afterwards."""
    urls = [url for url, _ in endpoints]
    cleared = [c for _, c in endpoints]
    messages = await pg.fetch(DISPATCH, limit, any(cleared), not all(cleared))
    fanned = 0
    if messages and endpoints:
        fanned = int((await pg.execute(
            """INSERT INTO outbox_deliveries (message_id, endpoint, cleared)
               SELECT m.id, e.url, e.cleared
                 FROM unnest($1::uuid[], $2::boolean[]) AS m(id, military)
                 JOIN unnest($3::text[], $4::boolean[]) AS e(url, cleared) ON e.cleared OR NOT m.military
                   ON CONFLICT DO NOTHING""",
            [m["id"] for m in messages], [m["military"] for m in messages], urls, cleared)).split()[-1])
    return {"dispatched": len(messages), "military": sum(m["military"] for m in messages), "deliveries": fanned}


async def claim(pg: asyncpg.Connection, urls: list[str], cleared_urls: list[str], limit: int, lease: timedelta,
                run: str) -> list[asyncpg.Record]:
    """Lease up to ``limit`` due deliveries to the configured endpoints for run ``run``: not
    delivered, their backoff over, and no live lease (a lease that expired belonged to a run that
    died or stalled). A military message is claimed only for an endpoint cleared now, so lowering an
    endpoint's clearance holds back what was fanned out to it before. Commit before sending."""
    return await pg.fetch(
        """WITH due AS (
               SELECT d.message_id, d.endpoint
                 FROM outbox_deliveries d JOIN outbox o ON o.id = d.message_id
                WHERE d.delivered_at IS NULL AND d.next_attempt_at <= now()
                  AND (d.leased_until IS NULL OR d.leased_until <= now())
                  AND d.endpoint = ANY($2::text[]) AND (NOT o.military OR d.endpoint = ANY($3::text[]))
                ORDER BY d.next_attempt_at
                LIMIT $1 FOR UPDATE OF d SKIP LOCKED)
           UPDATE outbox_deliveries d
              SET leased_until = now() + $4::interval, leased_by = $5::uuid, attempts = d.attempts + 1
             FROM due, outbox o
            WHERE d.message_id = due.message_id AND d.endpoint = due.endpoint AND o.id = d.message_id
        RETURNING d.message_id::text AS id, d.endpoint, d.attempts, o.topic, o.payload::text AS payload,
                  o.created_at""",
        limit, urls, cleared_urls, lease, run,
    )


async def record(pg: asyncpg.Connection, run: str, delivered: list[tuple[str, str]],
                 failed: list[tuple[str, str, str, timedelta]]) -> int:
    """Record what run ``run`` sent: ``delivered`` (message id, endpoint) pairs, and ``failed`` ones
    with their error and when to try again (only while this run still holds their lease: after it
    expired another run owns them). A message whose every delivery succeeded is marked delivered;
    returns how many were."""
    ids = sorted({m for m, _ in delivered} | {f[0] for f in failed})
    if not ids:
        return 0
    # The messages' rows first, in id order: of two runs finishing a message's last deliveries at
    # once, the second waits and then sees the first's, so the message is settled exactly once.
    await pg.fetch("SELECT 1 FROM outbox WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", ids)
    if delivered:
        await pg.execute(
            """UPDATE outbox_deliveries d
                  SET delivered_at = now(), leased_until = NULL, leased_by = NULL, last_error = NULL
                 FROM unnest($1::uuid[], $2::text[]) AS s(message_id, endpoint)
                WHERE d.message_id = s.message_id AND d.endpoint = s.endpoint AND d.delivered_at IS NULL""",
            [m for m, _ in delivered], [e for _, e in delivered])
    if failed:
        await pg.execute(
            """UPDATE outbox_deliveries d
                  SET leased_until = NULL, leased_by = NULL, last_error = f.error, next_attempt_at = now() + f.retry_in
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::interval[]) AS f(message_id, endpoint, error, retry_in)
                WHERE d.message_id = f.message_id AND d.endpoint = f.endpoint AND d.delivered_at IS NULL
                  AND d.leased_by = $5::uuid""",
            [f[0] for f in failed], [f[1] for f in failed], [f[2][:500] for f in failed], [f[3] for f in failed], run)
    settled = await pg.execute(
        """UPDATE outbox o SET delivered_at = now()
            WHERE o.id = ANY($1::uuid[]) AND o.delivered_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM outbox_deliveries d WHERE d.message_id = o.id AND d.delivered_at IS NULL)""",
        ids)
    return int(settled.split()[-1])
