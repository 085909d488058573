"""The demo data set: loaded through the use cases into a fresh database, it must look like a real
reserve (shared lots, expired stock, transfers on the road…) and keep every ledger guarantee.

The demo is loaded once per module with a fixed seed and a fixed ``now``, so every assertion below
sees the same data on every run (ids and tokens aside).
"""

from __future__ import annotations

import re
import stat
from datetime import datetime, timezone

import asyncpg
import pytest

from stockpile.demo import DemoRefused, DemoResult, load_demo
from stockpile.domain.access import ROLES
from stockpile.store.engine import asyncpg_dsn
from stockpile.store.tokens import principal_for_token

SEED = 7
NOW = datetime.now(timezone.utc).replace(microsecond=0)
TODAY = NOW.date()
TOKEN_LINE = re.compile(r"^(?P<role>[a-z]+)  (?P<name>\S+)  (?P<token>sp_\S+)$", re.MULTILINE)


async def _connect(url: str) -> asyncpg.Connection:
    dsn, kwargs = asyncpg_dsn(url)
    return await asyncpg.connect(dsn, **kwargs)


@pytest.fixture(scope="module")
def demo_url(make_database) -> str:
    return make_database()


@pytest.fixture(scope="module")
def twin_url(make_database) -> str:
    return make_database()


@pytest.fixture(scope="module")
def tokens_path(tmp_path_factory):
    return tmp_path_factory.mktemp("demo") / "demo-tokens.txt"


@pytest.fixture(scope="module")
async def demo(demo_url, tokens_path) -> DemoResult:
    return await load_demo(demo_url, seed=SEED, tokens_file=tokens_path, now=NOW)


@pytest.fixture(scope="module")
async def db(demo_url, demo):
    conn = await _connect(demo_url)
    yield conn
    await conn.close()


async def test_loads_quickly(demo):
    # Measured ~1.5 s on 2 cores; the bound only catches a pathological slowdown.
    assert demo.seconds < 30, f"the demo took {demo.seconds:.1f} s to load"


async def test_master_data_and_stock_look_like_a_reserve(db):
    row = await db.fetchrow(
        """SELECT (SELECT count(*) FROM warehouses) AS warehouses,
                  (SELECT count(*) FROM warehouses WHERE status = 'suspended') AS suspended,
                  (SELECT count(DISTINCT kind) FROM warehouses) AS warehouse_kinds,
                  (SELECT count(*) FROM materials) AS materials,
                  (SELECT count(DISTINCT category) FROM materials) AS categories,
                  (SELECT count(*) FROM materials WHERE shelf_life_days IS NULL) AS non_perishable,
                  (SELECT count(*) FROM materials WHERE substitution_group IS NOT NULL) AS substitutable,
                  (SELECT count(*) FROM lots) AS lots,
                  (SELECT count(*) FROM regions WHERE parent_id IS NULL) AS nations,
                  (SELECT count(*) FROM regions) AS regions,
                  (SELECT count(*) FROM parties WHERE parent_id IS NOT NULL) AS child_parties""")
    assert row["warehouses"] >= 10 and row["suspended"] == 1 and row["warehouse_kinds"] == 3
    assert row["materials"] >= 15 and row["categories"] == 3
    assert row["non_perishable"] >= 1 and row["substitutable"] >= 4
    assert row["lots"] >= 200
    assert row["nations"] == 1 and row["regions"] >= 8 and row["child_parties"] >= 5
    # Every warehouse lies in the fictional country's box.
    assert await db.fetchval(
        "SELECT count(*) FROM warehouses WHERE latitude NOT BETWEEN 58 AND 62 OR longitude NOT BETWEEN 22 AND 30") == 0

    sectors = await db.fetch(
        """SELECT DISTINCT o.sector FROM accounts a JOIN parties o ON o.id = a.owner_id
            WHERE a.type = 'stock' AND a.balance > 0""")
    assert {r["sector"] for r in sectors} == {"military", "civilian", "enterprise"}

    shared = await db.fetchval(
        """SELECT count(*) FROM (SELECT lot_id FROM accounts WHERE type = 'stock' AND balance > 0
                                  GROUP BY lot_id HAVING count(*) >= 2) s""")
    assert shared >= 1, "no lot is held jointly by two owners"

    expired_on_hand = await db.fetchval(
        """SELECT count(DISTINCT l.id) FROM lots l JOIN accounts a ON a.lot_id = l.id
            WHERE a.type = 'stock' AND a.balance > 0 AND l.expires_on <= $1""", TODAY)
    expiring_soon = await db.fetchval(
        """SELECT count(DISTINCT l.id) FROM lots l JOIN accounts a ON a.lot_id = l.id
            WHERE a.type = 'stock' AND a.balance > 0 AND l.expires_on > $1 AND l.expires_on <= $1 + 30""", TODAY)
    assert expired_on_hand >= 1 and expiring_soon >= 1

    statuses = {r["status"] for r in await db.fetch("SELECT DISTINCT status FROM lots")}
    assert {"available", "quarantine"} <= statuses
    assert await db.fetchval("SELECT count(*) FROM lot_events WHERE to_value = 'quarantine'") >= 1


