"""Exports: ``Accept: text/csv`` on every list answers the JSON list's items — every one, the same
values, the same filters, scope and need-to-know — and ``stockpile export`` writes the same file.

The data is the canary world (``tests/canary.py``): military-only stock beside civilian stock in
a joint depot, and the activity that copies it into every list. A cleared admin's CSV must show
the canary; an uncleared reader's CSV must equal its own JSON list and hold none of it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
import uuid

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from stockpile.api.app import create_app
from stockpile.api.exports import catalog, cell
from stockpile.store.engine import asyncpg_dsn
from tests.canary import Canary, build
from tests.factories import idem, list_all, make_world, receive
from tests.live import principal_token

API = "/api/v1"
CSV = {"Accept": "text/csv"}

# Each export, its JSON list's path and the roles that read it (audit events: auditors and admins).
LISTS = {name: f"{API}/{name}" for name in (
    "stock", "lots", "movements", "transfers", "coverage", "alerts", "rotation-orders", "allocation-requests",
    "audit-events")}


def parse(response) -> tuple[list[str], list[list[str]]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv"), response.headers
    rows = list(csv.reader(io.StringIO(response.text)))
    return rows[0], rows[1:]


def flat(item: dict, columns: list[str]) -> list[str]:
    """A JSON item as the CSV writes it: each column's value (dotted: nested), as a cell."""
    out = []
    for column in columns:
        value = item
        for name in column.split("."):
            value = value.get(name) if isinstance(value, dict) else None
        out.append(cell(value))
    return out


def covered(item: dict, columns: list[str]) -> set[str]:
    """The members of ``item`` no column holds (a member may be held whole or by its dotted parts)."""
    return {name for name in item if name not in columns and not any(c.startswith(f"{name}.") for c in columns)}


async def json_items(client, headers: dict, name: str, **params) -> list[dict]:
    if name == "coverage":  # one answer, never paged
        r = await client.get(LISTS[name], headers=headers, params=params)
        assert r.status_code == 200, r.text
        return r.json()["items"]
    return await list_all(client, headers, LISTS[name], limit=1000, **params)


async def assert_csv_is_the_json_list(client, headers: dict, name: str, **params) -> list[list[str]]:
    header, rows = parse(await client.get(LISTS[name], headers={**headers, **CSV}, params=params))
    items = await json_items(client, headers, name, **params)
    assert header == list(catalog()[name].columns)
    for item in items:
        assert covered(item, header) == set(), (name, item)
    assert rows == [flat(item, header) for item in items], name
    return rows


async def _principal(url: str, name: str, roles: list[str], clearance: str | None, regions: list[str] = ()) -> dict:
    return {"Authorization": f"Bearer {await principal_token(url, name, roles, clearance, regions, 'exports')}"}


class CanaryWorld:
    def __init__(self, url: str, client, k: Canary, readers: dict[str, dict], names: dict[str, str]) -> None:
        self.url, self.client, self.k, self.readers, self.names = url, client, k, readers, names


@pytest.fixture(scope="module")
async def world(make_database, settings):
    url = make_database()
    uid = uuid.uuid4().hex[:6].upper()
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        await conn.execute("INSERT INTO regions (code, name) VALUES ('TEST-NATION', 'Test nation')")
    finally:
        await conn.close()
    cleared = {role: await _principal(url, f"cleared-{role}-{uid}", roles, "military",
                                      regions=["TEST-NATION"] if role in ("operator", "planner") else [])
               for role, roles in (("admin", ["admin", "operator"]), ("operator", ["operator"]),
                                   ("planner", ["planner"]), ("commander", ["commander"]))}
    async with AsyncTestClient(app=create_app(settings, url)) as client:
        k = await build(client, url, admin=cleared["admin"], operator=cleared["operator"], planner=cleared["planner"],
                        commander=cleared["commander"], uid=uid, settings=settings)
        names = {"uncleared-operator": f"x-operator-{uid}", "uncleared-auditor": f"x-auditor-{uid}",
                 "uncleared-planner": f"x-planner-{uid}", "cleared-auditor": f"c-auditor-{uid}"}
        readers = {
            "cleared-admin": cleared["admin"],
            "cleared-auditor": await _principal(url, names["cleared-auditor"], ["auditor"], "military"),
            "uncleared-operator": await _principal(url, names["uncleared-operator"], ["operator"], None,
                                                   regions=[k.region]),
            "uncleared-planner": await _principal(url, names["uncleared-planner"], ["planner"], None,
                                                  regions=[k.region]),
            "uncleared-auditor": await _principal(url, names["uncleared-auditor"], ["auditor"], None),
        }
        yield CanaryWorld(url, client, k, readers, names)


