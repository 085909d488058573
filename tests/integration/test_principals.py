"""Principals and tokens from the command line: listing, showing, narrowing and disabling a principal,
issuing tokens that never widen one silently, commands attributed to a named principal or to a
rightless ``cli:<user>``, and the demo kept to where it belongs.

The CLI runs in process (``parser().parse_args`` → the command's function, in a thread of its own
because each command runs its own event loop) against the session's database, so the API client
sees every change at once (the test settings trust a token lookup for 0 s).
"""

from __future__ import annotations

import asyncio
import getpass
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from stockpile.cli import demo_wanted, parser
from stockpile.config import Settings
from stockpile.demo import TOKEN_DAYS, load_demo
from stockpile.domain.errors import Conflict, Forbidden, Invalid
from stockpile.domain.principals import Rights, require_may_issue, rights_to_add
from stockpile.store import tokens
from stockpile.store.engine import asyncpg_dsn
from tests.factories import make_world

OS_USER = f"cli:{getpass.getuser()}"


@dataclass
class Ran:
    status: int
    out: str
    err: str

    @property
    def last_line(self) -> str:
        return self.out.strip().splitlines()[-1]


def _cli(url: str, argv: tuple[str, ...]) -> Ran:
    args = parser().parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = args.func(args, Settings(database_url=url))
    return Ran(status, out.getvalue(), err.getvalue())


async def cli(url: str, *argv: str) -> Ran:
    return await asyncio.to_thread(_cli, url, argv)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def principal_row(pg_pool, name: str) -> asyncpg.Record | None:
    return await pg_pool.fetchrow(
        """SELECT p.id, p.roles, p.clearance, p.disabled_at,
                  ARRAY(SELECT coalesce(w.code, r.code) FROM principal_grants g
                          LEFT JOIN warehouses w ON w.id = g.warehouse_id LEFT JOIN regions r ON r.id = g.region_id
                         WHERE g.principal_id = p.id ORDER BY 1) AS grants,
                  (SELECT count(*) FROM api_tokens t WHERE t.principal_id = p.id) AS tokens
             FROM principals p WHERE p.name = $1""", name)


async def audit_rows(pg_pool, target: str) -> list[asyncpg.Record]:
    rows = await pg_pool.fetch("SELECT actor, roles, action, details FROM audit_events WHERE target = $1 ORDER BY id",
                               target)
    return [{**dict(r), "details": json.loads(r["details"])} for r in rows]


# ---- the rule, on its own ---------------------------------------------------------------------------

HELD = Rights.of(["operator"], None, ["WH-1"], [])


def test_the_same_rights_or_none_issue_a_token_for_the_principal_as_it_is():
    assert rights_to_add("ana", HELD, Rights.of(["operator"], None, ["WH-1"]), widen=False).empty
    assert rights_to_add("ana", HELD, None, widen=False).empty
    assert rights_to_add("ana", HELD, Rights.of([], None, ["WH-1"]), widen=False).empty  # roles left out: kept


def test_more_rights_are_refused_unless_widened_and_then_only_the_difference_is_added():
    wider = Rights.of(["operator", "planner"], "military", ["WH-1", "WH-2"], ["R-1"])
    with pytest.raises(Conflict) as refused:
        rights_to_add("ana", HELD, wider, widen=False)
    assert refused.value.extra["would_add"] == {"roles": ["planner"], "clearance": "military",
                                                "warehouses": ["WH-2"], "regions": ["R-1"]}
    assert rights_to_add("ana", HELD, wider, widen=True) == Rights.of(["planner"], "military", ["WH-2"], ["R-1"])


def test_fewer_rights_are_refused_and_widening_never_removes_any():
    with pytest.raises(Conflict) as refused:
        rights_to_add("ana", HELD, Rights.of(["operator"]), widen=False)
    assert refused.value.extra["also_holds"] == {"warehouses": ["WH-1"]}
    assert rights_to_add("ana", HELD, Rights.of(["operator"]), widen=True).empty


def test_a_new_principal_needs_roles_a_disabled_one_gets_no_token_and_cli_names_are_reserved():
    with pytest.raises(Invalid):
        rights_to_add("ana", None, None, widen=False)
    assert rights_to_add("ana", None, HELD, widen=False) == HELD
    with pytest.raises(Conflict):
        rights_to_add("ana", HELD, None, widen=True, disabled=True)
    with pytest.raises(Invalid):
        rights_to_add("cli:ana", None, HELD, widen=True)