async def test_history_has_every_kind_of_movement(db):
    kinds = {r["kind"]: r["n"] for r in await db.fetch("SELECT kind, count(*) AS n FROM movements GROUP BY kind")}
    for kind in ("receipt", "issue", "write_off", "adjustment", "ownership_transfer",
                 "transfer_dispatch", "transfer_receipt", "reversal"):
        assert kinds.get(kind, 0) >= 1, f"no {kind} movement in the demo"
    # The history lies in the past, recorded over months.
    span = await db.fetchrow("SELECT min(occurred_at) AS first, max(occurred_at) AS last FROM movements")
    assert span["last"] <= NOW and (span["last"] - span["first"]).days >= 60

    transfers = {r["state"]: r["n"] for r in await db.fetch("SELECT state, count(*) AS n FROM transfers GROUP BY state")}
    assert transfers.get("in_transit", 0) >= 1 and transfers.get("received", 0) >= 1
    short = await db.fetchval("SELECT count(*) FROM transfer_lines WHERE received < quantity")
    assert short >= 1, "no short receipt"
    overdue = await db.fetchval("SELECT count(*) FROM transfers WHERE state = 'in_transit' AND expected_at < $1", NOW)
    assert overdue >= 1

    reversal = await db.fetchrow(
        """SELECT r.id, o.kind AS original_kind FROM movements r JOIN movements o ON o.id = r.reverses_id
            WHERE r.kind = 'reversal'""")
    assert reversal is not None and reversal["original_kind"] == "issue"


async def test_ledger_guarantees_hold(db):
    # Guarantee 3: every stock and transit account's stored balance is the sum of its postings.
    drift = await db.fetch(
        """SELECT a.id, a.type, a.balance, coalesce(p.total, 0) AS total
             FROM accounts a
             LEFT JOIN (SELECT account_id, sum(delta) AS total FROM postings
                         WHERE account_id IS NOT NULL GROUP BY account_id) p ON p.account_id = a.id
            WHERE a.balance <> coalesce(p.total, 0)""")
    assert drift == []
    # Guarantee 2: each movement's postings sum to zero per material, and every movement posts.
    unbalanced = await db.fetch(
        "SELECT movement_id, material_id, sum(delta) FROM postings GROUP BY 1, 2 HAVING sum(delta) <> 0")
    assert unbalanced == []
    assert await db.fetchval(
        "SELECT count(*) FROM movements m WHERE NOT EXISTS (SELECT 1 FROM postings p WHERE p.movement_id = m.id)") == 0
    # Guarantee 1: nothing negative, nothing reserved beyond the balance.
    assert await db.fetchval(
        "SELECT count(*) FROM accounts WHERE balance < 0 OR reserved < 0 OR reserved > balance") == 0
    # A posting's material is its account's material.
    assert await db.fetchval(
        """SELECT count(*) FROM postings p JOIN accounts a ON a.id = p.account_id
            WHERE a.material_id <> p.material_id""") == 0
    # Transit: received transfers are emptied, transfers on the road still hold their stock.
    assert await db.fetchval(
        """SELECT count(*) FROM accounts a JOIN transfers t ON t.id = a.transfer_id
            WHERE a.type = 'transit' AND ((t.state = 'received') <> (a.balance = 0))""") == 0