def readable(name: str, reader: str) -> bool:
    return name != "audit-events" or "auditor" in reader or "admin" in reader


@pytest.mark.parametrize("reader", ["cleared-admin", "cleared-auditor", "uncleared-operator", "uncleared-planner",
                                    "uncleared-auditor"])
async def test_every_list_as_csv_is_its_json_list_row_for_row(world, reader):
    for name in LISTS:
        if readable(name, reader):
            await assert_csv_is_the_json_list(world.client, world.readers[reader], name)


async def test_the_cleared_csv_shows_the_canary_so_the_uncleared_check_looks_where_it_is(world):
    text = ""
    for name in LISTS:
        r = await world.client.get(LISTS[name], headers={**world.readers["cleared-admin"], **CSV})
        text += r.text
    shown = {secret.what for secret in world.k.secrets if secret.pattern.search(text)}
    for must in ("lot code", "canary lot id", "military party code", "transfer id", "military request id"):
        assert must in shown, (must, sorted(shown))


@pytest.mark.parametrize("reader", ["uncleared-operator", "uncleared-planner", "uncleared-auditor"])
async def test_no_uncleared_csv_holds_the_military_canary(world, reader):
    k = world.k
    filters = [{}, {"warehouse": k.joint}, {"material": k.material}, {"owner": k.military}, {"region": k.region}]
    for name in LISTS:
        if not readable(name, reader):
            continue
        known = set(catalog()[name].filters.__struct_fields__)
        for params in (p for p in filters if set(p) <= known):
            r = await world.client.get(LISTS[name], headers={**world.readers[reader], **CSV}, params=params)
            assert r.status_code == 200, (name, params, r.text)
            body = r.text
            for value in params.values():  # what the request names itself may be echoed
                body = body.replace(value, "")
            leaks = [s.what for s in k.secrets if s.pattern.search(body)]
            assert leaks == [], (reader, name, params, leaks)


async def test_an_operator_exports_only_its_own_warehouses(client, make_token, admin, operator, uid):
    w = await make_world(client, admin, uid)
    for warehouse in (w.north, w.south):
        await receive(client, operator, warehouse=warehouse, material=w.diesel, owner=w.civil, quantity="700.5",
                      lot=f"SCOPE-{uid}")
    scoped = {"Authorization": f"Bearer {await make_token('operator', warehouses=[w.south])}"}
    for name in ("stock", "lots", "movements"):
        header, rows = parse(await client.get(f"{API}/{name}", headers={**scoped, **CSV},
                                              params={"material": w.diesel}))
        assert len(rows) == 1, (name, rows)
        assert w.north not in str(rows) and (name == "movements" or w.south in rows[0])


async def test_filters_narrow_the_csv_as_they_narrow_the_json(world):
    k, admin = world.k, world.readers["cleared-admin"]
    cases = [("stock", {"material": k.material, "owner": k.military}), ("stock", {"category": "medical"}),
             ("stock", {"warehouse": k.joint, "status": "available"}), ("lots", {"material": k.vaccine}),
             ("movements", {"owner": k.military}), ("movements", {"kind": "issue"}),
             ("movements", {"material": k.vaccine, "warehouse": k.joint}), ("transfers", {"state": "in_transit"}),
             ("coverage", {"region": k.region, "category": "medical"}), ("alerts", {"kind": "expiring"}),
             ("rotation-orders", {"material": k.vaccine}), ("allocation-requests", {"state": "pending"}),
             ("audit-events", {"action": "POST /api/v1/movements"})]
    narrowed = set()
    for name, params in cases:
        everything = await json_items(world.client, admin, name)
        rows = await assert_csv_is_the_json_list(world.client, admin, name, **params)
        assert 0 < len(rows) <= len(everything), (name, params)
        if len(rows) < len(everything):
            narrowed.add(name)
    assert narrowed >= {"stock", "lots", "movements", "alerts", "rotation-orders", "allocation-requests",
                        "audit-events"}, narrowed