def test_military_clearance_is_handed_on_only_by_a_cleared_issuer():
    with pytest.raises(Forbidden):
        require_may_issue(False, "ana", "military")
    require_may_issue(True, "ana", "military")
    require_may_issue(False, "ana", None)


# ---- token list and principal show ------------------------------------------------------------------


async def test_token_list_shows_live_tokens_and_all_of_them_on_request(database_url, uid):
    name = f"lister-{uid}"
    first = await cli(database_url, "token", "create", "--name", name, "--role", "auditor", "--label", "laptop")
    second = await cli(database_url, "token", "create", "--name", name, "--label", "phone")  # the principal as it is
    assert (first.status, second.status) == (0, 0), (first.err, second.err)
    first_id = int(first.out.split()[1])
    assert (await cli(database_url, "token", "revoke", "--id", str(first_id))).status == 0

    live = await cli(database_url, "token", "list", "--name", name)
    rows = live.out.strip().splitlines()
    assert rows[0].split() == ["id", "principal", "roles", "label", "created", "expires", "revoked"]
    assert len(rows) == 2 and "phone" in rows[1] and "auditor" in rows[1]
    everything = await cli(database_url, "token", "list", "--name", name, "--all")
    assert len(everything.out.strip().splitlines()) == 3
    assert any(line.startswith(str(first_id)) and "laptop" in line for line in everything.out.splitlines())
    assert first.last_line not in everything.out and second.last_line not in everything.out  # never the values
    assert (await cli(database_url, "token", "list", "--name", f"nobody-{uid}")).status == 1


async def test_principal_show_gives_rights_grants_by_code_and_tokens(client, admin, database_url, uid):
    w = await make_world(client, admin, uid)
    name = f"shown-{uid}"
    made = await cli(database_url, "token", "create", "--name", name, "--role", "operator", "--warehouse", w.north,
                     "--region", w.region, "--clearance", "military", "--label", "depot tablet")
    assert made.status == 0, made.err
    shown = await cli(database_url, "principal", "show", name)
    assert shown.status == 0
    lines = dict(line.split(None, 1) for line in shown.out.splitlines()[:7])
    assert lines["roles"] == "operator" and lines["clearance"] == "military"
    assert lines["warehouses"] == w.north and lines["regions"] == w.region and lines["disabled"] == "no"
    assert "depot tablet" in shown.out and made.last_line not in shown.out
    assert (await cli(database_url, "principal", "show", f"nobody-{uid}")).status == 1


# ---- narrowing and disabling --------------------------------------------------------------------------


async def test_revoking_a_role_narrows_every_token_of_the_principal_and_is_audited(client, database_url, pg_pool, uid):
    name = f"narrowed-{uid}"
    made = await cli(database_url, "token", "create", "--name", name, "--role", "auditor", "--role", "metrics")
    token = bearer(made.last_line)
    assert (await client.get("/api/v1/audit-events", headers=token, params={"limit": 1})).status_code == 200

    revoked = await cli(database_url, "principal", "revoke-role", name, "--role", "auditor")
    assert revoked.status == 0, revoked.err
    assert list((await principal_row(pg_pool, name))["roles"]) == ["metrics"]
    assert (await client.get("/api/v1/audit-events", headers=token, params={"limit": 1})).status_code == 403
    again = await cli(database_url, "principal", "revoke-role", name, "--role", "auditor")
    assert again.status == 1 and "did not hold" in again.err
    events = await audit_rows(pg_pool, name)
    assert [e["action"] for e in events] == ["cli token create", "cli principal revoke-role"]
    assert events[1]["actor"] == OS_USER and events[1]["details"] == {"role": "auditor"}


