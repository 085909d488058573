"""The guarantees hold in PostgreSQL itself, whatever client writes: tried here with raw SQL."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.factories import make_world, receive


@pytest.fixture
async def movement(client, admin, operator, uid) -> dict:
    w = await make_world(client, admin, uid)
    return await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="10", lot="G")


async def _account(pg_pool, movement) -> asyncpg.Record:
    return await pg_pool.fetchrow("SELECT id, material_id, balance FROM accounts WHERE lot_id = $1::uuid",
                                  movement["postings"][0]["account"]["lot_id"])


@pytest.mark.parametrize("sql", [
    "UPDATE movements SET note = 'edited' WHERE id = $1::uuid",
    "DELETE FROM movements WHERE id = $1::uuid",
    "UPDATE postings SET delta = delta * 2 WHERE movement_id = $1::uuid",
    "DELETE FROM postings WHERE movement_id = $1::uuid",
])
async def test_the_ledger_is_append_only(pg_pool, movement, sql):
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pg_pool.execute(sql, movement["id"])


@pytest.mark.parametrize("table", ["movements", "postings"])
async def test_the_ledger_cannot_be_truncated(pg_pool, table):
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pg_pool.execute(f"TRUNCATE {table} CASCADE")


async def test_a_balance_changes_only_through_postings(pg_pool, movement):
    account = await _account(pg_pool, movement)
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="only through postings"):
        await pg_pool.execute("UPDATE accounts SET balance = balance + 1 WHERE id = $1", account["id"])
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="zero balance"):
        await pg_pool.execute(
            """INSERT INTO accounts (type, lot_id, owner_id, material_id, balance)
               SELECT 'stock', lot_id, (SELECT id FROM parties WHERE sector = 'military' LIMIT 1), material_id, 5
                 FROM accounts WHERE id = $1""", account["id"])


async def _post_raw(conn, account, deltas: list[tuple[int | None, str | None, int]]) -> None:
    movement_id = uuid.uuid4()
    await conn.execute("INSERT INTO movements (id, kind, occurred_at) VALUES ($1, 'issue', now())", movement_id)
    for account_id, external, delta in deltas:
        await conn.execute(
            "INSERT INTO postings (movement_id, account_id, external, material_id, delta) VALUES ($1, $2, $3, $4, $5)",
            movement_id, account_id, external, account["material_id"], delta)


async def test_stock_never_goes_negative(pg_pool, movement):
    account = await _account(pg_pool, movement)
    async with pg_pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="balance_not_negative"):
            async with conn.transaction():
                await _post_raw(conn, account, [(account["id"], None, -101), (None, "consumption", 101)])
    assert (await _account(pg_pool, movement))["balance"] == 100


async def test_an_unbalanced_movement_fails_at_commit_and_leaves_nothing(pg_pool, movement):
    account = await _account(pg_pool, movement)
    before = await pg_pool.fetchval("SELECT count(*) FROM movements")
    async with pg_pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="unbalanced"):
            async with conn.transaction():
                await _post_raw(conn, account, [(account["id"], None, -5), (None, "consumption", 4)])
    assert await pg_pool.fetchval("SELECT count(*) FROM movements") == before
    assert (await _account(pg_pool, movement))["balance"] == 100


async def test_a_balanced_raw_movement_moves_the_stored_balance(pg_pool, movement):
    account = await _account(pg_pool, movement)
    async with pg_pool.acquire() as conn, conn.transaction():
        await _post_raw(conn, account, [(account["id"], None, -30), (None, "consumption", 30)])
    assert (await _account(pg_pool, movement))["balance"] == 70


async def test_a_movement_is_reversed_at_most_once(pg_pool, movement):
    async with pg_pool.acquire() as conn:
        await conn.execute("INSERT INTO movements (id, kind, occurred_at, reverses_id) VALUES ($1, 'reversal', now(), $2)",
                           uuid.uuid4(), uuid.UUID(movement["id"]))
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("INSERT INTO movements (id, kind, occurred_at, reverses_id) VALUES ($1, 'reversal', now(), $2)",
                               uuid.uuid4(), uuid.UUID(movement["id"]))
