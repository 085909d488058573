"""The restore drill of the README's operations section: a demo reserve is dumped with pg_dump,
restored with pg_restore into a fresh database, and the copy is the reserve — its audit chain
verifies against the anchor taken from the original, the ledger check passes, and every balance,
movement and audit event is the same."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import asyncpg

from stockpile.demo import load_demo
from stockpile.store.engine import asyncpg_dsn, plain_url

AUDIT_KEY = "restore-drill-audit-key-0123456789abcdef"


def stockpile(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stockpile", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DATABASE_URL": url, "STOCKPILE_AUDIT_KEY": AUDIT_KEY})


async def _reserve(url: str) -> dict[str, list[tuple]]:
    """What must survive a restore exactly: every account's balance and reservation, the ledger, the
    audit chain."""
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        return {
            "accounts": [tuple(r) for r in await conn.fetch("SELECT id, balance, reserved FROM accounts ORDER BY id")],
            "movements": [tuple(r) for r in await conn.fetch("SELECT id, kind FROM movements ORDER BY id")],
            "postings": [tuple(r) for r in await conn.fetch("SELECT movement_id, account_id, external, delta FROM postings ORDER BY id")],
            "audit": [tuple(r) for r in await conn.fetch("SELECT chain_seq, chain_hash FROM audit_events "
                                                         "WHERE chain_seq IS NOT NULL ORDER BY chain_seq")],
        }
    finally:
        await conn.close()


async def test_a_dumped_reserve_restores_whole(make_database, tmp_path):
    for tool in ("pg_dump", "pg_restore"):
        assert shutil.which(tool), f"{tool} comes with PostgreSQL's client programs"
    original = make_database()
    await load_demo(original)
    anchor = tmp_path / "audit-anchor.json"
    sealed = stockpile(original, "audit", "verify", "--anchor", str(anchor))
    assert sealed.returncode == 0 and anchor.exists(), sealed.stdout + sealed.stderr
    before = await _reserve(original)
    assert before["accounts"] and before["movements"] and before["audit"]

    dump = tmp_path / "stockpile.dump"
    dumped = subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", plain_url(original)],
                            capture_output=True, text=True, timeout=300)
    assert dumped.returncode == 0, dumped.stderr
    copy = make_database(migrate=False)
    restored = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={plain_url(copy)}", str(dump)],
                              capture_output=True, text=True, timeout=300)
    assert restored.returncode == 0, restored.stderr

    verified = stockpile(copy, "audit", "verify", "--anchor", str(anchor))
    assert verified.returncode == 0 and "audit chain intact" in verified.stdout, verified.stdout + verified.stderr
    checked = stockpile(copy, "job", "run", "check-ledger")
    assert checked.returncode == 0 and '"mismatched": []' in checked.stdout, checked.stdout + checked.stderr
    after = await _reserve(copy)
    assert after == before
    upgraded = stockpile(copy, "db", "upgrade")  # the copy is at the latest revision: nothing to do, no error
    assert upgraded.returncode == 0, upgraded.stderr