async def test_removing_a_grant_takes_the_warehouse_out_of_scope(client, admin, database_url, pg_pool, uid):
    w = await make_world(client, admin, uid)
    name = f"ungranted-{uid}"
    made = await cli(database_url, "token", "create", "--name", name, "--role", "operator",
                     "--warehouse", w.north, "--warehouse", w.south)
    token = bearer(made.last_line)
    assert (await client.get(f"/api/v1/warehouses/{w.south}", headers=token)).status_code == 200

    removed = await cli(database_url, "principal", "ungrant", name, "--warehouse", w.south, "--region", w.region)
    assert removed.status == 0, removed.err
    assert f"removed: {w.south}" in removed.out and f"not granted (left alone): {w.region}" in removed.out
    assert list((await principal_row(pg_pool, name))["grants"]) == [w.north]
    assert (await client.get(f"/api/v1/warehouses/{w.south}", headers=token)).status_code == 404
    assert (await client.get(f"/api/v1/warehouses/{w.north}", headers=token)).status_code == 200
    event = (await audit_rows(pg_pool, name))[-1]
    assert event["action"] == "cli principal ungrant" and event["details"] == {"warehouses": [w.south], "regions": []}
    nothing = await cli(database_url, "principal", "ungrant", name, "--warehouse", w.south)
    assert nothing.status == 1 and len(await audit_rows(pg_pool, name)) == 2  # nothing changed, nothing audited


async def test_a_disabled_principal_is_refused_by_the_api_until_enabled(client, make_token, database_url, pg_pool, uid):
    name = f"disabled-{uid}"
    token = bearer(await make_token("auditor", name=name))
    assert (await client.get("/api/v1/stock", headers=token)).status_code == 200

    disabled = await cli(database_url, "principal", "disable", name)
    assert disabled.status == 0, disabled.err
    assert (await principal_row(pg_pool, name))["disabled_at"] is not None
    assert (await client.get("/api/v1/stock", headers=token)).status_code == 401
    assert (await cli(database_url, "principal", "disable", name)).status == 1  # already: nothing changed
    refused = await cli(database_url, "token", "create", "--name", name)
    assert refused.status == 2 and "disabled" in refused.err

    assert (await cli(database_url, "principal", "enable", name)).status == 0
    assert (await client.get("/api/v1/stock", headers=token)).status_code == 200
    actions = [(e["action"], e["details"]) for e in await audit_rows(pg_pool, name)]
    assert actions == [("cli principal disable", {"disabled": True}), ("cli principal enable", {"disabled": False})]


async def test_revoking_the_clearance_hides_military_stock_again(database_url, pg_pool, uid):
    name = f"uncleared-{uid}"
    await cli(database_url, "token", "create", "--name", name, "--role", "auditor", "--clearance", "military")
    assert (await cli(database_url, "principal", "revoke-clearance", name)).status == 0
    assert (await principal_row(pg_pool, name))["clearance"] is None
    assert (await cli(database_url, "principal", "revoke-clearance", name)).status == 1


# ---- issuing never widens silently ------------------------------------------------------------------


async def test_a_token_that_would_widen_a_principal_is_refused_unless_widen_is_given(client, admin, database_url,
                                                                                   pg_pool, uid):
    w = await make_world(client, admin, uid)
    name = f"widened-{uid}"
    first = await cli(database_url, "token", "create", "--name", name, "--role", "operator", "--warehouse", w.north)
    assert first.status == 0

    wider = ("token", "create", "--name", name, "--role", "operator", "--role", "planner", "--warehouse", w.north,
             "--warehouse", w.south, "--clearance", "military")
    refused = await cli(database_url, *wider)
    assert refused.status == 2 and "widen" in refused.err and "planner" in refused.err
    row = await principal_row(pg_pool, name)
    assert (list(row["roles"]), row["clearance"], list(row["grants"]), row["tokens"]) == (["operator"], None, [w.north], 1)
    # the first token still reads only its own warehouse
    assert (await client.get(f"/api/v1/warehouses/{w.south}", headers=bearer(first.last_line))).status_code == 404

    widened = await cli(database_url, *wider, "--widen")
    assert widened.status == 0, widened.err
    row = await principal_row(pg_pool, name)
    assert (list(row["roles"]), row["clearance"], sorted(row["grants"]), row["tokens"]) == \
        (["operator", "planner"], "military", sorted([w.north, w.south]), 2)
    event = (await audit_rows(pg_pool, name))[-1]
    assert event["action"] == "cli token create" and event["details"]["widened"] == {
        "roles": ["planner"], "clearance": "military", "warehouses": [w.south]}