async def test_report_tokens_authenticate_with_their_roles(demo, db, tokens_path):
    report = demo.report()
    found = {m["role"]: (m["name"], m["token"]) for m in TOKEN_LINE.finditer(report)}
    assert set(found) == set(ROLES)
    for role, (name, token) in found.items():
        principal = await principal_for_token(db, token)
        assert principal is not None, f"the {role} token does not authenticate"
        assert principal.name == name and name.startswith("demo-") and role in principal.roles
    admin = await principal_for_token(db, found["admin"][1])
    commander = await principal_for_token(db, found["commander"][1])
    operator = await principal_for_token(db, found["operator"][1])
    planner = await principal_for_token(db, found["planner"][1])
    assert admin.cleared_military and commander.cleared_military and not operator.cleared_military
    assert len(operator.warehouse_ids) >= 2 and planner.region_ids
    assert f'Authorization: Bearer {found["admin"][1]}' in report and "/api/v1/stock?limit=5" in report
    for label in ("regions", "warehouses", "materials", "parties", "lots", "movements"):
        assert re.search(rf"\b{label} \d+", report), f"the report does not count {label}"

    # Asked for, the tokens are also written to a private file.
    assert tokens_path.read_text().splitlines() == [f"{r}  {n}  {t}" for r, n, t in demo.tokens]
    assert stat.S_IMODE(tokens_path.stat().st_mode) == 0o600


async def test_second_load_is_refused_and_changes_nothing(demo_url, db, demo):
    before = await db.fetchrow("SELECT (SELECT count(*) FROM movements) AS m, (SELECT count(*) FROM principals) AS p")
    with pytest.raises(DemoRefused):
        await load_demo(demo_url, seed=SEED, now=NOW)
    after = await db.fetchrow("SELECT (SELECT count(*) FROM movements) AS m, (SELECT count(*) FROM principals) AS p")
    assert dict(after) == dict(before)


FINGERPRINT = [
    """SELECT w.code AS warehouse, m.code AS material, l.code AS lot, l.expires_on, l.status, o.code AS owner, a.balance
         FROM accounts a JOIN lots l ON l.id = a.lot_id JOIN warehouses w ON w.id = l.warehouse_id
         JOIN materials m ON m.id = a.material_id JOIN parties o ON o.id = a.owner_id
        WHERE a.type = 'stock' ORDER BY 1, 2, 3, 6""",
    "SELECT kind, occurred_at, note FROM movements ORDER BY seq",
    """SELECT fw.code AS source, tw.code AS target, t.state, t.dispatched_at, t.expected_at
         FROM transfers t JOIN warehouses fw ON fw.id = t.from_warehouse_id JOIN warehouses tw ON tw.id = t.to_warehouse_id
        ORDER BY t.dispatched_at""",
]


async def test_same_seed_gives_the_same_reserve(demo, db, twin_url):
    await load_demo(twin_url, seed=SEED, now=NOW)
    twin = await _connect(twin_url)
    try:
        for sql in FINGERPRINT:
            assert [tuple(r) for r in await twin.fetch(sql)] == [tuple(r) for r in await db.fetch(sql)]
    finally:
        await twin.close()


async def test_the_demo_shows_coverage_alerts_and_bounded_metrics(make_database):
    """A newcomer's first look: every coverage state, open alerts, and a small metrics snapshot."""
    import json as _json
    import os as _os
    import subprocess as _subprocess
    import sys as _sys

    from stockpile.store.engine import asyncpg_dsn as _dsn

    url = make_database()
    loaded = _subprocess.run([_sys.executable, "-m", "stockpile", "demo"], env={**_os.environ, "DATABASE_URL": url},
                             capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    dsn, kwargs = _dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        targets = await conn.fetchval("SELECT count(*) FROM reserve_targets")
        alerts = {r["kind"] for r in await conn.fetch("SELECT kind FROM alerts WHERE state = 'open'")}
        samples = _json.loads(await conn.fetchval("SELECT samples::text FROM metric_snapshots WHERE name = 'business'"))
    finally:
        await conn.close()
    states = {s["labels"]["state"]: s["value"] for s in samples if s["metric"] == "stockpile_targets"}
    assert targets == 7 and all(states[k] >= 1 for k in ("ok", "warning", "critical")), states
    assert {"shortfall", "expiring", "expired_on_hand"} <= alerts
    assert 0 < len(samples) <= 2000
    assert {s["labels"]["region"] for s in samples if s["metric"] == "stockpile_stock_quantity"} <= {
        "PRV-NORTH", "PRV-EAST", "PRV-SOUTH", "PRV-WEST", "VAL"}