async def test_every_matching_row_comes_whatever_the_limit_or_cursor(client, operator, admin, uid):
    """More rows than a page holds: the CSV has them all; ``limit`` and ``cursor`` do not apply."""
    w = await make_world(client, admin, uid)
    receipts = [{"kind": "receipt", "warehouse": w.north, "material": w.diesel, "owner": w.civil, "quantity": "1.5",
                 "lot": {"code": f"B-{uid}-{i}", "expires_on": "2031-01-01"}} for i in range(1000)]
    for batch in (receipts, receipts[:205]):
        r = await client.post(f"{API}/movements/batch", json={"movements": batch, "atomic": False},
                              headers={**operator, **idem()})
        assert r.status_code == 200, r.text
    _, rows = parse(await client.get(f"{API}/movements", headers={**operator, **CSV},
                                     params={"warehouse": w.north, "limit": 1}))
    assert len(rows) == 1205
    assert rows == [flat(m, list(catalog()["movements"].columns))
                    for m in await list_all(client, operator, f"{API}/movements", warehouse=w.north, limit=1000)]
    _, lots = parse(await client.get(f"{API}/lots", headers={**operator, **CSV}, params={"material": w.diesel}))
    balances = [lot[10] for lot in lots]
    assert len(lots) == 1000 and (balances.count("3.0"), balances.count("1.5")) == (205, 795)


async def test_quantities_are_the_json_decimal_strings(client, operator, admin, uid):
    w = await make_world(client, admin, uid)
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="1200.5",
                  lot=f"Q-{uid}")
    header, rows = parse(await client.get(f"{API}/stock", headers={**operator, **CSV}, params={"warehouse": w.north}))
    (row,) = rows
    shown = dict(zip(header, row))
    assert (shown["balance"], shown["reserved"], shown["available"], shown["expired"]) == ("1200.5", "0.0", "1200.5",
                                                                                           "false")


async def test_the_csv_is_named_and_typed_for_a_spreadsheet(client, operator):
    r = await client.get(f"{API}/alerts", headers={**operator, **CSV})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"].startswith('attachment; filename="alerts-')
    assert r.text.startswith("id,kind,subject,severity,state,title,details,")


async def test_json_stays_the_answer_unless_csv_is_asked_for(client, operator):
    for accept in ("*/*", "application/json", "text/html, */*;q=0.8", "text/csv;q=0.5, application/json"):
        r = await client.get(f"{API}/stock", headers={**operator, "Accept": accept}, params={"limit": 1})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), accept
        assert set(r.json()) == {"items", "next_cursor"}


