"""The authority matrix: every write route of the served OpenAPI document, tried by a principal
that holds the route's role but is out of scope, uncleared, or otherwise outside its remit for the
object *as it is now*. Each attempt must be refused — 403 ``forbidden`` or 404 ``not-found``, as
problem details — and write nothing. (A few cases are validity refusals and also take 409/422; an
object the caller may not see, named in the body — a rotation order, a request — may also answer 422
as an unknown one would, never a 409 that confirms it exists. Each such case says so.)

"Nothing written" is judged in PostgreSQL, not through the API: before each attempt the test takes a
transaction id as a mark and every table's row count; after it, any row of any table whose ``xmin``
is at or past the mark (inserted or updated since) and any changed row count (deleted) is a write.
Only the request's own bookkeeping (the audit trail, denial counts, rate limits, job runs, metric
snapshots) is left out, so a table added later is watched without editing this file.

The write routes come from ``GET /schema/openapi.json``: a write route the document lists without a
case here fails ``test_every_write_route_has_a_case``.

The world: region A with districts D-A (peacetime) and D-E (an emergency), where the scoped
principals are granted, and region B outside their scope; depots in each; a civilian and a
military party; diesel and vaccine; stock, transfers in transit, an emergency loan of military
vaccine with its obligation. Every case arranges its own object (a target, a plan, an order, an
alert, a lot…) with the admin, cleared operators or commanders just before the attempt, so a hole
one case finds does not change what the next case is judged on.
"""

from __future__ import annotations

import inspect
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Awaitable, Callable

import pytest

from tests.factories import idem, lot_of

PROBLEM = "application/problem+json"
SOON = (date.today() + timedelta(days=10)).isoformat()
WRITE_METHODS = {"post", "put", "patch", "delete"}
DENIED = {403: "forbidden", 404: "not-found"}
HIDDEN = {**DENIED, 422: "validation"}  # a hidden object named in the body may answer as an unknown one
REFUSED = {**DENIED, 409: "conflict", 422: "validation"}  # validity refusals (wrong repayment, widening)

# The request's own bookkeeping, not reserve data.
BOOKKEEPING = re.compile(r"^(alembic_version|job_runs|metric_snapshots)$|audit|denial|denied|rate_limit|throttle")


def short() -> str:
    return uuid.uuid4().hex[:6].upper()


# -- the world -------------------------------------------------------------------------------------

@dataclass
class World:
    uid: str
    region_a: str
    district_a: str  # peacetime: the scoped principals' depots A1, A2
    district_e: str  # an emergency: the loan of military vaccine, depots E1, E2
    region_b: str  # outside every scoped principal's grants: depots B1, B2
    wh_a1: str
    wh_a2: str
    wh_e1: str
    wh_e2: str
    wh_b1: str
    wh_b2: str
    mil: str
    civ: str
    diesel: str
    vaccine: str
    policy: str
    ids: dict[str, str] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.ids[name]


@dataclass
class Arrange:
    """What a case may use to make its own object before the attempt (all as trusted principals)."""

    w: World
    client: Any
    pg_pool: Any
    make_token: Callable[..., Awaitable[str]]
    admin: dict[str, str]
    operator: dict[str, str]  # cleared, scoped to the whole test nation
    pending: list[str] = field(default_factory=list)  # wartime declarations to withdraw at the end

    async def put(self, path: str, body: dict, headers: dict | None = None) -> dict:
        r = await self.client.put(path, json=body, headers=headers or self.admin)
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
        return r.json()

    async def post(self, path: str, body: Any = None, headers: dict | None = None, key: bool = False) -> dict:
        r = await self.client.post(path, json=body, headers={**(headers or self.admin), **(idem() if key else {})})
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
        return r.json()

    async def receipt(self, warehouse: str, material: str, owner: str, quantity: str, lot: str | None = None,
                      expires_on: str = "2030-01-01") -> tuple[str, str]:
        """(lot id, movement id) of a receipt."""
        moved = await self.post("/api/v1/movements", {
            "kind": "receipt", "warehouse": warehouse, "material": material, "owner": owner, "quantity": quantity,
            "lot": {"code": lot or f"L-{short()}", "expires_on": expires_on}}, self.operator, key=True)
        return lot_of(moved), moved["id"]

    async def target(self, scope: dict, **spec) -> str:
        code = f"AZ-T-{short()}"
        await self.put(f"/api/v1/reserve-targets/{code}", {
            "scope": scope, "material": self.w.diesel, "quantity": "1000", "warning_ratio": 0.9,
            "critical_ratio": 0.7, "floor_ratio": 0.5, "horizon_days": 30, **spec})
        return code

    async def request(self, destination: str, material: str, quantity: str, requester: str | None = None,
                      priority: str = "routine") -> str:
        return (await self.post("/api/v1/allocation-requests", {
            "requester": requester or self.w.civ, "destination": destination, "material": material,
            "quantity": quantity, "priority": priority, "needed_by": SOON, "purpose": "authority matrix"}))["id"]

    async def plan(self, request_id: str, approve: dict | None = None, military: bool = False) -> str:
        made = await self.post("/api/v1/allocation-plans", {"request_ids": [request_id]})
        owners = {line["owner"] for line in made["lines"]}
        assert owners == ({self.w.mil} if military else {self.w.civ}), made["lines"]
        if approve is not None:
            await self.post(f"/api/v1/allocation-plans/{made['id']}/approve", headers=approve)
        return made["id"]

    async def plan_in_b(self, approve: bool = False) -> str:
        """A plan of civil diesel for region B's civil depot (proposed, or approved by the admin)."""
        req = await self.request(self.w.wh_b2, self.w.diesel, "20")
        return await self.plan(req, self.admin if approve else None)

    async def plan_of_military_stock(self, approve: bool = False) -> str:
        """An emergency loan plan in district E (military vaccine for civil relief); a commander approves it."""
        req = await self.request(self.w.wh_e2, self.w.vaccine, "5", priority="immediate")
        return await self.plan(req, self.w.headers["cmd1"] if approve else None, military=True)

    async def order(self, warehouse: str, owner: str) -> str:
        """A rotation order half worked (out 50.0 of 100.0 L) on a fresh diesel lot, as the planner writes it."""
        lot, _ = await self.receipt(warehouse, self.w.diesel, owner, "200")
        return await self.pg_pool.fetchval(
            """INSERT INTO rotation_orders (lot_id, owner_id, policy_id, quantity, out_quantity, in_quantity, out_by,
                                            in_by, outlet, state, explanation)
               SELECT $1::uuid, o.id, p.id, 1000, 500, 0, current_date + 10, current_date + 40, p.outlet,
                      'in_progress', 'authority matrix'
                 FROM parties o, rotation_policies p WHERE o.code = $2 AND p.code = $3
               RETURNING id::text""", lot, owner, self.w.policy)

    async def alert(self, warehouse: str, owner: str) -> str:
        """An open critical alert: a failed shelf-life test of a fresh lot."""
        lot, _ = await self.receipt(warehouse, self.w.diesel, owner, "7")
        await self.post(f"/api/v1/lots/{lot}/shelf-life-extensions", {"test_reference": "QT-A", "result": "fail"})
        found = await self.pg_pool.fetchval("SELECT id::text FROM alerts WHERE subject = $1 AND state = 'open'",
                                            f"lot:{lot}")
        assert found
        return found

    async def capacity(self, region: str, held_for: str | None = None, material: str | None = None) -> str:
        """A capacity delivering to ``region``, as the admin surveyed it."""
        code = f"AZ-CAP-{short()}"
        await self.put(f"/api/v1/capacities/{code}", {
            "party": self.w.civ, "material": material or self.w.diesel, "daily_quantity": "100", "lead_days": 0,
            "region": region, "held_for": held_for, "surveyed_on": date.today().isoformat(),
            "survey_interval_days": 365})
        return code

    async def tasking(self, region: str, destination: str, held_for: str | None = None) -> str:
        """An open tasking order: a fuel no one holds, a capacity of it, a request only it can meet,
        planned and approved by the admin."""
        fuel = f"AZ-JET-{short()}"
        await self.put(f"/api/v1/materials/{fuel}", {"name": "Jet fuel", "category": "fuel", "unit": "L",
                                                     "decimals": 1, "storage_class": "bulk_liquid"})
        code = await self.capacity(region, held_for, fuel)
        made = await self.post("/api/v1/allocation-plans", {"request_ids": [await self.request(destination, fuel, "50")]})
        await self.post(f"/api/v1/allocation-plans/{made['id']}/approve")
        [order] = (await self.client.get("/api/v1/taskings", params={"capacity": code}, headers=self.admin)).json()["items"]
        return order["id"]

    async def pending_wartime(self) -> str:
        """A wartime declaration on a fresh sub-region of B, waiting for a second commander."""
        region = f"AZ-RB-SUB-{short()}"
        await self.put(f"/api/v1/regions/{region}", {"name": "B sub", "parent": self.w.region_b})
        made = await self.post("/api/v1/readiness/declarations",
                               {"region": region, "level": "wartime", "reason": "authority matrix"},
                               self.w.headers["cmd1"])
        assert made["state"] == "pending_confirmation", made
        self.pending.append(made["id"])
        return made["id"]


