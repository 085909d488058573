"""The ledger's guarantees hold in PostgreSQL itself, whoever writes: tried here with raw SQL on
rows the API made (see migration 0001).

Attempts that must be refused run in a transaction that is rolled back whatever happens, so a
broken guarantee fails its test without damaging the rows other tests use; where the outcome
only shows after a commit, the attempt commits against this test's own rows.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date

import asyncpg
import pytest

from tests.factories import idem, make_world, receive


@dataclass
class Stock:
    """One receipt made through the API and the stock position it opened."""

    movement_id: uuid.UUID
    account_id: int
    lot_id: str
    material_id: int
    other_material_id: int
    other_owner_id: int
    balance: int


@pytest.fixture
async def stock(client, admin, operator, pg_pool, uid) -> Stock:
    w = await make_world(client, admin, uid)
    moved = await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="10.0",
                          lot="G")
    row = await pg_pool.fetchrow(
        """SELECT a.id, a.lot_id::text AS lot_id, a.material_id, a.balance,
                  (SELECT id FROM materials WHERE code = $2) AS vaccine, (SELECT id FROM parties WHERE code = $3) AS military
             FROM accounts a WHERE a.lot_id = $1::uuid AND a.type = 'stock'""",
        moved["postings"][0]["account"]["lot_id"], w.vaccine, w.military)
    assert row["balance"] == 100  # 10.0 L of a 1-decimal material
    return Stock(uuid.UUID(moved["id"]), row["id"], row["lot_id"], row["material_id"], row["vaccine"],
                 row["military"], row["balance"])


@asynccontextmanager
async def rolled_back(pg_pool):
    """A connection in a transaction that is always rolled back."""
    async with pg_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            yield conn
        finally:
            await tx.rollback()


async def ledger_of(pg, movement_id: uuid.UUID) -> tuple:
    """A movement as stored, with its postings, and the stored balances of the accounts it touched."""
    movement = await pg.fetchrow("SELECT * FROM movements WHERE id = $1", movement_id)
    postings = await pg.fetch("SELECT * FROM postings WHERE movement_id = $1 ORDER BY id", movement_id)
    balances = await pg.fetch(
        """SELECT a.id, a.balance, (SELECT sum(delta) FROM postings p WHERE p.account_id = a.id) AS total
             FROM accounts a WHERE a.id IN (SELECT account_id FROM postings WHERE movement_id = $1) ORDER BY a.id""",
        movement_id)
    return movement, postings, balances


async def balance(pg, account_id: int) -> int:
    return await pg.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id)


async def post_raw(conn, movement_id: uuid.UUID, postings: list[tuple[int | None, str | None, int, int]],
                   kind: str = "issue", reverses: uuid.UUID | None = None) -> None:
    """A movement and its postings ``(account id, external, material id, delta)``, by hand."""
    await conn.execute("INSERT INTO movements (id, kind, occurred_at, reverses_id) VALUES ($1, $2, now(), $3)",
                       movement_id, kind, reverses)
    await conn.executemany(
        "INSERT INTO postings (movement_id, account_id, external, material_id, delta) VALUES ($1, $2, $3, $4, $5)",
        [(movement_id, *p) for p in postings])


# -- guarantee 4: append-only ------------------------------------------------------------------

@pytest.mark.parametrize("sql", [
    "UPDATE movements SET note = 'edited afterwards' WHERE id = $1",
    "UPDATE movements SET occurred_at = occurred_at - interval '1 day' WHERE id = $1",
    "DELETE FROM movements WHERE id = $1",
    "UPDATE postings SET delta = delta * 2 WHERE movement_id = $1",
    "UPDATE postings SET external = 'loss' WHERE movement_id = $1 AND external IS NOT NULL",
    "DELETE FROM postings WHERE movement_id = $1",
])
async def test_movements_and_postings_are_never_updated_or_deleted(pg_pool, stock, sql):
    before = await ledger_of(pg_pool, stock.movement_id)
    async with rolled_back(pg_pool) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(sql, stock.movement_id)
    assert await ledger_of(pg_pool, stock.movement_id) == before


@pytest.mark.parametrize("sql", ["TRUNCATE postings", "TRUNCATE postings CASCADE", "TRUNCATE movements CASCADE",
                                 "TRUNCATE movements, postings"])
async def test_the_ledger_cannot_be_truncated(pg_pool, stock, sql):
    async with rolled_back(pg_pool) as conn:
        # refused by the append-only trigger, or before it by the tables that reference movements
        # (obligations, settlements, rotation orders): either way nothing is truncated
        with pytest.raises((asyncpg.InsufficientPrivilegeError, asyncpg.FeatureNotSupportedError),
                           match="append-only|foreign key"):
            await conn.execute(sql)
    movement, postings, _ = await ledger_of(pg_pool, stock.movement_id)
    assert movement is not None and len(postings) == 2


async def test_postings_cannot_be_added_to_a_movement_already_recorded(pg_pool, stock):
    """Appending to a recorded movement rewrites it: a balanced pair would turn the 10.0 L receipt
    into 15.0 L, a lone posting would unbalance it. Postings are written with their movement."""
    before = await ledger_of(pg_pool, stock.movement_id)
    for extra in ([(stock.account_id, None, stock.material_id, 50), (None, "supply", stock.material_id, -50)],
                  [(stock.account_id, None, stock.material_id, 50)]):
        async with rolled_back(pg_pool) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.executemany(
                    "INSERT INTO postings (movement_id, account_id, external, material_id, delta) "
                    "VALUES ($1, $2, $3, $4, $5)", [(stock.movement_id, *p) for p in extra])
    assert await ledger_of(pg_pool, stock.movement_id) == before


# -- guarantee 3: a balance is the sum of its postings ------------------------------------------

@pytest.mark.parametrize("sql", [
    "UPDATE accounts SET balance = balance + 1 WHERE id = $1",
    "UPDATE accounts SET balance = 0 WHERE id = $1",
    "UPDATE accounts SET balance = balance - 10, reserved = 0 WHERE id = $1",
    "UPDATE accounts a SET balance = s.total FROM (SELECT 7 AS total) s WHERE a.id = $1",
])
async def test_a_stored_balance_is_never_written_directly(pg_pool, stock, sql):
    async with rolled_back(pg_pool) as conn:
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="only through postings"):
            await conn.execute(sql, stock.account_id)
    assert await balance(pg_pool, stock.account_id) == stock.balance


async def test_a_stored_balance_is_not_written_from_a_code_block_either(pg_pool, stock):
    async with rolled_back(pg_pool) as conn:
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="only through postings"):
            await conn.execute(f"DO $$ BEGIN UPDATE accounts SET balance = 1 WHERE id = {int(stock.account_id)}; END $$")
    assert await balance(pg_pool, stock.account_id) == stock.balance


async def test_what_is_reserved_may_change_without_a_posting(pg_pool, stock):
    """The guard is about the balance only: reservations are set by plans, within the balance."""
    async with rolled_back(pg_pool) as conn:
        await conn.execute("UPDATE accounts SET reserved = 40 WHERE id = $1", stock.account_id)
        assert await conn.fetchval("SELECT reserved FROM accounts WHERE id = $1", stock.account_id) == 40


@pytest.mark.parametrize("opening", [5, -5])
async def test_an_account_is_opened_with_a_zero_balance(pg_pool, stock, opening):
    insert = """INSERT INTO accounts (type, lot_id, owner_id, material_id, balance)
                VALUES ('stock', $1::uuid, $2, $3, $4) RETURNING id"""
    async with rolled_back(pg_pool) as conn:
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="zero balance"):
            await conn.fetchval(insert, stock.lot_id, stock.other_owner_id, stock.material_id, opening)
    async with rolled_back(pg_pool) as conn:  # the same account with a zero balance is fine
        assert await conn.fetchval(insert, stock.lot_id, stock.other_owner_id, stock.material_id, 0) is not None
    assert await pg_pool.fetchval("SELECT count(*) FROM accounts WHERE lot_id = $1::uuid AND owner_id = $2",
                                  stock.lot_id, stock.other_owner_id) == 0


async def test_a_stock_account_carries_its_lots_expiry_whoever_writes(pg_pool, stock):
    """Migration 0019: an account opened, written or re-dated by hand takes its lot's expiry, and a
    lot re-dated (a shelf-life extension) re-dates every account of it."""
    async with rolled_back(pg_pool) as conn:
        lot_expiry = await conn.fetchval("SELECT expires_on FROM lots WHERE id = $1::uuid", stock.lot_id)
        opened = await conn.fetchval(
            """INSERT INTO accounts (type, lot_id, owner_id, material_id, expires_on)
               VALUES ('stock', $1::uuid, $2, $3, DATE '2001-01-01') RETURNING id""",
            stock.lot_id, stock.other_owner_id, stock.material_id)
        await conn.execute("UPDATE accounts SET expires_on = DATE '2001-01-01' WHERE id = $1", stock.account_id)
        assert await conn.fetchval("SELECT array_agg(DISTINCT expires_on) FROM accounts WHERE id = ANY($1::bigint[])",
                                   [opened, stock.account_id]) == [lot_expiry]
        await conn.execute("UPDATE lots SET expires_on = DATE '2040-06-30' WHERE id = $1::uuid", stock.lot_id)
        assert await conn.fetch("SELECT DISTINCT expires_on FROM accounts WHERE lot_id = $1::uuid",
                                stock.lot_id) == [(date(2040, 6, 30),)]


async def test_a_rotation_order_carries_its_lots_place_status_and_expiry_whoever_writes(pg_pool, stock):
    """Migration 0020: an order written by hand with another lot's facts takes its own lot's, and a
    lot quarantined or re-dated passes the change to every order of it, open or closed; an order's
    progress leaves them be."""
    lot = ("(SELECT ARRAY[l.warehouse_id::text, l.material_id::text, l.status, l.expires_on::text]"
           " FROM lots l WHERE l.id = $1::uuid)")
    carried = """SELECT DISTINCT ARRAY[warehouse_id::text, material_id::text, lot_status, lot_expires_on::text]
                   FROM rotation_orders WHERE lot_id = $1::uuid"""
    async with rolled_back(pg_pool) as conn:
        policy = await conn.fetchval(
            "INSERT INTO rotation_policies (code, category, trigger_days_before_expiry) VALUES ('ROT-G', 'fuel', 30)"
            " RETURNING id")
        orders = [await conn.fetchval(
            """INSERT INTO rotation_orders (lot_id, owner_id, policy_id, quantity, out_by, in_by, outlet, state,
                                            explanation, warehouse_id, material_id, lot_status, lot_expires_on)
               VALUES ($1::uuid, $2, $3, 10, DATE '2030-01-01', DATE '2030-02-01', 'sale', $4, 'by hand',
                       (SELECT max(id) FROM warehouses), $5, 'recalled', DATE '2001-01-01') RETURNING id""",
            stock.lot_id, owner, policy, state, stock.other_material_id)
            for owner, state in [(stock.other_owner_id, "planned"), (stock.other_owner_id, "cancelled")]]
        before = await conn.fetchval(f"SELECT {lot}", stock.lot_id)
        assert [r[0] for r in await conn.fetch(carried, stock.lot_id)] == [before] and before[2] == "available"
        await conn.execute("UPDATE rotation_orders SET lot_status = 'recalled', out_quantity = 4 WHERE id = $1",
                           orders[0])
        assert [r[0] for r in await conn.fetch(carried, stock.lot_id)] == [before]
        await conn.execute("UPDATE lots SET status = 'quarantine', expires_on = DATE '2040-06-30' WHERE id = $1::uuid",
                           stock.lot_id)
        after = await conn.fetchval(f"SELECT {lot}", stock.lot_id)
        assert after[2:] == ["quarantine", "2040-06-30"]
        assert [r[0] for r in await conn.fetch(carried, stock.lot_id)] == [after]
        assert await conn.fetchval("SELECT out_quantity FROM rotation_orders WHERE id = $1", orders[0]) == 4


# -- guarantee 1: never negative, reserved within the balance -----------------------------------

async def test_a_posting_that_would_drive_a_balance_negative_is_refused(pg_pool, stock):
    overdraw = stock.balance + 1
    async with rolled_back(pg_pool) as conn:
        with pytest.raises(asyncpg.CheckViolationError) as refused:
            await post_raw(conn, uuid.uuid4(), [(stock.account_id, None, stock.material_id, -overdraw),
                                                (None, "consumption", stock.material_id, overdraw)])
    assert refused.value.constraint_name == "balance_not_negative"
    assert await balance(pg_pool, stock.account_id) == stock.balance


async def test_a_posting_may_not_take_what_is_reserved(pg_pool, stock):
    async with rolled_back(pg_pool) as conn:
        await conn.execute("UPDATE accounts SET reserved = balance WHERE id = $1", stock.account_id)
        with pytest.raises(asyncpg.CheckViolationError) as refused:
            await post_raw(conn, uuid.uuid4(), [(stock.account_id, None, stock.material_id, -1),
                                                (None, "consumption", stock.material_id, 1)])
    assert refused.value.constraint_name == "reserved_within_balance"
    async with rolled_back(pg_pool) as conn:
        with pytest.raises(asyncpg.CheckViolationError) as refused:
            await conn.execute("UPDATE accounts SET reserved = balance + 1 WHERE id = $1", stock.account_id)
    assert refused.value.constraint_name == "reserved_within_balance"
    assert await balance(pg_pool, stock.account_id) == stock.balance


# -- guarantee 2: balanced per material, at commit ----------------------------------------------

@pytest.mark.parametrize("shape", ["short", "other material"])
async def test_an_unbalanced_movement_fails_at_commit_and_leaves_nothing_behind(pg_pool, stock, shape):
    movement_id = uuid.uuid4()
    counter = (None, "consumption", stock.material_id, 4) if shape == "short" else \
        (None, "consumption", stock.other_material_id, 5)  # sums to zero, but not per material
    async with pg_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await post_raw(conn, movement_id, [(stock.account_id, None, stock.material_id, -5), counter])
            # Checked at commit, not before: inside the transaction everything was accepted.
            assert await balance(conn, stock.account_id) == stock.balance - 5
            with pytest.raises(asyncpg.CheckViolationError, match="unbalanced") as refused:
                await tx.commit()
        finally:
            if conn.is_in_transaction():
                await conn.execute("ROLLBACK")
    assert refused.value.constraint_name == "movement_balanced"
    assert await pg_pool.fetchval("SELECT count(*) FROM movements WHERE id = $1", movement_id) == 0
    assert await pg_pool.fetchval("SELECT count(*) FROM postings WHERE movement_id = $1", movement_id) == 0
    assert await balance(pg_pool, stock.account_id) == stock.balance


async def test_a_balanced_movement_written_by_hand_commits_and_moves_the_balance(pg_pool, stock):
    """The control for the refusals above: the same statements, balanced, are accepted."""
    movement_id = uuid.uuid4()
    async with pg_pool.acquire() as conn, conn.transaction():
        await post_raw(conn, movement_id, [(stock.account_id, None, stock.material_id, -5),
                                           (None, "consumption", stock.material_id, 5)])
    _, postings, balances = await ledger_of(pg_pool, movement_id)
    assert len(postings) == 2
    assert [(b["balance"], b["total"]) for b in balances] == [(stock.balance - 5, stock.balance - 5)]


# -- guarantee 4: a movement is reversed once ---------------------------------------------------

async def test_a_second_reversal_is_refused_by_the_unique_index(client, operator, pg_pool, stock):
    issued = await client.post("/api/v1/movements", headers={**operator, **idem()},
                               json={"kind": "issue", "lot_id": stock.lot_id, "owner": await owner_code(pg_pool, stock),
                                     "quantity": "1.0"})
    assert issued.status_code == 201, issued.text
    original = uuid.UUID(issued.json()["id"])
    reversed_ = await client.post("/api/v1/movements", headers={**operator, **idem()},
                                  json={"kind": "reversal", "movement_id": str(original)})
    assert reversed_.status_code == 201, reversed_.text

    async with rolled_back(pg_pool) as conn:
        with pytest.raises(asyncpg.UniqueViolationError) as refused:
            await reverse_raw(conn, uuid.uuid4(), original)
    assert refused.value.constraint_name == "movements_reverses_id_key"
    assert await pg_pool.fetchval("SELECT count(*) FROM movements WHERE reverses_id = $1", original) == 1
    assert await balance(pg_pool, stock.account_id) == stock.balance


async def test_two_transactions_reversing_one_movement_at_once_commit_one(client, operator, pg_pool, stock):
    issued = await client.post("/api/v1/movements", headers={**operator, **idem()},
                               json={"kind": "issue", "lot_id": stock.lot_id, "owner": await owner_code(pg_pool, stock),
                                     "quantity": "2.0"})
    assert issued.status_code == 201, issued.text
    original = uuid.UUID(issued.json()["id"])
    async with pg_pool.acquire() as first, pg_pool.acquire() as second:
        first_tx, second_tx = first.transaction(), second.transaction()
        await first_tx.start()
        await second_tx.start()
        try:
            await reverse_raw(first, uuid.uuid4(), original)
            # The second waits on the first's index entry; whatever the interleaving, it cannot commit too.
            racing = asyncio.create_task(reverse_raw(second, uuid.uuid4(), original))
            await first_tx.commit()
            with pytest.raises(asyncpg.UniqueViolationError):
                async with asyncio.timeout(30):
                    await racing
        finally:
            await second_tx.rollback()
    assert await pg_pool.fetchval("SELECT count(*) FROM movements WHERE reverses_id = $1", original) == 1
    assert await balance(pg_pool, stock.account_id) == stock.balance


async def owner_code(pg, stock: Stock) -> str:
    return await pg.fetchval("SELECT o.code FROM accounts a JOIN parties o ON o.id = a.owner_id WHERE a.id = $1",
                             stock.account_id)


async def reverse_raw(conn, movement_id: uuid.UUID, original: uuid.UUID) -> None:
    """A reversal by hand: a movement pointing at the original, posting its negation."""
    await conn.execute("INSERT INTO movements (id, kind, occurred_at, reverses_id) VALUES ($1, 'reversal', now(), $2)",
                       movement_id, original)
    await conn.execute(
        """INSERT INTO postings (movement_id, account_id, external, material_id, delta)
           SELECT $1, account_id, external, material_id, -delta FROM postings WHERE movement_id = $2 ORDER BY id""",
        movement_id, original)