@pytest.mark.parametrize("path, params, field", [
    ("movements", {"kind": "borrowed"}, "kind"), ("movements", {"since": "yesterday"}, "since"),
    ("stock", {"expiring_before": "2026-13-01"}, "expiring_before"), ("alerts", {"state": "closed"}, "state"),
    ("lots", {"status": "lost"}, "status"),
])
async def test_a_bad_filter_is_a_validation_problem_not_a_file(client, operator, path, params, field):
    r = await client.get(f"{API}/{path}", headers={**operator, **CSV}, params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == "validation" and field in str(body["errors"]), body


@pytest.mark.parametrize("path, params", [
    ("movements", {"since": "2026-01-01"}), ("movements", {"since": "2026-01-01T00:00:00"}),
    ("movements", {"until": "2026-01-01T02:00:00+02:00"}), ("stock", {"expiring_before": "2026-01-01T00:00:00Z"}),
    ("rotation-orders", {"due_before": "20260101"}), ("audit-events", {"since": "0"}),
])
async def test_csv_and_json_take_and_refuse_the_same_filter_values(client, admin, path, params):
    as_json = await client.get(f"{API}/{path}", headers=admin, params=params)
    as_csv = await client.get(f"{API}/{path}", headers={**admin, **CSV}, params=params)
    assert as_json.status_code == as_csv.status_code, (as_json.text[:300], as_csv.text[:300])


async def test_the_audit_trail_export_needs_an_auditor(client, operator):
    r = await client.get(f"{API}/audit-events", headers={**operator, **CSV})
    assert r.status_code == 403 and r.json()["type"] == "forbidden"


# -- the command line ---------------------------------------------------------------------------

def stockpile(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stockpile", *args], env={**os.environ, "DATABASE_URL": url},
                          capture_output=True, text=True, timeout=120)


async def test_the_command_line_export_is_the_api_export(world, tmp_path):
    k = world.k
    out = tmp_path / "movements.csv"
    done = stockpile(world.url, "export", "movements", "--filter", f"warehouse={k.joint}",
                     "--as", world.names["uncleared-operator"], "-o", str(out))
    assert done.returncode == 0, done.stderr
    r = await world.client.get(f"{API}/movements", headers={**world.readers["uncleared-operator"], **CSV},
                               params={"warehouse": k.joint})
    assert out.read_bytes() == r.content
    assert f"{len(r.text.splitlines()) - 1} movements rows exported" in done.stderr
    assert [s.what for s in k.secrets if s.pattern.search(out.read_text().replace(k.joint, ""))] == []


async def test_the_trusted_command_line_exports_everything_to_stdout(world):
    done = stockpile(world.url, "export", "stock", "--filter", f"material={world.k.material}")
    assert done.returncode == 0, done.stderr
    r = await world.client.get(f"{API}/stock", headers={**world.readers["cleared-admin"], **CSV},
                               params={"material": world.k.material})
    assert done.stdout.replace("\r\n", "\n") == r.text.replace("\r\n", "\n") and world.k.lot_code in done.stdout


@pytest.mark.parametrize("args, says", [
    (["export", "stock", "--filter", "colour=red"], "colour"),
    (["export", "movements", "--filter", "since=last week"], "since"),
    (["export", "stock", "--filter", "warehouse"], "NAME=VALUE"),
    (["export", "spreadsheets"], "no export"),
])
def test_the_command_line_refuses_a_bad_export_and_writes_nothing(world, tmp_path, args, says):
    out = tmp_path / "refused.csv"
    done = stockpile(world.url, *args, "-o", str(out))
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_command_line_export_of_the_audit_trail_needs_an_auditor(world, tmp_path):
    out = tmp_path / "audit.csv"
    done = stockpile(world.url, "export", "audit-events", "--as", world.names["uncleared-operator"], "-o", str(out))
    assert done.returncode == 2 and "auditor" in done.stderr, done.stderr
    assert not out.exists()
    done = stockpile(world.url, "export", "audit-events", "--as", world.names["uncleared-auditor"], "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert [s.what for s in world.k.secrets if s.pattern.search(out.read_text())] == []


# -- a client that walks away --------------------------------------------------------------------

async def test_clients_that_walk_away_mid_export_leave_no_connection_behind(make_database):
    """Each export holds one pooled connection in a read-only transaction while it streams; a
    client that disconnects after the first chunk must give it back. More abandoned exports than
    the pool holds, then a list that needs a connection still answers and none is left open."""
    from tests.live import running_server

    url = make_database()
    async with running_server(url, STOCKPILE_DB_POOL_SIZE="4") as (base, token):
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as c:
            for path, body in [
                ("/api/v1/regions/WALK", {"name": "r"}),
                ("/api/v1/parties/WALK-CIV", {"name": "o", "sector": "civilian"}),
                ("/api/v1/warehouses/WALK-W", {"name": "w", "operator": "WALK-CIV", "region": "WALK",
                                               "kind": "civilian", "latitude": 1, "longitude": 1}),
                ("/api/v1/materials/WALK-M", {"name": "m", "category": "fuel", "unit": "L", "decimals": 0}),
            ]:
                assert (await c.put(path, json=body)).status_code == 201
            for batch in range(12):  # some 4 MB of CSV: more than the sockets between them buffer
                receipts = [{"kind": "receipt", "warehouse": "WALK-W", "material": "WALK-M", "owner": "WALK-CIV",
                             "quantity": "5", "lot": {"code": f"L-{batch}-{i}", "expires_on": "2031-01-01"},
                             "note": "delivery note " + "x" * 100} for i in range(1000)]
                r = await c.post("/api/v1/movements/batch", json={"movements": receipts, "atomic": True},
                                 headers=idem())
                assert r.status_code == 201, r.text
        for _ in range(12):  # three times the pool
            async with httpx.AsyncClient(base_url=base, headers={**headers, **CSV}, timeout=30) as c:
                async with c.stream("GET", "/api/v1/movements") as r:
                    assert r.status_code == 200
                    first = await anext(r.aiter_raw())
                    assert first.startswith(b"id,kind,")
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as c:
            r = await c.get("/api/v1/movements", params={"limit": 1})
            assert r.status_code == 200 and len(r.json()["items"]) == 1
        dsn, kwargs = asyncpg_dsn(url)
        conn = await asyncpg.connect(dsn, **kwargs)
        try:
            for _ in range(100):
                left = await conn.fetchval(
                    """SELECT count(*) FROM pg_stat_activity
                        WHERE datname = current_database() AND application_name = 'stockpile'
                          AND state <> 'idle'""")
                if left == 0:
                    break
                await asyncio.sleep(0.1)
            assert left == 0
        finally:
            await conn.close()