async def test_a_narrower_request_is_refused_and_no_rights_asked_issues_a_token_as_the_principal_is(
        database_url, pg_pool, uid):
    name = f"as-is-{uid}"
    await cli(database_url, "token", "create", "--name", name, "--role", "auditor", "--clearance", "military")
    narrower = await cli(database_url, "token", "create", "--name", name, "--role", "auditor")
    assert narrower.status == 2 and "also holds clearance military" in narrower.err
    same = await cli(database_url, "token", "create", "--name", name, "--role", "auditor", "--clearance", "military")
    as_is = await cli(database_url, "token", "create", "--name", name)
    assert (same.status, as_is.status) == (0, 0)
    async with pg_pool.acquire() as pg:
        principal = await tokens.principal_for_token(pg, as_is.last_line)
    assert (principal.roles, principal.clearance) == (frozenset({"auditor"}), "military")
    assert (await principal_row(pg_pool, name))["tokens"] == 3
    new_without_roles = await cli(database_url, "token", "create", "--name", f"rolesless-{uid}")
    assert new_without_roles.status == 2 and await principal_row(pg_pool, f"rolesless-{uid}") is None


async def test_the_api_refuses_to_widen_a_principal_with_409_unless_the_body_says_widen(client, admin, pg_pool, uid):
    name = f"api-widened-{uid}"
    assert (await client.post("/api/v1/tokens", headers=admin,
                              json={"principal": name, "roles": ["auditor"]})).status_code == 201
    wider = {"principal": name, "roles": ["auditor", "admin"], "clearance": "military"}
    refused = await client.post("/api/v1/tokens", headers=admin, json=wider)
    assert refused.status_code == 409 and refused.json()["type"] == "conflict"
    assert refused.json()["would_add"] == {"roles": ["admin"], "clearance": "military"}
    narrower = await client.post("/api/v1/tokens", headers=admin, json={"principal": name, "roles": ["metrics"]})
    assert narrower.status_code == 409
    row = await principal_row(pg_pool, name)
    assert (list(row["roles"]), row["clearance"], row["tokens"]) == (["auditor"], None, 1)

    same = await client.post("/api/v1/tokens", headers=admin, json={"principal": name, "roles": ["auditor"]})
    as_is = await client.post("/api/v1/tokens", headers=admin, json={"principal": name})
    assert (same.status_code, as_is.status_code) == (201, 201) and as_is.json()["roles"] == ["auditor"]
    widened = await client.post("/api/v1/tokens", headers=admin, json={**wider, "widen": True})
    assert widened.status_code == 201 and widened.json()["roles"] == ["admin", "auditor"]
    event = await pg_pool.fetchrow("SELECT details FROM audit_events WHERE action = 'POST /api/v1/tokens' "
                                   "AND details->>'principal' = $1 ORDER BY id DESC LIMIT 1", name)
    assert json.loads(event["details"])["widened"] == {"roles": ["admin"], "clearance": "military"}
    assert (await principal_row(pg_pool, name))["tokens"] == 4


async def test_only_a_cleared_admin_issues_a_token_that_carries_military_clearance(client, admin, make_token, pg_pool,
                                                                                   uid):
    uncleared = bearer(await make_token("admin", name=f"uncleared-admin-{uid}"))
    cleared_name = f"cleared-reader-{uid}"
    assert (await client.post("/api/v1/tokens", headers=admin, json={
        "principal": cleared_name, "roles": ["auditor"], "clearance": "military"})).status_code == 201

    new = await client.post("/api/v1/tokens", headers=uncleared, json={
        "principal": f"new-cleared-{uid}", "roles": ["auditor"], "clearance": "military"})
    as_is = await client.post("/api/v1/tokens", headers=uncleared, json={"principal": cleared_name})
    widened = await client.post("/api/v1/tokens", headers=uncleared, json={
        "principal": cleared_name, "roles": ["auditor", "planner"], "clearance": "military", "widen": True})
    assert [r.status_code for r in (new, as_is, widened)] == [403, 403, 403]
    assert new.json()["type"] == "forbidden"
    assert await principal_row(pg_pool, f"new-cleared-{uid}") is None
    row = await principal_row(pg_pool, cleared_name)
    assert (list(row["roles"]), row["tokens"]) == (["auditor"], 1)
    plain = await client.post("/api/v1/tokens", headers=uncleared, json={"principal": f"plain-{uid}", "roles": ["auditor"]})
    assert plain.status_code == 201


