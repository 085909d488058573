"""The ledger at 10^7 movements: as shipped, and partitioned by month, measured in one run.

    .venv/bin/python bench/partitioning.py [--database-url postgresql://root@127.0.0.1:5432/postgres]
                                           [--movements 10000000] [--months 24] [--seconds 10]

Builds two throwaway databases with the migrations. In the second, ``movements`` and
``postings`` are rebuilt as tables partitioned by month of ``occurred_at`` (declarative range
partitioning, one partition per month plus a default), with every ledger trigger of the shipped
schema attached again (the bench checks that both databases carry the same trigger names, and
that the partitioned ledger still refuses an unbalanced movement, an update and a negative
balance). Both are loaded with the same movements (two postings each, spread evenly over
``--months`` months ending now) and vacuumed, then measured:

- appends: ``--clients`` connections posting for ``--seconds`` seconds through the service's
  statement shape (lock the position, insert the movement and its postings in one statement,
  commit), one movement per transaction and 100 per transaction, with every trigger on;
- the common reads, with the service's own queries where it has them: a warehouse's stock,
  a lot's movements, the last day's movements, a warehouse's newest movements, coverage;
- the anchor: pgbench's TPC-B-like script on the same server, in the same run.

It prints one JSON document; ``partitioned / flat`` is the figure to read. The bulk load runs with
triggers off (``session_replication_role = replica``) and sets balances from the postings
afterwards: the load measures nothing, the appends run with every trigger on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stockpile.store import reads  # noqa: E402
from stockpile.store.engine import asyncpg_dsn, plain_url, upgrade, with_database  # noqa: E402

WAREHOUSES, MATERIALS, OWNERS = 200, 20, 12

MASTER = """
SET session_replication_role = replica;
INSERT INTO regions (code, name) VALUES ('NAT', 'Nation');
INSERT INTO regions (code, name, parent_id) SELECT 'P' || i, 'Province ' || i, (SELECT id FROM regions WHERE code = 'NAT')
  FROM generate_series(1, 20) i;
INSERT INTO parties (code, name, sector) SELECT 'OWN' || i, 'Owner ' || i,
  (ARRAY['military', 'civilian', 'enterprise'])[1 + i % 3] FROM generate_series(1, {owners}) i;
INSERT INTO warehouses (code, name, operator_id, region_id, kind, latitude, longitude)
  SELECT 'W' || i, 'Warehouse ' || i, (SELECT id FROM parties WHERE code = 'OWN' || (1 + i % {owners})),
         (SELECT id FROM regions WHERE code = 'P' || (1 + i % 20)), 'joint', 50 + (i % 100) / 10.0, 20 + (i % 70) / 10.0
    FROM generate_series(1, {warehouses}) i;
INSERT INTO materials (code, name, category, unit, decimals, shelf_life_days, storage_class)
  SELECT 'M' || i, 'Material ' || i, (ARRAY['fuel', 'food', 'medical'])[1 + i % 3], 'unit', 0, 730, 'ambient'
    FROM generate_series(1, {materials}) i;
INSERT INTO lots (warehouse_id, material_id, code, expires_on)
  SELECT 1 + i % {warehouses}, 1 + (i / {warehouses}) % {materials}, 'L' || i, current_date + 30 + i % 900
    FROM generate_series(0, {lots} - 1) i;
INSERT INTO accounts (type, lot_id, owner_id, material_id, expires_on)
  SELECT 'stock', l.id, 1 + (row_number() OVER (ORDER BY l.code)) % {owners}, l.material_id, l.expires_on FROM lots l;
"""

# One chunk of movements, each a receipt of its position from supply. With partitioning the
# postings carry their movement's month (the partition key) and the foreign key is on both.
CHUNK = """
WITH m AS (
    INSERT INTO movements (kind, occurred_at, recorded_at)
    SELECT 'receipt', $3::timestamptz + (i - $1) * $4::interval, $3::timestamptz + (i - $1) * $4::interval
      FROM generate_series($1::bigint, $2::bigint) i
    RETURNING id, seq, occurred_at)
INSERT INTO postings (movement_id, {occurred}account_id, external, material_id, delta)
SELECT m.id, {m_occurred}a.id, NULL, a.material_id, 1 + m.seq % 50
  FROM m JOIN accounts a ON a.id = 1 + (m.seq * 7919) % $5
UNION ALL
SELECT m.id, {m_occurred}NULL, 'supply', a.material_id, -(1 + m.seq % 50)
  FROM m JOIN accounts a ON a.id = 1 + (m.seq * 7919) % $5