async def build_world(a: Arrange) -> World:
    w = a.w
    for path, body in [
        (f"/api/v1/regions/{w.region_a}", {"name": "Region A", "parent": "TEST-NATION"}),
        (f"/api/v1/regions/{w.district_a}", {"name": "District A", "parent": w.region_a}),
        (f"/api/v1/regions/{w.district_e}", {"name": "District E", "parent": w.region_a}),
        (f"/api/v1/regions/{w.region_b}", {"name": "Region B", "parent": "TEST-NATION"}),
        (f"/api/v1/parties/{w.mil}", {"name": "Brigade", "sector": "military", "parent": None}),
        (f"/api/v1/parties/{w.civ}", {"name": "Civil bureau", "sector": "civilian", "parent": None}),
        (f"/api/v1/materials/{w.diesel}", {"name": "Diesel", "category": "fuel", "unit": "L", "decimals": 1,
                                           "shelf_life_days": 730, "storage_class": "bulk_liquid"}),
        (f"/api/v1/materials/{w.vaccine}", {"name": "Vaccine", "category": "medical", "unit": "dose", "decimals": 0,
                                            "shelf_life_days": 365, "storage_class": "cold_chain"}),
        (f"/api/v1/rotation-policies/{w.policy}", {"material": w.diesel, "trigger_days_before_expiry": 90}),
    ]:
        await a.put(path, body)
    for code, region, kind, lat, lon in ((w.wh_a1, w.district_a, "joint", 60.1, 24.9),
                                         (w.wh_a2, w.district_a, "civilian", 60.2, 25.0),
                                         (w.wh_e1, w.district_e, "joint", 58.0, 23.0),
                                         (w.wh_e2, w.district_e, "civilian", 58.1, 23.1),
                                         (w.wh_b1, w.region_b, "joint", 65.0, 25.5),
                                         (w.wh_b2, w.region_b, "civilian", 65.1, 25.6)):
        await a.put(f"/api/v1/warehouses/{code}", {"name": code, "operator": w.civ, "region": region, "kind": kind,
                                                   "latitude": lat, "longitude": lon})

    # Principals. Scoped ones hold districts A and E; "_c" ones are cleared for military stock.
    async def token(key, *roles, clearance=None, regions=()):
        w.names[key] = name = f"az-{key}-{w.uid}"
        made = await a.make_token(*roles, name=name, clearance=clearance, regions=list(regions))
        w.headers[key] = {"Authorization": f"Bearer {made}"}

    ours = [w.district_a, w.district_e]
    await token("opA", "operator", regions=ours)
    await token("opA_c", "operator", clearance="military", regions=ours)
    await token("opB_c", "operator", clearance="military", regions=[w.region_b])
    await token("plA", "planner", regions=ours)
    await token("plA_c", "planner", clearance="military", regions=ours)
    await token("admin_u", "admin")
    await token("cmd1", "commander", clearance="military")
    await token("cmd2", "commander", clearance="military")
    await token("sensA", "sensor", regions=ours)
    w.headers["admin"] = a.admin

    # Shared stock (cases that could change it arrange their own lots instead).
    w.ids["JOINT-A"], _ = await a.receipt(w.wh_a1, w.diesel, w.civ, "1000", lot="JOINT-A")
    await a.receipt(w.wh_a1, w.diesel, w.mil, "600", lot="JOINT-A")  # one lot: 1000 civil + 600 military
    w.ids["MIL-A"], _ = await a.receipt(w.wh_a1, w.diesel, w.mil, "500", lot="MIL-A")
    w.ids["CIV-A"], _ = await a.receipt(w.wh_a1, w.diesel, w.civ, "1000", lot="CIV-A")
    w.ids["CIV-B"], _ = await a.receipt(w.wh_b1, w.diesel, w.civ, "1000", lot="CIV-B")
    await a.receipt(w.wh_b2, w.diesel, w.civ, "1000", lot="CIV-B2")
    w.ids["MIL-A2"], _ = await a.receipt(w.wh_a2, w.diesel, w.mil, "300", lot="MIL-A2")
    _, w.ids["REV-MIL"] = await a.receipt(w.wh_a1, w.diesel, w.mil, "5")
    short_lived = (date.today() + timedelta(days=3)).isoformat()  # too short-lived for any plan to draw on it
    _, w.ids["REV-B"] = await a.receipt(w.wh_b1, w.vaccine, w.civ, "5", expires_on=short_lived)
    w.ids["VAX-MIL"], w.ids["VAX-MIL:receipt"] = await a.receipt(w.wh_e1, w.vaccine, w.mil, "300", lot="VAX-MIL")

    # Transfers in transit: inside B, from A to B, military stock inside A; and one received before the
    # loan that moved the creditor's own vaccine (it credits the creditor but repays nothing).
    for name, src, dst, lot, owner in (("TR-B", w.wh_b2, w.wh_b1, None, w.civ),
                                       ("TR-A-TO-B", w.wh_a1, w.wh_b1, "CIV-A", w.civ),
                                       ("TR-MIL", w.wh_a2, w.wh_a1, "MIL-A2", w.mil)):
        lot_id = w[lot] if lot else (await a.receipt(src, w.diesel, owner, "50"))[0]
        sent = await a.post("/api/v1/transfers", {"from_warehouse": src, "to_warehouse": dst,
                                                  "lines": [{"lot_id": lot_id, "owner": owner, "quantity": "10"}]},
                            a.operator, key=True)
        w.ids[name] = sent["id"]
    own = await a.post("/api/v1/transfers", {"from_warehouse": w.wh_e1, "to_warehouse": w.wh_a1, "lines": [
        {"lot_id": w["VAX-MIL"], "owner": w.mil, "quantity": "10"}]}, a.operator, key=True)
    await a.post(f"/api/v1/transfers/{own['id']}/receipt", {}, a.operator, key=True)
    w.ids["OWN-TRANSFER-BEFORE"] = await a.pg_pool.fetchval(
        "SELECT id::text FROM movements WHERE transfer_id = $1::uuid AND kind = 'transfer_receipt'", own["id"])

    # District E in an emergency: civil relief borrows 60 doses of military vaccine (a loan).
    declared = await a.post("/api/v1/readiness/declarations",
                            {"region": w.district_e, "level": "emergency", "reason": "authority matrix"},
                            w.headers["cmd1"])
    assert declared["state"] == "effective", declared
    loan_request = await a.request(w.wh_e2, w.vaccine, "60", priority="immediate")
    loan = await a.plan(loan_request, w.headers["cmd1"], military=True)
    dispatched = await a.post(f"/api/v1/allocation-plans/{loan}/dispatch", key=True)
    w.ids["OBLIGATION"] = dispatched["lines"][0]["obligation_id"]
    assert w["OBLIGATION"], dispatched

    # After the loan: a repayment already cited (10 settled), and movements that repay nothing.
    _, w.ids["REPAID-CITED"] = await a.receipt(w.wh_e1, w.vaccine, w.mil, "10")
    await a.post(f"/api/v1/obligations/{w['OBLIGATION']}/settlements",
                 {"quantity": "10", "movement_id": w["REPAID-CITED"], "note": "first part"})
    _, w.ids["AFTER-OTHER-MATERIAL"] = await a.receipt(w.wh_e1, w.diesel, w.mil, "20")
    _, w.ids["AFTER-TO-DEBTOR"] = await a.receipt(w.wh_e2, w.vaccine, w.civ, "20", expires_on=short_lived)
    return w


