"""`stockpile import FILE.csv`: master data and movements from CSV, all or nothing unless
``--per-row``, each file once, every refused row named by its line."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg
import pytest

from stockpile.store.engine import asyncpg_dsn

REGIONS = "code,name,parent\nIMP-NAT,Nation,\nIMP-N,North,IMP-NAT\n"
PARTIES = "code,name,sector\nIMP-CIV,Civil reserve,civilian\nIMP-MIL,Army depot command,military\n"
WAREHOUSES = ("code,name,operator,region,kind,latitude,longitude,capacity.fuel\n"
              "IMP-W1,North depot,IMP-CIV,IMP-N,joint,60.1,24.9,500000\n")
MATERIALS = ("code,name,category,unit,decimals,shelf_life_days\n"
             "IMP-DIESEL,Diesel,fuel,L,1,730\nIMP-RICE,Rice,food,kg,0,540\n")
RECEIPTS = ("kind,warehouse,material,owner,quantity,lot.code,lot.expires_on,note\n"
            "receipt,IMP-W1,IMP-DIESEL,IMP-CIV,1000.5,L-1,2030-01-01,delivery 1\n"
            "receipt,IMP-W1,IMP-DIESEL,IMP-MIL,250,L-1,2030-01-01,delivery 2\n"
            "receipt,IMP-W1,IMP-RICE,IMP-CIV,800,R-1,2029-06-30,\n")


def stockpile(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stockpile", *args], env={**os.environ, "DATABASE_URL": url},
                          capture_output=True, text=True, timeout=120)


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


async def query(url: str, sql: str, *args):
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def balances(url: str) -> dict[tuple[str, str, str], int]:
    rows = await query(url, """SELECT l.code AS lot, m.code AS material, p.code AS owner, a.balance
                                 FROM accounts a JOIN lots l ON l.id = a.lot_id JOIN materials m ON m.id = a.material_id
                                 JOIN parties p ON p.id = a.owner_id WHERE a.type = 'stock'""")
    return {(r["lot"], r["material"], r["owner"]): r["balance"] for r in rows}


@pytest.fixture
def loaded(make_database, tmp_path):
    """A database with the master data imported from CSV."""
    url = make_database()
    for resource, text in (("regions", REGIONS), ("parties", PARTIES), ("warehouses", WAREHOUSES),
                           ("materials", MATERIALS)):
        done = stockpile(url, "import", write(tmp_path, f"{resource}.csv", text), "--resource", resource)
        assert done.returncode == 0, done.stderr
        assert "rows written" in done.stdout
    return url


async def test_master_data_and_receipts_import_into_the_ledger(loaded, tmp_path):
    rows = await query(loaded, "SELECT w.code, r.code AS region, w.capacity FROM warehouses w JOIN regions r ON r.id = w.region_id")
    assert [(r["code"], r["region"]) for r in rows] == [("IMP-W1", "IMP-N")]
    assert '"fuel": "500000"' in rows[0]["capacity"] or '"fuel": "500000.0"' in rows[0]["capacity"]
    done = stockpile(loaded, "import", write(tmp_path, "receipts.csv", RECEIPTS))
    assert done.returncode == 0, done.stderr
    assert "3 of 3 movements rows written" in done.stdout
    assert "3/3 rows" in done.stderr  # the progress bar
    assert await balances(loaded) == {("L-1", "IMP-DIESEL", "IMP-CIV"): 10005, ("L-1", "IMP-DIESEL", "IMP-MIL"): 2500,
                                      ("R-1", "IMP-RICE", "IMP-CIV"): 800}
    audit = await query(loaded, "SELECT action, details FROM audit_events WHERE action = 'cli import movements'")
    assert len(audit) == 1 and '"written": 3' in audit[0]["details"]


async def test_one_refused_row_writes_nothing_and_every_refusal_names_its_line(loaded, tmp_path):
    text = RECEIPTS + ("issue,IMP-W1,IMP-RICE,IMP-CIV,900,,,too much\n"
                       "receipt,IMP-W1,IMP-NOPE,IMP-CIV,5,N-1,2030-01-01,\n"
                       "receipt,IMP-W1,IMP-DIESEL,IMP-CIV,1.25,L-2,2030-01-01,\n")
    done = stockpile(loaded, "import", write(tmp_path, "mixed.csv", text))
    assert done.returncode == 1
    assert "line 5: insufficient-stock" in done.stderr
    assert "line 6: validation: material: unknown material code 'IMP-NOPE'" in done.stderr
    assert "line 7: validation" in done.stderr and "line 2" not in done.stderr
    assert "nothing written" in done.stdout
    assert await balances(loaded) == {}
    assert (await query(loaded, "SELECT count(*) AS n FROM movements"))[0]["n"] == 0


async def test_per_row_writes_what_passes_and_a_file_is_imported_once(loaded, tmp_path):
    text = RECEIPTS + "issue,IMP-W1,IMP-RICE,IMP-CIV,300,,,canteen\nissue,IMP-W1,IMP-RICE,IMP-CIV,900,,,too much\n"
    path = write(tmp_path, "per-row.csv", text)
    done = stockpile(loaded, "import", path, "--per-row")
    assert done.returncode == 1
    assert "4 of 5 movements rows written, 1 refused" in done.stdout
    assert "line 6: insufficient-stock" in done.stderr
    assert (await balances(loaded))[("R-1", "IMP-RICE", "IMP-CIV")] == 500
    again = stockpile(loaded, "import", path, "--per-row")
    assert again.returncode == 0 and "already imported" in again.stdout
    assert (await balances(loaded))[("R-1", "IMP-RICE", "IMP-CIV")] == 500
    assert (await query(loaded, "SELECT count(*) AS n FROM movements"))[0]["n"] == 4


async def test_a_file_that_is_not_an_import_is_refused_before_anything_runs(loaded, tmp_path):
    no_kind = stockpile(loaded, "import", write(tmp_path, "x.csv", "code,name\nA,B\n"))
    assert no_kind.returncode == 2 and "--resource" in no_kind.stderr
    no_code = stockpile(loaded, "import", write(tmp_path, "y.csv", "name,sector\nA,civilian\n"), "--resource", "parties")
    assert no_code.returncode == 2 and "code column" in no_code.stderr
    missing = stockpile(loaded, "import", str(tmp_path / "absent.csv"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    bad_party = stockpile(loaded, "import", write(tmp_path, "z.csv", "code,name,sector\nIMP-X,X,navy\n"),
                          "--resource", "parties")
    assert bad_party.returncode == 1 and "line 2: validation" in bad_party.stderr
    assert not await query(loaded, "SELECT 1 FROM parties WHERE code = 'IMP-X'")