"""

PARTITION = """
CREATE SEQUENCE movements_seq_by_month;
CREATE TABLE movements_by_month (LIKE movements INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS)
    PARTITION BY RANGE (occurred_at);
ALTER TABLE movements_by_month ALTER COLUMN seq SET DEFAULT nextval('movements_seq_by_month');
ALTER TABLE movements_by_month ADD PRIMARY KEY (id, occurred_at);
ALTER TABLE movements_by_month ADD UNIQUE (seq, occurred_at);
CREATE SEQUENCE postings_id_by_month;
CREATE TABLE postings_by_month (LIKE postings INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS,
                                occurred_at timestamptz NOT NULL)
    PARTITION BY RANGE (occurred_at);
ALTER TABLE postings_by_month ALTER COLUMN id SET DEFAULT nextval('postings_id_by_month');
ALTER TABLE postings_by_month ADD PRIMARY KEY (id, occurred_at);
DROP TABLE postings CASCADE;
DROP TABLE movements CASCADE;
ALTER TABLE movements_by_month RENAME TO movements;
ALTER TABLE postings_by_month RENAME TO postings;
{partitions}
ALTER TABLE movements ADD FOREIGN KEY (principal_id) REFERENCES principals (id);
ALTER TABLE movements ADD FOREIGN KEY (transfer_id) REFERENCES transfers (id);
ALTER TABLE movements ADD FOREIGN KEY (rotation_order_id) REFERENCES rotation_orders (id);
ALTER TABLE postings ADD FOREIGN KEY (movement_id, occurred_at) REFERENCES movements (id, occurred_at);
ALTER TABLE postings ADD FOREIGN KEY (account_id) REFERENCES accounts (id);
ALTER TABLE postings ADD FOREIGN KEY (material_id) REFERENCES materials (id);
CREATE INDEX movements_id ON movements (id);
CREATE INDEX movements_seq ON movements (seq);
CREATE INDEX movements_occurred ON movements (occurred_at);
CREATE INDEX movements_reverses ON movements (reverses_id) WHERE reverses_id IS NOT NULL;
CREATE INDEX movements_transfer ON movements (transfer_id) WHERE transfer_id IS NOT NULL;
CREATE INDEX movements_rotation_order ON movements (rotation_order_id) WHERE rotation_order_id IS NOT NULL;
CREATE INDEX postings_movement ON postings (movement_id);
CREATE INDEX postings_account ON postings (account_id) WHERE account_id IS NOT NULL;
CREATE TRIGGER postings_apply AFTER INSERT ON postings
    REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION postings_apply_to_balances();
CREATE CONSTRAINT TRIGGER movement_balanced AFTER INSERT ON movements
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION movement_is_balanced();
CREATE TRIGGER movements_append_only BEFORE UPDATE OR DELETE ON movements
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER movements_no_truncate BEFORE TRUNCATE ON movements
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER postings_with_their_movement AFTER INSERT ON postings
    REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION postings_with_their_movement();
"""

TRIGGERS = """
SELECT c.relname || '.' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relname IN ('movements', 'postings') AND NOT t.tgisinternal ORDER BY 1"""

# The append a posting request makes, in the service's shape: lock the positions, then the
# movements and their postings in one statement.
APPEND = """
WITH m AS (
    INSERT INTO movements (id, kind, occurred_at, reason)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[]))