async def test_cli_names_are_reserved_for_the_command_line(client, admin, database_url, pg_pool, uid):
    name = f"cli:someone-{uid}"
    assert (await cli(database_url, "token", "create", "--name", name, "--role", "admin")).status == 2
    api = await client.post("/api/v1/tokens", headers=admin, json={"principal": name, "roles": ["admin"]})
    assert api.status_code == 422
    assert await principal_row(pg_pool, name) is None


# ---- commands attributed to a principal --------------------------------------------------------------


async def test_an_import_without_as_is_attributed_to_a_disabled_rightless_cli_principal(database_url, pg_pool, tmp_path,
                                                                                      uid):
    path = tmp_path / "regions.csv"
    path.write_text(f"code,name,parent\nIMP-{uid},Imported region,TEST-NATION\n")
    await pg_pool.execute("INSERT INTO regions (code, name) VALUES ('TEST-NATION', 'Test nation') ON CONFLICT DO NOTHING")
    done = await cli(database_url, "import", str(path), "--resource", "regions")
    assert done.status == 0, done.err
    cli_principal = await principal_row(pg_pool, OS_USER)
    assert list(cli_principal["roles"]) == [] and cli_principal["clearance"] is None
    assert cli_principal["disabled_at"] is not None and cli_principal["tokens"] == 0
    event = (await audit_rows(pg_pool, str(path)))[-1]
    assert (event["actor"], event["roles"], event["action"]) == (OS_USER, [], "cli import regions")


async def test_an_import_as_a_principal_uses_its_roles_and_is_audited_under_its_name(make_token, database_url, pg_pool,
                                                                                   tmp_path, uid):
    await pg_pool.execute("INSERT INTO regions (code, name) VALUES ('TEST-NATION', 'Test nation') ON CONFLICT DO NOTHING")
    await make_token("operator", name=f"importing-operator-{uid}")
    await make_token("admin", name=f"importing-admin-{uid}")
    await make_token("admin", name=f"importing-disabled-{uid}")
    await pg_pool.execute("UPDATE principals SET disabled_at = now() WHERE name = $1", f"importing-disabled-{uid}")
    path = tmp_path / "regions.csv"
    path.write_text(f"code,name,parent\nAS-{uid},Imported region,TEST-NATION\n")
    regions = ("import", str(path), "--resource", "regions", "--as")

    lacking = await cli(database_url, *regions, f"importing-operator-{uid}")
    assert lacking.status == 2 and "needs one of the roles admin" in lacking.err
    disabled = await cli(database_url, *regions, f"importing-disabled-{uid}")
    assert disabled.status == 2 and "disabled" in disabled.err
    unknown = await cli(database_url, *regions, f"nobody-{uid}")
    assert unknown.status == 2
    assert await pg_pool.fetchval("SELECT count(*) FROM regions WHERE code = $1", f"AS-{uid}") == 0

    done = await cli(database_url, *regions, f"importing-admin-{uid}")
    assert done.status == 0, done.err
    assert await pg_pool.fetchval("SELECT count(*) FROM regions WHERE code = $1", f"AS-{uid}") == 1
    event = (await audit_rows(pg_pool, str(path)))[-1]
    assert (event["actor"], event["roles"]) == (f"importing-admin-{uid}", ["admin"])
    assert event["details"]["os_user"] == getpass.getuser()


async def test_movements_imported_as_an_operator_stay_in_its_scope(client, admin, make_token, database_url, pg_pool,
                                                                  tmp_path, uid):
    w = await make_world(client, admin, uid)
    name = f"scoped-importer-{uid}"
    await make_token("operator", name=name, warehouses=[w.north])
    path = tmp_path / "receipts.csv"
    path.write_text("kind,warehouse,material,owner,quantity,lot.code,lot.expires_on\n"
                    f"receipt,{w.north},{w.diesel},{w.civil},100,L-{uid},2030-01-01\n"
                    f"receipt,{w.south},{w.diesel},{w.civil},100,L-{uid},2030-01-01\n"
                    f"receipt,{w.north},{w.diesel},{w.military},100,M-{uid},2030-01-01\n")
    refused = await cli(database_url, "import", str(path), "--as", name)
    assert refused.status == 1
    assert "line 3:" in refused.err and "line 4:" in refused.err and "line 2:" not in refused.err
    assert await pg_pool.fetchval("SELECT count(*) FROM lots WHERE code LIKE $1", f"%-{uid}") == 0