# -- what was written ------------------------------------------------------------------------------

async def _tables(pg_pool) -> list[str]:
    rows = await pg_pool.fetch(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1""")
    return [r["relname"] for r in rows if not BOOKKEEPING.search(r["relname"])]


async def _counts(pg_pool, tables: list[str]) -> dict[str, int]:
    return dict(await pg_pool.fetchrow("SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}") AS "{t}"' for t in tables)))


async def mark(pg_pool, tables: list[str]) -> tuple[int, dict[str, int]]:
    """A transaction id every later write is at or past (32-bit, as ``xmin``), and every table's row count."""
    return await pg_pool.fetchval("SELECT txid_current() % 4294967296"), await _counts(pg_pool, tables)


async def written(pg_pool, tables: list[str], since: tuple[int, dict[str, int]]) -> dict[str, Any]:
    """Per table written since the mark: the row count before → after, and a few rows inserted or updated."""
    xid, before = since
    after = await _counts(pg_pool, tables)
    rows = await pg_pool.fetch(" UNION ALL ".join(
        f"""(SELECT '{t}' AS t, row_to_json(x)::text AS row FROM "{t}" x WHERE x.xmin::text::bigint >= $1 LIMIT 3)"""
        for t in tables), xid)
    found: dict[str, Any] = {}
    for t in tables:
        touched = [r["row"][:300] for r in rows if r["t"] == t]
        if touched or after[t] != before[t]:
            found[t] = {"count": f"{before[t]} -> {after[t]}", "rows": touched}
    return found


# -- the cases -------------------------------------------------------------------------------------

Build = Callable[[Arrange], "tuple[str, Any] | Awaitable[tuple[str, Any]]"]


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    route: str  # the OpenAPI path template
    principal: str  # a key of World.headers
    build: Build  # arrange → (concrete path, body); may be async (it arranges the case's own object)
    refused: dict[int, str] = field(default_factory=lambda: DENIED)


MOVEMENTS, BATCH, TRANSFERS = "/api/v1/movements", "/api/v1/movements/batch", "/api/v1/transfers"
TRANSFER_RECEIPT = "/api/v1/transfers/{transfer_id}/receipt"
LOT_STATUS, SHELF = "/api/v1/lots/{lot_id}/status", "/api/v1/lots/{lot_id}/shelf-life-extensions"
TARGET, POLICY = "/api/v1/reserve-targets/{code}", "/api/v1/rotation-policies/{code}"
RULE = "/api/v1/allocation-rules/{code}"
PLAN, REQUEST = "/api/v1/allocation-plans/{plan_id}", "/api/v1/allocation-requests/{request_id}"
ORDER_CANCEL, ACK = "/api/v1/rotation-orders/{order_id}/cancel", "/api/v1/alerts/{alert_id}/acknowledge"
SETTLE = "/api/v1/obligations/{obligation_id}/settlements"
DECLARATIONS = "/api/v1/readiness/declarations"
TOKENS = "/api/v1/tokens"
CAPACITY, TASKING_RECEIPT = "/api/v1/capacities/{code}", "/api/v1/taskings/{tasking_id}/receipts"
SENSOR, READINGS = "/api/v1/sensors/{code}", "/api/v1/sensor-readings"


def fill(route: str, value: str) -> str:
    """The route with its one path parameter set."""
    return re.sub(r"\{\w+\}", value, route)


def mv(body: Callable[[World], dict]) -> Build:
    return lambda a: (MOVEMENTS, body(a.w))


def on_lot(route: str, body: dict, where: Callable[[World], tuple[str, str]], also_civil: bool = False) -> Build:
    """The route on a fresh diesel lot at ``where(w)`` = (warehouse, owner); ``also_civil`` adds a civil share."""
    async def build(a: Arrange):
        warehouse, owner = where(a.w)
        lot, _ = await a.receipt(warehouse, a.w.diesel, owner, "40")
        if also_civil:
            await a.post(MOVEMENTS, {"kind": "receipt", "warehouse": warehouse, "material": a.w.diesel,
                                     "owner": a.w.civ, "quantity": "40", "lot": {"code": await _lot_code(a, lot),
                                                                                "expires_on": "2030-01-01"}},
                         a.operator, key=True)
        return fill(route, lot), body
    return build


async def _lot_code(a: Arrange, lot: str) -> str:
    return await a.pg_pool.fetchval("SELECT code FROM lots WHERE id = $1::uuid", lot)


def takeover(scope: Callable[[World], dict], **spec: Callable[[World], Any]) -> Build:
    """A target as the admin set it, then PUT by the caller with its own district as scope, floor 0, quantity 1."""
    async def build(a: Arrange):
        code = await a.target(scope(a.w), **{k: v(a.w) for k, v in spec.items()})
        return fill(TARGET, code), {"scope": {"region": a.w.district_a}, "material": a.w.diesel, "sector": "civilian",
                                    "quantity": "1", "warning_ratio": 0.9, "critical_ratio": 0.7, "floor_ratio": 0,
                                    "horizon_days": 30}
    return build


def new_target(**spec: Callable[[World], Any]) -> Build:
    return lambda a: (fill(TARGET, f"AZ-NEW-{short()}"), {
        "material": a.w.diesel, "quantity": "1", "warning_ratio": 0.9, "critical_ratio": 0.7, "floor_ratio": 0.5,
        **{k: v(a.w) for k, v in spec.items()}})


def rotation_in(order_at: Callable[[World], tuple[str, str]], owner: Callable[[World], str]) -> Build:
    """A rotation_in into the caller's own depot A1 carrying the id of a fresh order at ``order_at(w)``."""
    async def build(a: Arrange):
        order = await a.order(*order_at(a.w))
        return MOVEMENTS, {"kind": "rotation_in", "warehouse": a.w.wh_a1, "material": a.w.diesel, "owner": owner(a.w),
                           "quantity": "10", "rotation_order_id": order,
                           "lot": {"code": f"FRESH-{short()}", "expires_on": "2031-01-01"}}
    return build


def rotation_out(order_at: Callable[[World], tuple[str, str]], lot_of_order: bool) -> Build:
    """A rotation_out carrying a fresh order's id: of the order's own lot, or of the caller's civil lot CIV-A."""
    async def build(a: Arrange):
        order = await a.order(*order_at(a.w))
        row = await a.pg_pool.fetchrow("SELECT o.lot_id::text AS lot, p.code AS owner FROM rotation_orders o "
                                       "JOIN parties p ON p.id = o.owner_id WHERE o.id = $1::uuid", order)
        lot, owner = (row["lot"], row["owner"]) if lot_of_order else (a.w["CIV-A"], a.w.civ)
        return MOVEMENTS, {"kind": "rotation_out", "lot_id": lot, "owner": owner, "quantity": "10",
                           "rotation_order_id": order}
    return build


def settle_citing(movement: Callable[[World], str], quantity: str = "5") -> Build:
    return lambda a: (fill(SETTLE, a.w["OBLIGATION"]),
                      {"quantity": quantity, "movement_id": movement(a.w), "note": "authority matrix"})


def settle_with_fresh_repayment() -> Build:
    """A genuine repayment (military vaccine received after the loan), cited by the caller."""
    async def build(a: Arrange):
        _, movement = await a.receipt(a.w.wh_e1, a.w.vaccine, a.w.mil, "5")
        return fill(SETTLE, a.w["OBLIGATION"]), {"quantity": "5", "movement_id": movement, "note": "authority matrix"}
    return build


def on(route: str, arrange: Callable[[Arrange], Awaitable[str]], body: Any = None) -> Build:
    async def build(a: Arrange):
        return fill(route, await arrange(a)), body
    return build


def drill(**request: Callable[[World], str]) -> Build:
    return lambda a: ("/api/v1/drills", {"name": "authority matrix", "requests": [{
        "priority": "immediate", "needed_by": SOON, "quantity": "10", "material": a.w.diesel,
        **{k: v(a.w) for k, v in request.items()}}]})


def sensor_spec(warehouse: str, w: World, gauge: bool) -> dict:
    """A diesel tank gauge or a cold-chain probe at ``warehouse``."""
    if gauge:
        return {"warehouse": warehouse, "kind": "tank_level", "material": w.diesel, "unit": "L", "tolerance_minutes": 30}
    return {"warehouse": warehouse, "kind": "temperature", "storage_class": "cold_chain", "unit": "C",
            "band": {"min": "2", "max": "8"}, "tolerance_minutes": 30}


def readings_of(where: Callable[[World], str], gauge: bool = False) -> Build:
    """Readings of a sensor the admin registers at ``where(w)`` (A1 holds military diesel: its gauge is a
    military tank's)."""
    async def build(a: Arrange):
        code = f"AZ-S-{short()}"
        await a.put(fill(SENSOR, code), sensor_spec(where(a.w), a.w, gauge))
        return READINGS, {"readings": [{"sensor": code, "at": f"{date.today().isoformat()}T00:00:00Z", "value": "5"}]}
    return build


def sensor_put(where: Callable[[World], str], exists: bool) -> Build:
    """A gauge at ``where(w)`` PUT by the caller: one the admin registered there before, or a new one."""
    async def build(a: Arrange):
        code = f"AZ-S-{short()}"
        if exists:
            await a.put(fill(SENSOR, code), sensor_spec(where(a.w), a.w, gauge=True))
        return fill(SENSOR, code), {**sensor_spec(where(a.w), a.w, gauge=True), "tolerance_minutes": 1}
    return build


async def _fresh_principal(a: Arrange) -> str:
    name = f"az-existing-{short()}"
    await a.make_token("planner", name=name, regions=[a.w.district_a])
    return name


async def _same_rule(a: Arrange, code: str) -> dict:
    """A rule's body as it stands: a refused edit that went through would change nothing for other tests."""
    rules = (await a.client.get("/api/v1/allocation-rules", headers=a.admin)).json()["items"]
    rule = next(r for r in rules if r["code"] == code)
    return {k: rule[k] for k in ("level", "category", "requester_sector", "owner_sector", "allowed", "floor_ratio",
                                 "preference_cost", "approval_required", "obligation", "note")}


def put_fresh(kind: str, make: Callable[[World, str], dict], change: Callable[[World, dict], dict]) -> Build:
    """PUT on a fresh master-data object the admin made (``make``), changed by ``change``."""
    async def build(a: Arrange):
        code = f"AZ-{kind[:3].upper()}-{short()}"
        body = make(a.w, code)
        await a.put(f"/api/v1/{kind}/{code}", body)
        return f"/api/v1/{kind}/{code}", change(a.w, dict(body))
    return build


QUARANTINE = {"status": "quarantine", "reason": "authority matrix"}
EXTEND = {"test_reference": "QT-MATRIX", "result": "pass", "new_expires_on": "2030-03-01"}
FAIL = {"test_reference": "QT-MATRIX", "result": "fail"}
IN_B1 = lambda w: (w.wh_b1, w.civ)  # noqa: E731
MIL_IN_A1 = lambda w: (w.wh_a1, w.mil)  # noqa: E731
OWN_DISTRICT = lambda w: {"region": w.district_a}  # noqa: E731

CASES: list[Case] = [
    # -- movements out of scope: a cleared operator of districts A/E in region B's depot ---------------
    Case("receipt into another region's depot", "POST", MOVEMENTS, "opA_c", mv(lambda w: {
        "kind": "receipt", "warehouse": w.wh_b1, "material": w.diesel, "owner": w.civ, "quantity": "5",
        "lot": {"code": "CIV-B", "expires_on": "2030-01-01"}})),
    Case("issue by warehouse in another region", "POST", MOVEMENTS, "opA_c", mv(lambda w: {
        "kind": "issue", "warehouse": w.wh_b1, "material": w.diesel, "owner": w.civ, "quantity": "5"})),
    Case("issue of another region's lot", "POST", MOVEMENTS, "opA_c", mv(lambda w: {
        "kind": "issue", "lot_id": w["CIV-B"], "owner": w.civ, "quantity": "5"})),
    Case("adjustment of another region's lot", "POST", MOVEMENTS, "opA_c", mv(lambda w: {
        "kind": "adjustment", "lot_id": w["CIV-B"], "owner": w.civ, "counted": "1"})),
    Case("write-off of another region's lot", "POST", MOVEMENTS, "opA_c", mv(lambda w: {
        "kind": "write_off", "lot_id": w["CIV-B"], "owner": w.civ, "quantity": "5"})),
    Case("ownership transfer in another region's lot", "POST", MOVEMENTS, "opA_c", mv(lambda w: {
        "kind": "ownership_transfer", "lot_id": w["CIV-B"], "from_owner": w.civ, "to_owner": w.mil, "quantity": "5"})),
    Case("reversal of another region's receipt", "POST", MOVEMENTS, "opA_c", mv(lambda w: {
        "kind": "reversal", "movement_id": w["REV-B"]})),
    Case("rotation_in into own depot carrying another region's order", "POST", MOVEMENTS, "opA_c",
         rotation_in(IN_B1, lambda w: w.civ), HIDDEN),
    Case("rotation_out of an own lot carrying another region's order", "POST", MOVEMENTS, "opA_c",
         rotation_out(IN_B1, lot_of_order=False), HIDDEN),
    Case("rotation_out of another region's lot with its order", "POST", MOVEMENTS, "opA_c",
         rotation_out(IN_B1, lot_of_order=True), HIDDEN),
    Case("rotation_in into one own depot carrying the order of another own depot", "POST", MOVEMENTS, "opA_c",
         rotation_in(lambda w: (w.wh_a2, w.civ), lambda w: w.civ), REFUSED),
    Case("atomic batch in another region", "POST", BATCH, "opA_c", lambda a: (BATCH, {"atomic": True, "movements": [
        {"kind": "issue", "lot_id": a.w["CIV-B"], "owner": a.w.civ, "quantity": "5"}]})),
    Case("non-atomic batch in another region", "POST", BATCH, "opA_c", lambda a: (BATCH, {"atomic": False, "movements": [
        {"kind": "issue", "lot_id": a.w["CIV-B"], "owner": a.w.civ, "quantity": "5"}]})),
    # -- movements on military positions by an uncleared operator of its own depots ------------------
    Case("receipt to a military owner, uncleared", "POST", MOVEMENTS, "opA", mv(lambda w: {
        "kind": "receipt", "warehouse": w.wh_a1, "material": w.diesel, "owner": w.mil, "quantity": "5",
        "lot": {"code": "MIL-A", "expires_on": "2030-01-01"}})),
    Case("issue of military stock by warehouse, uncleared", "POST", MOVEMENTS, "opA", mv(lambda w: {
        "kind": "issue", "warehouse": w.wh_a1, "material": w.diesel, "owner": w.mil, "quantity": "5"})),
    Case("issue of a military lot, uncleared", "POST", MOVEMENTS, "opA", mv(lambda w: {
        "kind": "issue", "lot_id": w["MIL-A"], "owner": w.mil, "quantity": "5"}), HIDDEN),
    Case("adjustment of a military share, uncleared", "POST", MOVEMENTS, "opA", mv(lambda w: {
        "kind": "adjustment", "lot_id": w["JOINT-A"], "owner": w.mil, "counted": "1"})),
    Case("write-off of a military share, uncleared", "POST", MOVEMENTS, "opA", mv(lambda w: {
        "kind": "write_off", "lot_id": w["JOINT-A"], "owner": w.mil, "quantity": "5"})),
    Case("title from the military, uncleared", "POST", MOVEMENTS, "opA", mv(lambda w: {
        "kind": "ownership_transfer", "lot_id": w["JOINT-A"], "from_owner": w.mil, "to_owner": w.civ, "quantity": "5"})),
    Case("title to the military, uncleared", "POST", MOVEMENTS, "opA", mv(lambda w: {
        "kind": "ownership_transfer", "lot_id": w["JOINT-A"], "from_owner": w.civ, "to_owner": w.mil, "quantity": "5"})),
    Case("reversal of a military receipt, uncleared", "POST", MOVEMENTS, "opA", mv(lambda w: {
        "kind": "reversal", "movement_id": w["REV-MIL"]})),
    Case("rotation_out of a military lot with its order, uncleared", "POST", MOVEMENTS, "opA",
         rotation_out(MIL_IN_A1, lot_of_order=True), HIDDEN),
    Case("rotation_in to a military order as its owner, uncleared", "POST", MOVEMENTS, "opA",
         rotation_in(MIL_IN_A1, lambda w: w.mil), HIDDEN),
    Case("rotation_in to a military order as a civil owner, uncleared", "POST", MOVEMENTS, "opA",
         rotation_in(MIL_IN_A1, lambda w: w.civ), HIDDEN),
    Case("batch with a military issue, uncleared", "POST", BATCH, "opA", lambda a: (BATCH, {"atomic": True, "movements": [
        {"kind": "issue", "lot_id": a.w["MIL-A"], "owner": a.w.mil, "quantity": "5"}]}), HIDDEN),
    # -- transfers ------------------------------------------------------------------------------------
    Case("transfer out of another region's depot", "POST", TRANSFERS, "opA_c", lambda a: (TRANSFERS, {
        "from_warehouse": a.w.wh_b1, "to_warehouse": a.w.wh_a1,
        "lines": [{"lot_id": a.w["CIV-B"], "owner": a.w.civ, "quantity": "5"}]})),
    Case("transfer of military stock, uncleared", "POST", TRANSFERS, "opA", lambda a: (TRANSFERS, {
        "from_warehouse": a.w.wh_a1, "to_warehouse": a.w.wh_a2,
        "lines": [{"lot_id": a.w["JOINT-A"], "owner": a.w.mil, "quantity": "5"}]})),
    Case("receipt of a transfer inside another region", "POST", TRANSFER_RECEIPT, "opA_c",
         lambda a: (fill(TRANSFER_RECEIPT, a.w["TR-B"]), {})),
    Case("receipt of an own dispatch at another region's depot", "POST", TRANSFER_RECEIPT, "opA_c",
         lambda a: (fill(TRANSFER_RECEIPT, a.w["TR-A-TO-B"]), {})),
    Case("receipt of military stock in transit, uncleared", "POST", TRANSFER_RECEIPT, "opA",
         lambda a: (fill(TRANSFER_RECEIPT, a.w["TR-MIL"]), {})),
    # -- lots -----------------------------------------------------------------------------------------
    Case("status of another region's lot", "POST", LOT_STATUS, "opA_c", on_lot(LOT_STATUS, QUARANTINE, IN_B1)),
    Case("status of a lot holding a military share, uncleared", "POST", LOT_STATUS, "opA",
         on_lot(LOT_STATUS, QUARANTINE, MIL_IN_A1, also_civil=True)),
    Case("status of a military lot, uncleared", "POST", LOT_STATUS, "opA", on_lot(LOT_STATUS, QUARANTINE, MIL_IN_A1)),
    Case("shelf-life extension of another region's lot, operator", "POST", SHELF, "opA_c",
         on_lot(SHELF, EXTEND, IN_B1)),
    Case("shelf-life extension of another region's lot, planner", "POST", SHELF, "plA_c",
         on_lot(SHELF, EXTEND, IN_B1)),
    Case("shelf-life extension of a lot holding a military share, uncleared", "POST", SHELF, "opA",
         on_lot(SHELF, EXTEND, MIL_IN_A1, also_civil=True)),
    Case("shelf-life failure of a military lot, uncleared planner", "POST", SHELF, "plA",
         on_lot(SHELF, FAIL, MIL_IN_A1)),
    # -- reserve targets: the takeover, judged on the target as it is now -----------------------------
    Case("takeover of the parent region's target", "PUT", TARGET, "plA",
         takeover(lambda w: {"region": w.region_a}, sector=lambda w: "civilian")),
    Case("takeover of the parent region's target, cleared", "PUT", TARGET, "plA_c",
         takeover(lambda w: {"region": w.region_a}, sector=lambda w: "civilian")),
    Case("takeover of a national target", "PUT", TARGET, "plA",
         takeover(lambda w: {"region": "TEST-NATION"}, sector=lambda w: "civilian")),
    Case("takeover of another region's target", "PUT", TARGET, "plA",
         takeover(lambda w: {"region": w.region_b}, sector=lambda w: "civilian")),
    Case("takeover of another region's target, cleared", "PUT", TARGET, "plA_c",
         takeover(lambda w: {"region": w.region_b}, sector=lambda w: "civilian")),
    Case("takeover of a depot target in another region, cleared", "PUT", TARGET, "plA_c",
         takeover(lambda w: {"warehouse": w.wh_b1}, owner=lambda w: w.civ)),
    Case("takeover of a military-sector target in own district, uncleared", "PUT", TARGET, "plA",
         takeover(OWN_DISTRICT, sector=lambda w: "military")),
    Case("takeover of a military owner's target in own district, uncleared", "PUT", TARGET, "plA",
         takeover(OWN_DISTRICT, owner=lambda w: w.mil)),
    Case("takeover of a national military target", "PUT", TARGET, "plA",
         takeover(lambda w: {"region": "TEST-NATION"}, owner=lambda w: w.mil)),
    Case("takeover of a national military target, cleared", "PUT", TARGET, "plA_c",
         takeover(lambda w: {"region": "TEST-NATION"}, owner=lambda w: w.mil)),
    Case("takeover of an every-owner target at an own joint depot, uncleared", "PUT", TARGET, "plA",
         takeover(lambda w: {"warehouse": w.wh_a1})),
    Case("new target in another region", "PUT", TARGET, "plA_c",
         new_target(scope=lambda w: {"region": w.region_b}, sector=lambda w: "civilian")),
    Case("new target over the parent region", "PUT", TARGET, "plA_c",
         new_target(scope=lambda w: {"region": w.region_a}, sector=lambda w: "civilian")),
    Case("new target for a military owner, uncleared", "PUT", TARGET, "plA",
         new_target(scope=OWN_DISTRICT, owner=lambda w: w.mil)),
    Case("new target for the military sector, uncleared", "PUT", TARGET, "plA",
         new_target(scope=OWN_DISTRICT, sector=lambda w: "military")),
    Case("new every-owner target at an own joint depot, uncleared", "PUT", TARGET, "plA",
         new_target(scope=lambda w: {"warehouse": w.wh_a1})),
    # -- rotation -------------------------------------------------------------------------------------
    Case("cancel another region's rotation order", "POST", ORDER_CANCEL, "plA_c",
         on(ORDER_CANCEL, lambda a: a.order(a.w.wh_b1, a.w.civ), {"reason": "authority matrix"})),
    Case("cancel a military rotation order, uncleared", "POST", ORDER_CANCEL, "plA",
         on(ORDER_CANCEL, lambda a: a.order(a.w.wh_a1, a.w.mil), {"reason": "authority matrix"})),
    Case("national rotation policy replaced by a district planner", "PUT", POLICY, "plA",
         put_fresh("rotation-policies", lambda w, code: {"material": w.diesel, "trigger_days_before_expiry": 90},
                   lambda w, body: {**body, "max_out_share": 1})),
    # -- alerts ---------------------------------------------------------------------------------------
    Case("acknowledge another region's alert", "POST", ACK, "plA_c",
         on(ACK, lambda a: a.alert(a.w.wh_b1, a.w.civ), {"note": "authority matrix"})),
    Case("acknowledge a military alert, uncleared", "POST", ACK, "opA",
         on(ACK, lambda a: a.alert(a.w.wh_a1, a.w.mil), {"note": "authority matrix"})),
    # -- allocation requests, plans, drills -----------------------------------------------------------
    Case("request for another region's depot", "POST", "/api/v1/allocation-requests", "plA_c", lambda a: (
        "/api/v1/allocation-requests", {"requester": a.w.civ, "destination": a.w.wh_b2, "material": a.w.diesel,
                                        "quantity": "5", "priority": "routine", "needed_by": SOON})),
    Case("request by a military requester, uncleared", "POST", "/api/v1/allocation-requests", "plA", lambda a: (
        "/api/v1/allocation-requests", {"requester": a.w.mil, "destination": a.w.wh_a2, "material": a.w.diesel,
                                        "quantity": "5", "priority": "routine", "needed_by": SOON})),
    Case("cancel another region's request", "POST", REQUEST + "/cancel", "plA_c",
         on(REQUEST + "/cancel", lambda a: a.request(a.w.wh_b2, a.w.diesel, "5"))),
    Case("cancel a military requester's request, uncleared", "POST", REQUEST + "/cancel", "plA",
         on(REQUEST + "/cancel", lambda a: a.request(a.w.wh_a2, a.w.diesel, "5", requester=a.w.mil))),
    Case("plan another region", "POST", "/api/v1/allocation-plans", "plA_c",
         lambda a: ("/api/v1/allocation-plans", {"region": a.w.region_b})),
    Case("plan another region's request by id", "POST", "/api/v1/allocation-plans", "plA_c", lambda a: _plan_by_id(a),
         HIDDEN),
    Case("approve another region's plan", "POST", PLAN + "/approve", "plA_c",
         on(PLAN + "/approve", lambda a: a.plan_in_b())),
    Case("approve a plan of military stock, uncleared", "POST", PLAN + "/approve", "plA",
         on(PLAN + "/approve", lambda a: a.plan_of_military_stock())),
    Case("cancel another region's proposed plan", "POST", PLAN + "/cancel", "plA_c",
         on(PLAN + "/cancel", lambda a: a.plan_in_b(), {"reason": "authority matrix"})),
    Case("cancel another region's approved plan", "POST", PLAN + "/cancel", "plA_c",
         on(PLAN + "/cancel", lambda a: a.plan_in_b(approve=True), {"reason": "authority matrix"})),
    Case("cancel an approved plan reserving military stock, uncleared", "POST", PLAN + "/cancel", "plA",
         on(PLAN + "/cancel", lambda a: a.plan_of_military_stock(approve=True), {"reason": "authority matrix"})),
    Case("dispatch another region's plan, planner", "POST", PLAN + "/dispatch", "plA_c",
         on(PLAN + "/dispatch", lambda a: a.plan_in_b(approve=True))),
    Case("dispatch another region's plan, operator", "POST", PLAN + "/dispatch", "opA_c",
         on(PLAN + "/dispatch", lambda a: a.plan_in_b(approve=True))),
    Case("dispatch a plan of military stock, uncleared", "POST", PLAN + "/dispatch", "opA",
         on(PLAN + "/dispatch", lambda a: a.plan_of_military_stock(approve=True))),
    Case("drill for another region's depot", "POST", "/api/v1/drills", "plA_c",
         drill(requester=lambda w: w.civ, destination=lambda w: w.wh_b2)),
    Case("drill for a military requester, uncleared", "POST", "/api/v1/drills", "plA",
         drill(requester=lambda w: w.mil, destination=lambda w: w.wh_a2)),
    # -- obligations: a loan is settled only by the movement that repaid it --------------------------
    Case("settle citing the old receipt to the creditor", "POST", SETTLE, "opA_c",
         settle_citing(lambda w: w["VAX-MIL:receipt"]), REFUSED),
    Case("settle citing the creditor's own transfer before the loan", "POST", SETTLE, "opA_c",
         settle_citing(lambda w: w["OWN-TRANSFER-BEFORE"]), REFUSED),
    Case("settle citing a movement of another material", "POST", SETTLE, "opA_c",
         settle_citing(lambda w: w["AFTER-OTHER-MATERIAL"]), REFUSED),
    Case("settle citing a receipt to the debtor", "POST", SETTLE, "opA_c",
         settle_citing(lambda w: w["AFTER-TO-DEBTOR"]), REFUSED),
    Case("settle citing a movement already cited", "POST", SETTLE, "opA_c",
         settle_citing(lambda w: w["REPAID-CITED"]), REFUSED),
    Case("settle another region's loan", "POST", SETTLE, "opB_c", settle_with_fresh_repayment()),
    Case("settle a loan of military stock, uncleared", "POST", SETTLE, "opA", settle_with_fresh_repayment()),
    # -- mobilisation potential ----------------------------------------------------------------------
    Case("capacity of another region surveyed by a planner", "PUT", CAPACITY, "plA_c",
         lambda a: _capacity_put(a, a.w.region_b, a.w.region_b)),
    Case("capacity moved into own district by a planner", "PUT", CAPACITY, "plA_c",
         lambda a: _capacity_put(a, a.w.region_b, a.w.district_a)),
    Case("capacity created in another region by a planner", "PUT", CAPACITY, "plA_c",
         lambda a: _capacity_put(a, None, a.w.region_b)),
    Case("military capacity surveyed by an uncleared planner", "PUT", CAPACITY, "plA",
         lambda a: _capacity_put(a, a.w.district_a, a.w.district_a, held_for="military")),
    Case("capacity made military by an uncleared planner", "PUT", CAPACITY, "plA",
         lambda a: _capacity_put(a, a.w.district_a, a.w.district_a, becomes="military")),
    Case("capacity surveyed by an operator", "PUT", CAPACITY, "opA_c",
         lambda a: _capacity_put(a, a.w.district_a, a.w.district_a)),
    Case("tasking receipt at another region's depot", "POST", TASKING_RECEIPT, "opA_c",
         on(TASKING_RECEIPT, lambda a: a.tasking(a.w.region_b, a.w.wh_b2), {"movement_id": str(uuid.uuid4())})),
    Case("tasking receipt for a military capacity, uncleared", "POST", TASKING_RECEIPT, "opA",
         on(TASKING_RECEIPT, lambda a: a.tasking(a.w.district_a, a.w.wh_a2, "military"),
            {"movement_id": str(uuid.uuid4())})),
    Case("tasking receipt by a planner", "POST", TASKING_RECEIPT, "plA_c",
         on(TASKING_RECEIPT, lambda a: a.tasking(a.w.district_a, a.w.wh_a2), {"movement_id": str(uuid.uuid4())})),
    # -- readiness, rules -----------------------------------------------------------------------------
    Case("declaration by an admin", "POST", DECLARATIONS, "admin",
         lambda a: (DECLARATIONS, {"region": a.w.region_b, "level": "emergency", "reason": "authority matrix"})),
    Case("declaration by a planner", "POST", DECLARATIONS, "plA_c",
         lambda a: (DECLARATIONS, {"region": a.w.district_a, "level": "emergency", "reason": "authority matrix"})),
    Case("wartime confirmed by its own declarer", "POST", DECLARATIONS + "/{declaration_id}/confirm", "cmd1",
         on(DECLARATIONS + "/{declaration_id}/confirm", lambda a: a.pending_wartime())),
    Case("wartime confirmed by an admin", "POST", DECLARATIONS + "/{declaration_id}/confirm", "admin",
         on(DECLARATIONS + "/{declaration_id}/confirm", lambda a: a.pending_wartime())),
    Case("wartime withdrawn by a planner", "POST", DECLARATIONS + "/{declaration_id}/withdraw", "plA_c",
         on(DECLARATIONS + "/{declaration_id}/withdraw", lambda a: a.pending_wartime())),
    Case("rule edit by a commander", "PUT", RULE, "cmd1",
         lambda a: _rule_edit(a, "EME-CIV-MIL-MED")),
    Case("rule edit by a planner", "PUT", RULE, "plA_c",
         lambda a: _rule_edit(a, "EME-CIV-MIL-FOOD")),
    # -- sensors: readings are answered each on its own (200 with every one refused, nothing stored) ---
    Case("readings of another region's sensor, device", "POST", READINGS, "sensA", readings_of(lambda w: w.wh_b1)),
    Case("readings of another region's sensor, operator", "POST", READINGS, "opA_c", readings_of(lambda w: w.wh_b1)),
    Case("readings of a military tank's gauge, uncleared device", "POST", READINGS, "sensA",
         readings_of(lambda w: w.wh_a1, gauge=True)),
    Case("military tank's gauge replaced by an uncleared admin", "PUT", SENSOR, "admin_u",
         sensor_put(lambda w: w.wh_a1, exists=True)),
    Case("new gauge in a military tank by an uncleared admin", "PUT", SENSOR, "admin_u",
         sensor_put(lambda w: w.wh_a1, exists=False)),
    # -- tokens ---------------------------------------------------------------------------------------
    Case("token minted by a planner for itself", "POST", TOKENS, "plA_c", lambda a: (
        TOKENS, {"principal": a.w.names["plA_c"], "roles": ["admin"], "clearance": "military"})),
    Case("token revoked by an operator", "POST", TOKENS + "/{token_id}/revoke", "opA_c",
         on(TOKENS + "/{token_id}/revoke", lambda a: _fresh_token_id(a), {"reason": "authority matrix"})),
    Case("military clearance granted by an uncleared admin", "POST", TOKENS, "admin_u", lambda a: (
        TOKENS, {"principal": f"az-new-{short()}", "roles": ["auditor"], "clearance": "military"})),
    Case("existing principal silently widened by a new token", "POST", TOKENS, "admin",
         lambda a: _widen(a), REFUSED),
    # -- master data ----------------------------------------------------------------------------------
    Case("military party declassified by an uncleared admin", "PUT", "/api/v1/parties/{code}", "admin_u",
         put_fresh("parties", lambda w, code: {"name": "Unit", "sector": "military", "parent": None},
                   lambda w, body: {**body, "sector": "civilian"})),
    Case("region moved under own district by a planner", "PUT", "/api/v1/regions/{code}", "plA_c",
         put_fresh("regions", lambda w, code: {"name": "Fresh", "parent": w.region_b},
                   lambda w, body: {**body, "parent": w.district_a})),
    Case("depot of another region moved into own district by a planner", "PUT", "/api/v1/warehouses/{code}", "plA_c",
         put_fresh("warehouses", lambda w, code: {"name": "Fresh", "operator": w.civ, "region": w.region_b,
                                                  "kind": "joint", "latitude": 65.2, "longitude": 25.7},
                   lambda w, body: {**body, "region": w.district_a})),
    Case("material redefined by an operator", "PUT", "/api/v1/materials/{code}", "opA_c",
         put_fresh("materials", lambda w, code: {"name": "Fresh", "category": "fuel", "unit": "L", "decimals": 1},
                   lambda w, body: {**body, "decimals": 0})),
]


async def _plan_by_id(a: Arrange) -> tuple[str, dict]:
    return "/api/v1/allocation-plans", {"request_ids": [await a.request(a.w.wh_b2, a.w.diesel, "5")]}


async def _capacity_put(a: Arrange, now_in: str | None, into: str, held_for: str | None = None,
                        becomes: str | None = None) -> tuple[str, dict]:
    """A PUT of a capacity the admin surveyed in ``now_in`` (None: a new code), delivering ``into``."""
    code = f"AZ-CAP-NEW-{short()}" if now_in is None else await a.capacity(now_in, held_for)
    return fill(CAPACITY, code), {"party": a.w.civ, "material": a.w.diesel, "daily_quantity": "1", "lead_days": 0,
                                  "region": into, "held_for": becomes, "surveyed_on": date.today().isoformat(),
                                  "survey_interval_days": 30}


async def _rule_edit(a: Arrange, code: str) -> tuple[str, dict]:
    return fill(RULE, code), await _same_rule(a, code)


async def _fresh_token_id(a: Arrange) -> str:
    name = await _fresh_principal(a)
    return str(await a.pg_pool.fetchval(
        "SELECT t.id FROM api_tokens t JOIN principals p ON p.id = t.principal_id WHERE p.name = $1", name))


async def _widen(a: Arrange) -> tuple[str, dict]:
    """A token asked for an existing district planner, with admin and clearance it does not hold."""
    return TOKENS, {"principal": await _fresh_principal(a), "roles": ["planner", "admin"], "clearance": "military"}


assert len({c.name for c in CASES}) == len(CASES), "case names are unique"


# -- fixtures --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def arrange(client, pg_pool, make_token, admin, operator, root_region):
    uid = short()
    w = World(uid=uid, region_a=f"AZ-RA-{uid}", district_a=f"AZ-DA-{uid}", district_e=f"AZ-DE-{uid}",
              region_b=f"AZ-RB-{uid}", wh_a1=f"AZ-WA1-{uid}", wh_a2=f"AZ-WA2-{uid}", wh_e1=f"AZ-WE1-{uid}",
              wh_e2=f"AZ-WE2-{uid}", wh_b1=f"AZ-WB1-{uid}", wh_b2=f"AZ-WB2-{uid}", mil=f"AZ-MIL-{uid}",
              civ=f"AZ-CIV-{uid}", diesel=f"AZ-DSL-{uid}", vaccine=f"AZ-VAX-{uid}", policy=f"AZ-ROT-{uid}")
    a = Arrange(w, client, pg_pool, make_token, admin, operator)
    await build_world(a)
    yield a
    # No level left behind on the shared test nation: district E back to peacetime, nothing pending.
    await client.post(DECLARATIONS, headers=w.headers["cmd2"],
                      json={"region": w.district_e, "level": "peacetime", "reason": "authority matrix done"})
    for declaration in a.pending:
        await client.post(f"{DECLARATIONS}/{declaration}/withdraw", headers=w.headers["cmd2"])


@pytest.fixture(scope="module")
async def tables(pg_pool, arrange):
    return await _tables(pg_pool)


# -- the tests -------------------------------------------------------------------------------------

async def test_every_write_route_has_a_case(client):
    """A write route the served document lists without a case here fails: a new route gets a decision."""
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    routes = {(method.upper(), path) for path, item in r.json()["paths"].items() if path.startswith("/api/v1/")
              for method in item if method in WRITE_METHODS}
    covered = {(c.method, c.route) for c in CASES}
    assert sorted(routes - covered) == [], "write routes without an authority case"
    assert sorted(covered - routes) == [], "cases for routes the document does not list"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_write_outside_the_callers_remit_is_refused_and_writes_nothing(client, pg_pool, arrange, tables, case):
    built = case.build(arrange)
    path, body = await built if inspect.isawaitable(built) else built
    since = await mark(pg_pool, tables)
    r = await client.request(case.method, path, json=body,
                             headers={**arrange.w.headers[case.principal], **idem()})
    changes = await written(pg_pool, tables, since)
    outcome = f"{case.principal} {case.method} {path} -> {r.status_code} {r.text[:400]}; written: {changes}"

    if r.status_code == 200 and case.route == BATCH and not body["atomic"]:
        # A non-atomic batch answers each item on its own, and keeps that answer for its Idempotency-Key.
        assert all(x.get("problem", {}).get("type") in DENIED.values() for x in r.json()["results"]), outcome
        changes.pop("idempotency_keys", None)
    elif r.status_code == 200 and case.route == READINGS:
        # Readings too are answered each on its own: every one refused, none stored.
        assert r.json()["accepted"] == 0 and r.json()["refused"], outcome
        assert all(x["problem"]["type"] in DENIED.values() for x in r.json()["refused"]), outcome
    else:
        assert r.status_code in case.refused, outcome
        assert r.headers["content-type"].startswith(PROBLEM), outcome
        assert r.json()["type"] == case.refused[r.status_code], outcome
    assert changes == {}, outcome