INSERT INTO postings (movement_id, {occurred}account_id, external, material_id, delta)
SELECT * FROM unnest($5::uuid[], {occurred_param}$6::bigint[], $7::text[], $8::bigint[], $9::bigint[])"""

LOT_MOVEMENTS = """
SELECT mv.seq, mv.id, mv.kind, mv.occurred_at, p.delta
  FROM accounts a JOIN postings p ON p.account_id = a.id JOIN movements mv ON mv.id = p.movement_id
 WHERE a.lot_id = $1::uuid
 ORDER BY mv.seq DESC LIMIT 100"""

# The same two reads written for partition pruning: postings meet their movement on the partition
# key too, and the newest-first order is the partition key's.
LOT_MOVEMENTS_PRUNED = """
SELECT mv.seq, mv.id, mv.kind, mv.occurred_at, p.delta
  FROM accounts a JOIN postings p ON p.account_id = a.id
  JOIN movements mv ON mv.id = p.movement_id AND mv.occurred_at = p.occurred_at
 WHERE a.lot_id = $1::uuid
 ORDER BY p.occurred_at DESC, mv.seq DESC LIMIT 100"""

WAREHOUSE_NEWEST_PRUNED = """
SELECT mv.seq, mv.id, mv.kind, mv.occurred_at
  FROM movements mv
 WHERE EXISTS (SELECT 1 FROM postings p JOIN accounts a ON a.id = p.account_id JOIN lots l ON l.id = a.lot_id
                WHERE p.movement_id = mv.id AND p.occurred_at = mv.occurred_at
                  AND l.warehouse_id = (SELECT id FROM warehouses WHERE code = $1))
 ORDER BY mv.occurred_at DESC LIMIT 100"""

WAREHOUSE_STOCK = """
SELECT l.id, l.code, m.code AS material, o.code AS owner, a.balance, a.reserved, l.expires_on
  FROM lots l JOIN accounts a ON a.lot_id = l.id AND a.type = 'stock'
  JOIN materials m ON m.id = l.material_id JOIN parties o ON o.id = a.owner_id
 WHERE l.warehouse_id = (SELECT id FROM warehouses WHERE code = $1) AND a.balance > 0
 ORDER BY m.code, l.expires_on"""


def months_back(now: datetime, months: int) -> list[datetime]:
    first = datetime(now.year, now.month, 1, tzinfo=timezone.utc)
    out = [first]
    for _ in range(months + 1):
        first = (first - timedelta(days=1)).replace(day=1)
        out.append(first)
    return sorted(out)


def partitions_sql(now: datetime, months: int) -> str:
    bounds = months_back(now, months)
    bounds.append((bounds[-1] + timedelta(days=32)).replace(day=1))
    bounds.append((bounds[-1] + timedelta(days=32)).replace(day=1))
    statements = []
    for table in ("movements", "postings"):
        for lo, hi in zip(bounds, bounds[1:]):
            statements.append(f"CREATE TABLE {table}_{lo:%Y_%m} PARTITION OF {table} "
                              f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}');")
        statements.append(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT;")
    return "\n".join(statements)


async def connect(url: str) -> asyncpg.Connection:
    dsn, kwargs = asyncpg_dsn(url)
    return await asyncpg.connect(dsn, **kwargs)


async def build(server: str, name: str, partitioned: bool, args, now: datetime) -> str:
    admin = await connect(with_database(server, "postgres"))
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = with_database(server, name)
    await asyncio.to_thread(upgrade, url)
    pg = await connect(url)
    try:
        if partitioned:
            await pg.execute(PARTITION.format(partitions=partitions_sql(now, args.months)))
        await pg.execute(MASTER.format(owners=OWNERS, warehouses=WAREHOUSES, materials=MATERIALS, lots=args.lots))
        accounts = await pg.fetchval("SELECT count(*) FROM accounts")
        span = timedelta(days=30 * args.months)
        step = span / args.movements
        start = now - span
        sql = CHUNK.format(occurred="occurred_at, " if partitioned else "",
                           m_occurred="m.occurred_at, " if partitioned else "")
        began = time.perf_counter()
        chunk = 500_000
        for lo in range(0, args.movements, chunk):
            hi = min(lo + chunk, args.movements) - 1
            await pg.execute(sql, lo, hi, start + lo * step, step, accounts)
            print(f"  {name}: {hi + 1:,} movements", file=sys.stderr, flush=True)
        await pg.execute("""UPDATE accounts a SET balance = s.total FROM (
                              SELECT account_id, sum(delta) AS total FROM postings WHERE account_id IS NOT NULL
                               GROUP BY account_id) s WHERE a.id = s.account_id""")
        load_s = time.perf_counter() - began
        await pg.execute("SET session_replication_role = origin")
        for table in ("movements", "postings", "accounts", "lots"):
            await pg.execute(f"VACUUM (ANALYZE) {table}")
        size = await pg.fetchval("""SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
                                     WHERE c.relkind = 'r' AND (c.relname LIKE 'movements%' OR c.relname LIKE 'postings%')""")
        print(f"  {name}: loaded in {load_s:.0f} s, ledger {size / 2**30:.2f} GiB", file=sys.stderr, flush=True)
    finally:
        await pg.close()
    return url


async def guarantees_hold(url: str, partitioned: bool) -> dict:
    """The partitioned ledger refuses what the shipped one refuses."""
    pg = await connect(url)
    refused = {}
    try:
        account, material = await pg.fetchrow("SELECT id, material_id FROM accounts ORDER BY id LIMIT 1")
        at = datetime.now(timezone.utc)
        occurred = "occurred_at, " if partitioned else ""
        cases = {
            "unbalanced": (f"""WITH m AS (INSERT INTO movements (kind, occurred_at) VALUES ('receipt', $1) RETURNING id, occurred_at)
                               INSERT INTO postings (movement_id, {occurred}account_id, material_id, delta)
                               SELECT id, {'occurred_at, ' if partitioned else ''}$2, $3, 5 FROM m""", at, account, material),
            "negative": (f"""WITH m AS (INSERT INTO movements (kind, occurred_at, reason) VALUES ('issue', $1, 'x') RETURNING id, occurred_at)
                             INSERT INTO postings (movement_id, {occurred}account_id, external, material_id, delta)
                             SELECT id, {'occurred_at, ' if partitioned else ''}$2, NULL, $3, -10000000000 FROM m
                             UNION ALL SELECT id, {'occurred_at, ' if partitioned else ''}NULL, 'consumption', $3, 10000000000 FROM m""",
                         at, account, material),
            "update": ("UPDATE movements SET note = 'changed' WHERE seq = (SELECT min(seq) FROM movements)",),
            "delete": ("DELETE FROM postings WHERE id = (SELECT min(id) FROM postings)",),
        }
        for name, (sql, *params) in cases.items():
            try:
                async with pg.transaction():
                    await pg.execute(sql, *params)
                refused[name] = False
            except asyncpg.PostgresError:
                refused[name] = True
        refused["triggers"] = [r[0] for r in await pg.fetch(TRIGGERS)]
    finally:
        await pg.close()
    return refused


async def appends(url: str, partitioned: bool, per_tx: int, args) -> float:
    """Movements per second from ``--clients`` connections, ``per_tx`` movements a transaction."""
    pg = await connect(url)
    positions = [tuple(r) for r in await pg.fetch(
        "SELECT id, material_id FROM accounts WHERE type = 'stock' ORDER BY id")]
    await pg.close()
    sql = APPEND.format(occurred="occurred_at, " if partitioned else "",
                        occurred_param="$10::timestamptz[], " if partitioned else "")
    done = 0
    stop = time.perf_counter() + args.seconds

    async def client(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        conn = await connect(url)
        try:
            while time.perf_counter() < stop:
                chosen = sorted(rng.sample(positions, per_tx))
                now = datetime.now(timezone.utc)
                ids = [uuid.uuid4() for _ in chosen]
                p_mov, p_acc, p_ext, p_mat, p_delta = [], [], [], [], []
                for mid, (account, material) in zip(ids, chosen):
                    p_mov += [mid, mid]
                    p_acc += [account, None]
                    p_ext += [None, "supply"]
                    p_mat += [material, material]
                    p_delta += [7, -7]
                params = [ids, ["receipt"] * per_tx, [now] * per_tx, [None] * per_tx,
                          p_mov, p_acc, p_ext, p_mat, p_delta]
                if partitioned:
                    params.append([now] * len(p_mov))
                async with conn.transaction():
                    await conn.execute("SELECT 1 FROM accounts WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
                                       [a for a, _ in chosen])
                    await conn.execute(sql, *params)
                done += per_tx
        finally:
            await conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(args.clients)))
    return done / (time.perf_counter() - began)


async def reads_ms(url: str, partitioned: bool, args) -> dict:
    pg = await connect(url)
    rng = random.Random(7)
    lots = [r[0] for r in await pg.fetch("SELECT lot_id FROM accounts ORDER BY random() LIMIT 50")]
    day_ago = datetime.now(timezone.utc) - timedelta(days=1)
    today = datetime.now(timezone.utc).date()

    async def stock():
        return await pg.fetch(WAREHOUSE_STOCK, f"W{rng.randint(1, WAREHOUSES)}")

    async def lot_movements():
        return await pg.fetch(LOT_MOVEMENTS, rng.choice(lots))

    async def last_day():
        return await reads.movements(pg, warehouse=None, material=None, owner=None, kind=None, since=day_ago,
                                     until=None, before_seq=None, limit=1000)

    async def warehouse_movements():
        return await reads.movements(pg, warehouse=f"W{rng.randint(1, WAREHOUSES)}", material=None, owner=None,
                                     kind=None, since=None, until=None, before_seq=None, limit=100)

    async def usable_by_region():
        return await pg.fetch("""SELECT w.region_id, l.material_id, sum(a.balance - a.reserved)
                                     FROM accounts a JOIN lots l ON l.id = a.lot_id JOIN warehouses w ON w.id = l.warehouse_id
                                    WHERE a.type = 'stock' AND l.status = 'available'
                                      AND (l.expires_on IS NULL OR l.expires_on > $1)
                                    GROUP BY 1, 2""", today)

    async def lot_movements_pruned():
        return await pg.fetch(LOT_MOVEMENTS_PRUNED if partitioned else LOT_MOVEMENTS, rng.choice(lots))

    async def warehouse_newest_pruned():
        if not partitioned:
            return await warehouse_movements()
        return await pg.fetch(WAREHOUSE_NEWEST_PRUNED, f"W{rng.randint(1, WAREHOUSES)}")

    out = {}
    try:
        for name, query in [("warehouse_stock", stock), ("lot_movements", lot_movements),
                            ("lot_movements_pruned", lot_movements_pruned),
                            ("last_day_movements", last_day), ("warehouse_newest_movements", warehouse_movements),
                            ("warehouse_newest_movements_pruned", warehouse_newest_pruned),
                            ("coverage_usable_by_region", usable_by_region)]:
            await query()  # warm
            times, rows = [], 0
            for _ in range(args.repeat):
                began = time.perf_counter()
                rows = len(await query())
                times.append((time.perf_counter() - began) * 1000)
            out[name] = {"median_ms": round(statistics.median(times), 2), "rows": rows}
    finally:
        await pg.close()
    return out


def pgbench_tps(server: str, args) -> float:
    parts = urlsplit(plain_url(server))
    base = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432), "-U", parts.username or "root"]
    asyncio.run(_recreate(server, "bench_partitioning_pgbench"))
    subprocess.run(["pgbench", *base, "-i", "-q", "-s", "10", "bench_partitioning_pgbench"], check=True,
                   capture_output=True)
    run = subprocess.run(["pgbench", *base, "-c", str(args.clients), "-j", "2", "-T", str(max(1, round(args.seconds))), "-n",
                          "bench_partitioning_pgbench"], check=True, capture_output=True, text=True)
    asyncio.run(_drop(server, "bench_partitioning_pgbench"))
    for line in run.stdout.splitlines():
        if line.startswith("tps"):
            return float(line.split("=")[1].split()[0])
    raise RuntimeError(run.stdout)


async def _recreate(server: str, name: str) -> None:
    await _drop(server, name)
    admin = await connect(with_database(server, "postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()


async def _drop(server: str, name: str) -> None:
    admin = await connect(with_database(server, "postgres"))
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def measure(server: str, args) -> dict:
    now = datetime.now(timezone.utc)
    result = {"movements": args.movements, "months": args.months, "lots": args.lots, "clients": args.clients}
    variants = {}
    for partitioned in (False, True):
        name = "bench_ledger_by_month" if partitioned else "bench_ledger_flat"
        url = await build(server, name, partitioned, args, now)
        variants[name] = url
        label = "partitioned" if partitioned else "flat"
        result[label] = {
            "reads": await reads_ms(url, partitioned, args),
            "append_movements_per_s": {
                "1_per_tx": round(await appends(url, partitioned, 1, args)),
                "100_per_tx": round(await appends(url, partitioned, 100, args)),
            },
            "refuses": await guarantees_hold(url, partitioned),
        }
    flat, part = result["flat"], result["partitioned"]
    result["same_triggers"] = flat["refuses"]["triggers"] == part["refuses"]["triggers"]
    result["ratio_partitioned_over_flat"] = {
        **{k: round(part["reads"][k]["median_ms"] / flat["reads"][k]["median_ms"], 2) for k in flat["reads"]},
        **{f"append_{k}": round(part["append_movements_per_s"][k] / flat["append_movements_per_s"][k], 2)
           for k in flat["append_movements_per_s"]},
    }
    if not args.keep:
        for name in variants:
            await _drop(server, name)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgresql://root@127.0.0.1:5432/postgres")
    parser.add_argument("--movements", type=int, default=10_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--lots", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the two databases")
    args = parser.parse_args()
    result = asyncio.run(measure(args.database_url, args))
    result["pgbench_tps"] = pgbench_tps(args.database_url, args)
    for label in ("flat", "partitioned"):
        result[label]["append_over_pgbench"] = {
            k: round(v / result["pgbench_tps"], 2) for k, v in result[label]["append_movements_per_s"].items()}
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