# ---- the demo: where it belongs, and its tokens expire ---------------------------------------------


@pytest.mark.parametrize(("embedded", "setting", "asked", "refused", "loads"), [
    (True, True, False, False, True),     # a laptop's first start
    (True, False, False, False, False),   # STOCKPILE_DEMO=false
    (True, True, False, True, False),     # --no-demo
    (True, False, True, False, True),     # --demo beats the setting
    (False, True, False, False, False),   # DATABASE_URL: the setting (default true) is not enough
    (False, True, True, False, True),     # DATABASE_URL and --demo
    (False, False, True, False, True),
    (False, True, False, True, False),
])
def test_serve_loads_the_demo_only_into_the_embedded_database_unless_asked(embedded, setting, asked, refused, loads):
    assert demo_wanted(embedded=embedded, setting=setting, asked=asked, refused=refused) is loads


def test_serve_takes_demo_or_no_demo_but_not_both():
    assert parser().parse_args(["serve", "--demo"]).demo is True
    with pytest.raises(SystemExit), redirect_stderr(io.StringIO()):
        parser().parse_args(["serve", "--demo", "--no-demo"])


@pytest.fixture(scope="module")
async def demo(make_database, tmp_path_factory):
    url = make_database()
    return url, await load_demo(url, seed=3, tokens_file=tmp_path_factory.mktemp("demo") / "demo-tokens.txt")


async def test_demo_tokens_expire_after_thirty_days(demo):
    url, result = demo
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        expiries = await conn.fetch("SELECT t.expires_at FROM api_tokens t JOIN principals p ON p.id = t.principal_id "
                                    "WHERE p.name LIKE 'demo-%'")
        await conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second'")
        assert await tokens.principal_for_token(conn, result.token("admin")) is None
    finally:
        await conn.close()
    expected = datetime.now(timezone.utc) + timedelta(days=TOKEN_DAYS)
    assert len(expiries) == len(result.tokens) == 8  # seven people and the sensors' device
    assert all(abs(r["expires_at"] - expected) < timedelta(minutes=5) for r in expiries)
    assert f"they expire at {result.tokens_expire_at:%Y-%m-%d}" in result.report()


async def test_a_drill_as_a_planner_is_stored_under_its_name_and_refused_for_an_auditor(demo, tmp_path):
    url, _ = demo
    needed_by = (datetime.now(timezone.utc) + timedelta(days=3)).date().isoformat()
    scenario = tmp_path / "south.yaml"
    scenario.write_text(f"""name: southern flood
requests:
  - {{requester: CIV-CD-SOUTH, destination: WH-S-02, material: WATER-BOTTLED, quantity: "100", priority: flash, needed_by: "{needed_by}"}}
""")
    refused = await cli(url, "drill", str(scenario), "--as", "demo-auditor")
    assert refused.status == 1 and "demo-auditor may not run drills" in refused.err
    ran = await cli(url, "drill", str(scenario), "--as", "demo-planner", "--json")
    assert ran.status == 0, ran.err
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        stored = await conn.fetch("SELECT p.name FROM drills d JOIN principals p ON p.id = d.created_by")
        event = await conn.fetchrow("SELECT actor, roles FROM audit_events WHERE action = 'cli drill'")
    finally:
        await conn.close()
    assert [r["name"] for r in stored] == ["demo-planner"]
    assert (event["actor"], list(event["roles"])) == ("demo-planner", ["planner"])


async def test_a_drill_as_a_planner_keeps_to_its_regions_while_the_command_line_plans_anywhere(demo, tmp_path):
    url, _ = demo
    needed_by = (datetime.now(timezone.utc) + timedelta(days=3)).date().isoformat()
    scenario = tmp_path / "north.yaml"
    scenario.write_text(f"""name: northern storm
requests:
  - {{requester: CIV-CD-NORTH, destination: WH-N-04, material: WATER-BOTTLED, quantity: "100", priority: flash, needed_by: "{needed_by}"}}
""")
    outside = await cli(url, "drill", str(scenario), "--as", "demo-planner")  # its regions: PRV-SOUTH
    assert outside.status == 1 and "may not act on requests for this destination" in outside.err
    trusted = await cli(url, "drill", str(scenario), "--json")
    assert trusted.status == 0, trusted.err
    assert json.loads(trusted.out)["fill_rate"]
