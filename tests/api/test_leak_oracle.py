"""A leak oracle: no reader without military clearance learns anything of stock only a military owner
holds — through any route the service serves.

The canary world (``tests/canary.py``) puts a military-only material, lot, quantities, reserve
target, requests, plan, obligation, rotation orders and alerts into a joint depot beside civilian
stock. Then, for every role the service knows (``stockpile.domain.access.ROLES``), a principal
without clearance — operator and planner scoped to the joint depot's region (so they do see the
civilian stock there), the others national or unscoped — reads everything:

- every GET operation of the served OpenAPI document: detail routes filled with the canary's ids
  (with civilian ids where the canary has none of that kind), lists with their filters set to the
  canary (material, warehouse, owner, region, …) and without, ``Accept: text/csv`` where offered;
- ``POST /drills`` and ``POST /allocation-plans`` run by the uncleared planner (and coverage of a
  region-scoped, all-owner target it made itself): their figures are computed on what it may see;
- every write operation attempted against the canary objects (error bodies included, and the
  audit routes read again afterwards);
- ``/metrics`` with its token, and the webhook bodies an uncleared endpoint receives.

A cleared admin reads every GET first, as a control: each must answer it 200 and every canary
string must show to it somewhere, so the oracle looks where the canary really is.

Not one canary string may appear in any answer — body, header or decoded cursor — and a hidden
object must answer exactly as one that does not exist (every detail read and every write naming a
hidden id or code is sent again with one that does not exist, and the two answers compared; PUT
upserts aside, which create what does not exist). Exclusions, and why:

- Materials and parties are national reference data readable by every reader (README "Scope"):
  the canary material's code and the military parties' codes may appear on
  ``GET /materials[/{code}]`` and ``GET /parties[/{code}]`` (and in the answer to an admin's
  ``PUT`` of them) — nowhere else.
- What a request names itself (an id in its path, a code in its filter) may be echoed in its answer.
- An answer that names an object an uncleared reader made itself (its own target, request, plan,
  drill) may name the canary material — that object's material; every figure in it is still checked.

The test also fails when the OpenAPI document and the oracle's list of operations differ, or a
parameter is one it cannot fill: a new route must be added here, so that it is walked. Every
sighting is reported with the role, the route, the canary and where in the body it showed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any, Callable

import asyncpg
from litestar.testing import AsyncTestClient

import stockpile.config
from stockpile.api.app import create_app
from stockpile.domain.access import ROLES
from stockpile.jobs.catalog import catalog
from stockpile.jobs.runs import run_slot
from stockpile.metrics import SNAPSHOT
from stockpile.store import tokens
from stockpile.store.db import Database
from stockpile.store.engine import asyncpg_dsn
from tests.canary import Canary, build, day

API = "/api/v1"


# -- what the oracle knows how to fill ----------------------------------------------------------

def path_values(k: Canary, ctx: "Context") -> dict[str, Callable[[str], list[str]]]:
    """Values of each path parameter: the canary's ids, or civilian ones where it has none."""
    codes = {f"{API}/parties/": [k.military, k.military2], f"{API}/regions/": [k.region],
             f"{API}/warehouses/": [k.joint, k.depot], f"{API}/materials/": [k.material],
             f"{API}/reserve-targets/": [k.target, ctx.own_target], f"{API}/rotation-policies/": [k.policy],
             f"{API}/allocation-rules/": [ctx.rule_code], f"{API}/capacities/": [k.capacity],
             f"{API}/sensors/": [k.gauge]}
    by_code = lambda path: next(v for prefix, v in codes.items() if path.startswith(prefix))  # noqa: E731
    return {
        "code": by_code,
        "lot_id": lambda _: [k.lot_id, k.ration_lot_id, k.shared_lot_id],
        "movement_id": lambda _: list(k.movement_ids),
        "transfer_id": lambda _: [k.transfer_id],
        "alert_id": lambda _: list(k.alert_ids),
        "obligation_id": lambda _: [k.obligation_id],
        "request_id": lambda _: [k.request_id, k.pending_request_id],
        "plan_id": lambda _: [k.plan_id, k.loan_plan_id],
        "drill_id": lambda _: [k.drill_id],
        "order_id": lambda _: list(k.order_ids) + list(k.civil_order_ids),
        "declaration_id": lambda _: [k.emergency_declaration_id],
        "token_id": lambda _: [str(ctx.spare_token_id)],
        "tasking_id": lambda _: [k.tasking_id],
    }


def query_values(k: Canary, ctx: "Context") -> dict[str, list[str]]:
    """Filters set to the canary (each alone, beside the unfiltered list); ``[]``: left unset (they
    narrow by state, kind or time, which the unfiltered list already covers)."""
    return {
        "warehouse": [k.joint, k.depot], "material": [k.material], "owner": [k.military, k.military2],
        "party": [k.military, k.military2], "region": [k.region], "category": ["medical"],
        "expiring_before": [day(60)], "due_before": [day(60)], "target": [k.lot_id, k.target, k.plan_id],
        "actor": [ctx.cleared_names["planner"], ctx.cleared_names["admin"]], "since": [f"{day(-1)}T00:00:00Z"],
        "requester": [k.military], "destination": [k.depot], "lot_id": [k.lot_id], "subject": [k.lot_id],
        "kind": [], "state": [], "priority": [], "until": [], "version": [], "principal": [],
        "action": [], "route": [], "status": [], "limit": [], "cursor": [], "Idempotency-Key": [],
        "Accept": [], "step": [], "capacity": [k.capacity],
    }


def write_bodies(k: Canary, ctx: "Context") -> dict[str, list[tuple[str, Any]]]:
    """Every write operation, aimed at the canary: [(the path, filled, and a body that would get
    past validation, so the policy — not the decoder — answers)]."""
    issue = {"kind": "issue", "warehouse": k.joint, "material": k.material, "owner": k.military,
             "quantity": "1", "lot_id": k.lot_id}
    movements = [issue, {**issue, "lot_id": None, "quantity": "40000"},  # first-expiring-first, too much
                 {"kind": "ownership_transfer", "lot_id": k.shared_lot_id, "from_owner": k.military,
                  "to_owner": k.civil, "quantity": "1"},
                 {"kind": "adjustment", "lot_id": k.shared_lot_id, "owner": k.military, "counted": "0"},
                 {"kind": "write_off", "lot_id": k.lot_id, "owner": k.military2, "quantity": "1"},
                 {"kind": "rotation_out", "lot_id": k.lot_id, "owner": k.military, "quantity": "1",
                  "rotation_order_id": k.order_ids[0]},
                 {"kind": "reversal", "movement_id": k.receipt_id},
                 {"kind": "issue", "warehouse": k.joint, "material": k.vaccine, "owner": k.civil,
                  "quantity": "50000"}]  # more than the civilian share, less than the lot: 409 naming only its own
    one = {
        f"POST {API}/movements/batch": (f"{API}/movements/batch", {"movements": [issue], "atomic": True}),
        f"POST {API}/movements/batch#each": (f"{API}/movements/batch", {"movements": movements, "atomic": False}),
        f"POST {API}/transfers": (f"{API}/transfers", {
            "from_warehouse": k.joint, "to_warehouse": k.south,
            "lines": [{"lot_id": k.lot_id, "owner": k.military, "quantity": "1"}]}),
        f"POST {API}/transfers/{{transfer_id}}/receipt": (f"{API}/transfers/{k.transfer_id}/receipt", {}),
        f"POST {API}/transfers/{{transfer_id}}/receipt#lines": (f"{API}/transfers/{k.transfer_id}/receipt", {
            "lines": [{"lot_id": k.lot_id, "owner": k.military, "received": "1"}]}),
        f"POST {API}/lots/{{lot_id}}/status": (f"{API}/lots/{k.lot_id}/status",
                                               {"status": "quarantine", "reason": "oracle"}),
        f"POST {API}/lots/{{lot_id}}/status#shared": (f"{API}/lots/{k.shared_lot_id}/status",
                                                      {"status": "recalled", "reason": "oracle"}),
        f"POST {API}/lots/{{lot_id}}/shelf-life-extensions": (f"{API}/lots/{k.lot_id}/shelf-life-extensions", {
            "test_reference": "ORACLE-1", "result": "pass", "new_expires_on": day(90)}),
        f"PUT {API}/parties/{{code}}": (f"{API}/parties/{k.military}",
                                        {"name": "Medical Command", "sector": "military", "parent": None}),
        f"PUT {API}/regions/{{code}}": (f"{API}/regions/{k.region}", {"name": f"Region {k.uid}", "parent": "TEST-NATION"}),
        f"PUT {API}/warehouses/{{code}}": (f"{API}/warehouses/{k.joint}", {
            "name": "Joint depot", "operator": k.enterprise, "region": k.region, "kind": "joint",
            "latitude": 60.1, "longitude": 24.9, "status": "active"}),
        f"PUT {API}/materials/{{code}}": (f"{API}/materials/{k.material}", {
            "name": "Burn dressing kit", "category": "medical", "unit": "kg", "decimals": 3, "shelf_life_days": 365,
            "storage_class": "ambient", "daily_consumption_per_person": "0.01"}),
        f"POST {API}/tokens": (f"{API}/tokens", {"principal": f"oracle-{uuid.uuid4().hex[:8]}", "roles": ["auditor"]}),
        f"POST {API}/tokens/{{token_id}}/revoke": (f"{API}/tokens/{ctx.spare_token_id}/revoke", {}),
        f"PUT {API}/reserve-targets/{{code}}": (f"{API}/reserve-targets/{k.target}", {
            "scope": {"region": k.region}, "material": k.material, "quantity": "1", "floor_ratio": 0}),
        f"POST {API}/alerts/{{alert_id}}/acknowledge": (f"{API}/alerts/{k.alert_ids[0]}/acknowledge", {"note": "seen"}),
        f"POST {API}/readiness/declarations": (f"{API}/readiness/declarations", {
            "region": k.region, "level": "emergency", "reason": "oracle"}),
        f"POST {API}/readiness/declarations/{{declaration_id}}/confirm": (
            f"{API}/readiness/declarations/{k.emergency_declaration_id}/confirm", {}),
        f"POST {API}/readiness/declarations/{{declaration_id}}/withdraw": (
            f"{API}/readiness/declarations/{k.emergency_declaration_id}/withdraw", {}),
        f"PUT {API}/allocation-rules/{{code}}": (f"{API}/allocation-rules/{ctx.rule_code}", {
            "level": "wartime", "allowed": False, "category": "medical", "requester_sector": "enterprise",
            "owner_sector": "military", "note": "oracle"}),
        f"POST {API}/obligations/{{obligation_id}}/settlements": (f"{API}/obligations/{k.obligation_id}/settlements", {
            "quantity": "1", "movement_id": k.receipt_id, "note": "oracle"}),
        f"POST {API}/obligations/{{obligation_id}}/settlements#requisition": (
            f"{API}/obligations/{k.obligation_id}/settlements", {"quantity": "1", "note": "oracle"}),
        f"POST {API}/allocation-requests": (f"{API}/allocation-requests", {
            "requester": k.military, "destination": k.depot, "material": k.material, "quantity": "1",
            "priority": "routine", "needed_by": day(10)}),
        f"POST {API}/allocation-requests/{{request_id}}/cancel": (
            f"{API}/allocation-requests/{k.pending_request_id}/cancel", {}),
        f"POST {API}/allocation-plans": (f"{API}/allocation-plans", {"request_ids": [k.pending_request_id]}),
        f"POST {API}/allocation-plans#region": (f"{API}/allocation-plans", {"region": k.region}),
        f"POST {API}/allocation-plans/{{plan_id}}/approve": (f"{API}/allocation-plans/{k.plan_id}/approve", {}),
        f"POST {API}/allocation-plans/{{plan_id}}/dispatch": (f"{API}/allocation-plans/{k.plan_id}/dispatch", {}),
        f"POST {API}/allocation-plans/{{plan_id}}/cancel": (f"{API}/allocation-plans/{k.plan_id}/cancel",
                                                            {"reason": "oracle"}),
        f"POST {API}/drills": (f"{API}/drills", {"name": "oracle", "include_pending": True,
                                                 "readiness": {k.region: "emergency"}}),
        f"PUT {API}/rotation-policies/{{code}}": (f"{API}/rotation-policies/{k.policy}", {
            "category": "medical", "trigger_days_before_expiry": 90, "max_out_share": "0.05", "outlet": "donation"}),
        f"POST {API}/rotation-orders/{{order_id}}/cancel": (f"{API}/rotation-orders/{k.order_ids[0]}/cancel",
                                                            {"reason": "oracle"}),
        f"PUT {API}/capacities/{{code}}": (f"{API}/capacities/{k.capacity}", {
            "party": k.enterprise, "material": k.jet, "daily_quantity": "1", "lead_days": 1, "region": k.region,
            "surveyed_on": day(0), "survey_interval_days": 365}),
        f"POST {API}/taskings/{{tasking_id}}/receipts": (f"{API}/taskings/{k.tasking_id}/receipts",
                                                         {"movement_id": k.receipt_id}),
        f"PUT {API}/sensors/{{code}}": (f"{API}/sensors/{k.gauge}", {
            "warehouse": k.joint, "kind": "tank_level", "material": k.material, "unit": "kg", "tolerance_minutes": 5}),
        f"POST {API}/sensor-readings": (f"{API}/sensor-readings", {"readings": [
            {"sensor": k.gauge, "at": f"{day(0)}T00:00:00Z", "value": "1"}]}),
    }
    writes: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for key, attempt in one.items():  # "#…": another attempt at the same operation
        writes[key.partition("#")[0]].append(attempt)
    writes[f"POST {API}/movements"] = [(f"{API}/movements", m) for m in movements]
    return dict(writes)


# The cleared admin reads everything first, as a control: each GET must answer it 200, and every
# canary secret must show somewhere to it (else the oracle looks where the canary is not).
CONTROL = "cleared control"

# Every GET operation the oracle knows how to fill (path parameters by ``path_values``, filters by
# ``query_values``) — with ``write_bodies``, the operations the served document must list, no more
# and no fewer: a new route fails the test until it is added here (and so walked).
KNOWN_GETS = {f"GET {API}/{path}" for path in (
    "alerts", "alerts/{alert_id}", "allocation-plans", "allocation-plans/{plan_id}", "allocation-requests",
    "allocation-requests/{request_id}", "allocation-rules", "audit-denials", "audit-events", "coverage", "drills",
    "drills/{drill_id}", "lots", "lots/{lot_id}", "materials", "materials/{code}", "movements", "movements/{movement_id}",
    "obligations", "obligations/{obligation_id}", "parties", "parties/{code}", "readiness", "readiness/declarations",
    "readiness/declarations/{declaration_id}", "regions", "regions/{code}", "reserve-targets", "reserve-targets/{code}",
    "rotation-orders", "rotation-orders/{order_id}", "rotation-policies", "rotation-policies/{code}", "stock",
    "tokens", "transfers", "transfers/{transfer_id}", "warehouses", "warehouses/{code}",
    "capacities", "capacities/{code}", "potential", "taskings", "taskings/{tasking_id}",
    "sensors", "sensors/{code}", "sensors/{code}/readings",
)} | {"GET /health/live", "GET /health/ready"}  # the health routes take no parameter: read as they are


# -- the readers and the checking ----------------------------------------------------------------

@dataclass
class Leak:
    role: str
    route: str  # method and path template
    request: str  # what was sent
    status: int
    secret: str
    where: str  # a JSON path, or a line of a text body


@dataclass
class Context:
    own_target: str = ""
    rule_code: str = ""
    spare_token_id: int = 0
    cleared_names: dict[str, str] = field(default_factory=dict)
    own: set[str] = field(default_factory=set)  # ids and codes of objects uncleared readers made themselves
    leaks: list[Leak] = field(default_factory=list)
    unwalked: list[str] = field(default_factory=list)
    accepted_writes: list[str] = field(default_factory=list)  # 2xx to an uncleared reader's write
    seen: set[str] = field(default_factory=set)  # secrets the cleared control reader found
    twins: dict[str, str] = field(default_factory=dict)  # each hidden id or code → one that does not exist
    requests: int = 0


def _leaves(value: Any, path: str = "$"):
    """(JSON path, text) of every leaf of a JSON value, object keys included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
            yield f"{path}.{key} (key)", str(key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    elif value is not None:
        yield path, value if isinstance(value, str) else json.dumps(value)


def _paths_of(value: Any, marks: Callable[[str], bool], path: str = "$", inside: bool = False) -> set[str]:
    """JSON paths of the objects (and everything under them) with a string member ``marks`` picks."""
    found: set[str] = set()
    if isinstance(value, dict):
        inside = inside or any(isinstance(v, str) and marks(v) for v in value.values())
        if inside:
            found.add(path)
        for key, item in value.items():
            found |= _paths_of(item, marks, f"{path}.{key}", inside)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found |= _paths_of(item, marks, f"{path}[{i}]", inside)
    return found


def _under(where: str, paths: set[str]) -> bool:
    return any(where == p or where.startswith((p + ".", p + "[")) for p in paths)


# An audit event of a master-data write names the material or party written: reference data.
REFERENCE_WRITE = re.compile(rf"^(PUT|GET) {API}/(materials|parties)/")


def check(ctx: Context, k: Canary, role: str, route: str, sent: str, response, *, reference: bool = False) -> None:
    """Record every canary string in ``response``'s body and headers (see the module docstring for
    what is allowed)."""
    text = response.text
    if role == CONTROL:  # the cleared reader: the canary must be where the oracle looks, every route must answer
        ctx.seen |= {s.what for s in k.secrets if s.pattern.search(text)}
        if response.status_code != 200:
            ctx.unwalked.append(f"{route}: the cleared control reader got {response.status_code} for {sent} "
                                f"(the oracle fills it wrongly): {text[:160]}")
        return
    reference_codes = {s.what for s in k.secrets if any(s.pattern.fullmatch(c) for c in k.reference_codes)}
    own_material = {s.what for s in k.secrets if s.pattern.fullmatch(k.material)}
    allowed = {s.what for s in k.secrets if s.pattern.search(sent)}  # the request named it
    # A Location, an ETag … — not the length, the date, or the request id (the caller's own, or a
    # random UUID minted for the request: its hex digits can spell any figure by chance).
    headers = {name: value for name, value in getattr(response, "headers", {}).items()
               if name.lower() not in ("content-length", "date", "x-request-id")}
    in_headers = "\n".join(headers.values())
    for secret in (s for s in k.secrets if s.what not in allowed and s.pattern.search(in_headers)):
        for name, value in headers.items():
            if secret.pattern.search(value):
                ctx.leaks.append(Leak(role, route, sent, response.status_code, secret.what, f"header {name}"))
    if reference:
        allowed |= reference_codes
    suspects = [s for s in k.secrets if s.what not in allowed and s.pattern.search(text)]
    if not suspects:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    # An answer naming an object an uncleared reader made may name that object's material: in a list,
    # within the items (CSV rows) that name one; in a single answer (a drill of its pending request), anywhere.
    mine = lambda v: any(o in v for o in ctx.own if o)  # noqa: E731
    if isinstance(body, (dict, list)):
        if isinstance(body, dict) and "items" in body:
            own_paths = _paths_of(body, mine)
        else:
            own_paths = {"$"} if mine(text) else set()
        reference_paths = _paths_of(body, lambda v: bool(REFERENCE_WRITE.match(v)))
        for where, leaf in _leaves(body):
            for secret in suspects:
                if not secret.pattern.search(leaf):
                    continue
                if secret.what in own_material and _under(where, own_paths):
                    continue
                if secret.what in reference_codes and _under(where, reference_paths):
                    continue
                ctx.leaks.append(Leak(role, route, sent, response.status_code, secret.what, where))
    else:
        for secret in suspects:
            for number, line in enumerate(text.splitlines(), 1):
                if secret.pattern.search(line) and not (secret.what in own_material and mine(line)):
                    ctx.leaks.append(Leak(role, route, sent, response.status_code, secret.what,
                                          f"line {number}: {line.strip()[:160]}"))


def _where(leak: Leak) -> str:
    return re.sub(r"\[\d+\]", "[*]", re.sub(r"^line \d+: ", "", leak.where))


def report(ctx: Context) -> str:
    """Leaks grouped by route, then by what leaked and where (list indices folded), with the roles."""
    grouped: dict[str, dict[tuple[str, str], set[str]]] = defaultdict(lambda: defaultdict(set))
    for leak in ctx.leaks:
        grouped[leak.route][(leak.secret, _where(leak))].add(f"{leak.role} {leak.status}")
    lines = []
    if ctx.unwalked:
        lines += ["operations the oracle does not walk (teach it how to fill them):", *ctx.unwalked, ""]
    lines.append(f"{len(ctx.leaks)} canary sightings on {len(grouped)} routes (route / what / where / role and status):")
    for route in sorted(grouped):
        lines.append(f"- {route}")
        for (secret, where), roles in sorted(grouped[route].items()):
            lines.append(f"    {secret} @ {where[:200]} — {', '.join(sorted(roles))}")
    if ctx.accepted_writes:
        lines += ["", "writes an uncleared reader was allowed (2xx) against the canary objects:",
                  *sorted(set(ctx.accepted_writes))]
    return "\n".join(lines)


# -- the test -------------------------------------------------------------------------------------

async def _principal(url: str, name: str, roles: list[str], clearance: str | None, regions: list[str] = (),
                     warehouses: list[str] = ()) -> tuple[str, int]:
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        async with conn.transaction():
            principal_id = await tokens.upsert_principal(conn, name, roles, clearance)
            missing = await tokens.grant(conn, principal_id, list(warehouses), list(regions))
            assert not missing, missing
            token = await tokens.issue_token(conn, principal_id, "leak oracle")
            token_id = await conn.fetchval("SELECT max(id) FROM api_tokens WHERE principal_id = $1", principal_id)
        return token, token_id
    finally:
        await conn.close()


class Capture:
    """A loopback webhook endpoint that keeps every body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            self.bodies.append(await reader.readexactly(length))
            writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook"

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        await self.server.wait_closed()


def _settings(settings, **overrides):
    known = {f.name for f in fields(settings)}
    return replace(settings, **{name: value for name, value in overrides.items() if name in known})


def _fill(template: str, params: list[dict], k: Canary, ctx: Context) -> list[str] | None:
    """Every concrete path of ``template`` with its path parameters filled (None: one is unknown)."""
    values = path_values(k, ctx)
    paths = [template]
    for p in (p for p in params if p["in"] == "path"):
        if p["name"] not in values:
            return None
        options = values[p["name"]](template)
        paths = [path.replace("{" + p["name"] + "}", v) for path in paths for v in options]
    return paths


async def test_no_uncleared_reader_learns_the_canary(make_database, settings):
    # The business-metrics snapshot is process-wide: leave it as it was for the tests after this one.
    kept = (SNAPSHOT.taken_at, SNAPSHOT.samples)
    try:
        await _walk_everything(make_database, settings)
    finally:
        SNAPSHOT.taken_at, SNAPSHOT.samples = kept


async def _walk_everything(make_database, settings) -> None:
    url = make_database()
    uid = uuid.uuid4().hex[:6].upper()
    ctx = Context(own_target=f"OWN-{uid}", rule_code=f"ORACLE-{uid}")
    capture, control = Capture(), Capture()
    async with capture as hook, control as cleared_hook:
        # An endpoint declares its clearance as ``URL|uncleared`` / ``URL|military`` (stockpile.config).
        per_endpoint = hasattr(stockpile.config, "WEBHOOK_CLEARANCES")
        hooks = (f"{hook}|uncleared", f"{cleared_hook}|military") if per_endpoint else (hook,)
        settings = _settings(settings, metrics_reload_seconds=1, metrics_public=False, rate_limit_per_second=0,
                             token_cache_seconds=0, webhook_urls=hooks, webhook_secret="oracle-" * 8,
                             address_rate_limit_per_second=1_000_000.0, address_rate_limit_burst=1_000_000,
                             address_failure_limit_per_minute=1_000_000)
        dsn, kwargs = asyncpg_dsn(url)
        conn = await asyncpg.connect(dsn, **kwargs)
        try:  # the region the cleared operator and planner are granted (as tests/conftest.root_region)
            await conn.execute("INSERT INTO regions (code, name) VALUES ('TEST-NATION', 'Test nation')")
        finally:
            await conn.close()
        cleared = {}
        for role, roles in (("admin", ["admin", "operator"]), ("operator", ["operator"]), ("planner", ["planner"]),
                            ("commander", ["commander"])):
            name = f"cleared-{role}-{uid}"
            token, _ = await _principal(url, name, roles, "military",
                                        regions=["TEST-NATION"] if role in ("operator", "planner") else [])
            cleared[role] = {"Authorization": f"Bearer {token}"}
            ctx.cleared_names[role] = name
        _, ctx.spare_token_id = await _principal(url, f"spare-{uid}", ["auditor"], None)

        async with AsyncTestClient(app=create_app(settings, url)) as client:
            k = await build(client, url, admin=cleared["admin"], operator=cleared["operator"],
                            planner=cleared["planner"], commander=cleared["commander"], uid=uid, settings=settings)
            ctx.twins = {hidden: str(uuid.uuid4()) for hidden in (
                k.lot_id, k.transfer_id, k.plan_id, k.request_id, k.pending_request_id, k.obligation_id,
                *k.order_ids, *k.alert_ids, *k.movement_ids, k.tasking_id)}
            ctx.twins |= {k.target: f"NONE-{uid}", k.shared_target: f"NOTHING-{uid}", k.capacity: f"NOCAP-{uid}",
                          k.gauge: f"NOGAUGE-{uid}"}
            readers = {}
            for role in ROLES:  # every role the service knows, none cleared
                scoped = {"regions": [k.region]} if role in ("operator", "planner") else (
                    {"warehouses": [k.joint]} if role == "sensor" else {})
                token, _ = await _principal(url, f"uncleared-{role}-{uid}", [role], None, **scoped)
                readers[role] = {"Authorization": f"Bearer {token}"}
            await _own_objects(client, url, settings, k, ctx, readers.get("planner"))

            doc = (await client.get("/schema/openapi.json")).json()
            operations = {(method.upper(), path): op for path, ops in doc["paths"].items()
                          for method, op in ops.items() if method in ("get", "put", "post", "patch", "delete")}
            writes = write_bodies(k, ctx)
            known_queries = query_values(k, ctx)
            for (method, path), op in sorted(operations.items()):
                key = f"{method} {path}"
                unknown = [p["name"] for p in op.get("parameters", [])
                           if p["in"] in ("query", "header") and p["name"] not in known_queries]
                unknown += [p["name"] for p in op.get("parameters", [])
                            if p["in"] == "path" and p["name"] not in path_values(k, ctx)]
                if unknown:
                    ctx.unwalked.append(f"{key}: parameters the oracle cannot fill: {unknown}")
            listed = {f"{method} {path}" for method, path in operations}
            known = KNOWN_GETS | set(writes)
            ctx.unwalked += [f"{key}: served, and not known to the oracle" for key in sorted(listed - known)]
            ctx.unwalked += [f"{key}: known to the oracle, and no longer served" for key in sorted(known - listed)]

            await _read_everything(client, k, ctx, CONTROL, cleared["admin"], operations)
            unseen = sorted({s.what for s in k.secrets} - ctx.seen)
            if unseen:
                ctx.unwalked.append(f"canary secrets the cleared control reader found on no GET route: {unseen}")
            await asyncio.gather(*(_read_everything(client, k, ctx, role, headers, operations)
                                   for role, headers in readers.items()))
            await _metrics(client, k, ctx, readers, cleared["admin"])
            if "planner" in readers:
                await _planner_solves(client, k, ctx, readers["planner"])
            for role, headers in readers.items():
                await _attempt_writes(client, k, ctx, role, headers, operations, writes)
            audit = {key: op for key, op in operations.items() if key[0] == "GET" and key[1].startswith(f"{API}/audit")}
            await asyncio.gather(*(_read_everything(client, k, ctx, role, headers, audit)  # what the writes left
                                   for role, headers in readers.items()))
            await _webhooks(url, settings, k, ctx, capture, control if per_endpoint else None)

    assert not (ctx.unwalked or ctx.leaks), report(ctx)


async def _own_objects(client, url: str, settings, k: Canary, ctx: Context, planner: dict | None) -> None:
    """What the uncleared planner makes itself: a region-scoped, all-owner target over the canary
    material (its coverage must count only what it may see) and a civilian request for it."""
    if planner is None:
        return
    r = await client.put(f"{API}/reserve-targets/{ctx.own_target}", headers=planner, json={
        "scope": {"region": k.region}, "material": k.material, "quantity": "40000", "floor_ratio": 0.1,
        "horizon_days": 0, "population": 100})
    assert r.status_code in (200, 201), r.text
    ctx.own.add(ctx.own_target)
    r = await client.post(f"{API}/allocation-requests", headers=planner, json={
        "requester": k.civil, "destination": k.south, "material": k.material, "quantity": "40",
        "priority": "flash", "needed_by": day(10), "purpose": "burns unit"})
    assert r.status_code == 201, r.text
    ctx.own.add(r.json()["id"])
    # Alerts and metrics see it too (in shortfall whatever is counted: its alert carries figures).
    db = Database(url, pool_size=2)
    try:
        for job in ("evaluate-alerts", "refresh-metrics"):
            outcome = await run_slot(db, catalog(settings)[job], slot=-2)
            assert outcome.outcome == "ok", (job, outcome.detail)
    finally:
        await db.dispose()


async def _get(client, ctx: Context, k: Canary, role: str, route: str, path: str, headers: dict,
               params: dict | None = None, *, reference: bool = False, accept: str | None = None) -> Any:
    """GET (following cursors) and check every page; answers the last response."""
    params = dict(params or {})
    for _ in range(20):
        hdrs = {**headers, **({"Accept": accept} if accept else {})}
        r = await client.get(path, headers=hdrs, params=params)
        ctx.requests += 1
        sent = path + ("?" + "&".join(f"{a}={b}" for a, b in params.items()) if params else "") + (
            f" Accept: {accept}" if accept else "")
        check(ctx, k, role, route, sent, r, reference=reference)
        try:
            cursor = r.json().get("next_cursor") if r.status_code == 200 and not accept else None
        except (ValueError, AttributeError):
            cursor = None
        if not cursor:
            return r
        check(ctx, k, role, route, sent, _Body(_decoded(cursor).encode(), r.status_code, "(next_cursor, decoded)"),
              reference=reference)
        params["cursor"] = cursor
    return r


def _decoded(cursor: str) -> str:
    """What a cursor carries (they are base64url of a keyset position): it must name nothing hidden."""
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8", "replace")
    except ValueError:
        return cursor


def _twin(ctx: Context, text: str) -> str:
    """``text`` with every hidden id or code replaced by one that does not exist."""
    for hidden, twin in ctx.twins.items():
        text = text.replace(hidden, twin)
    return text


def _problem(response) -> tuple:
    try:
        body = response.json()
    except ValueError:
        return (response.text,)
    return (body.get("type"), body.get("title"), body.get("detail")) if isinstance(body, dict) else (body,)


def _same_as_missing(ctx: Context, role: str, route: str, sent: str, real, missing, twin: str) -> None:
    """An object the reader may not see answers as one that does not exist: the same status and
    problem (its id aside). Any difference tells the reader the hidden object is there."""
    untwinned = _problem(missing)
    for hidden, other in ctx.twins.items():
        untwinned = tuple(x.replace(other, hidden) if isinstance(x, str) else x for x in untwinned)
    if (real.status_code, _problem(real)) != (missing.status_code, untwinned):
        ctx.leaks.append(Leak(role, route, sent, real.status_code, "that a hidden object exists",
                              f"{real.status_code} {str(_problem(real))[:140]} — where a missing one gets "
                              f"{missing.status_code} {str(untwinned)[:140]}"))


async def _read_everything(client, k: Canary, ctx: Context, role: str, headers: dict, operations: dict) -> None:
    """Every GET operation as ``role``: each concrete path, unfiltered and with each filter set to the
    canary, as JSON and (where offered) as CSV, every page."""
    filters = query_values(k, ctx)
    for (method, template), op in sorted(operations.items()):
        if method != "GET":
            continue
        route = f"GET {template}"
        params = op.get("parameters", [])
        paths = _fill(template, params, k, ctx)
        if paths is None:
            continue
        reference = template.startswith((f"{API}/materials", f"{API}/parties"))
        names = {p["name"] for p in params if p["in"] == "query"}
        base = {"limit": 1000} if "limit" in names else {}
        variants = [base] + [{**base, name: value} for name in sorted(names) for value in filters.get(name, [])]
        if base and not template.startswith(f"{API}/audit"):
            variants.append({"limit": 1})  # page by page: every cursor is decoded and checked too
        csv = any("text/csv" in (resp.get("content") or {}) for resp in op.get("responses", {}).values())
        for path in paths:
            for variant in variants:
                r = await _get(client, ctx, k, role, route, path, headers, variant, reference=reference)
                if variant or role == CONTROL:
                    continue
                twin = _twin(ctx, path)
                if twin != path:
                    other = await client.get(twin, headers=headers)
                    ctx.requests += 1
                    _same_as_missing(ctx, role, route, path, r, other, twin)
                if csv:
                    await _get(client, ctx, k, role, route, path, headers, variant, reference=reference,
                               accept="text/csv")


async def _metrics(client, k: Canary, ctx: Context, readers: dict, admin: dict) -> None:
    """``/metrics`` as every reader sees it. The business snapshot is process-wide (each app of this
    process reloads its own database's): wait until it is this world's (its region's civilian stock)."""
    marker = f'region="{k.region}"'
    for role, headers in readers.items():
        for _ in range(60):
            r = await client.get("/metrics", headers=headers)
            if r.status_code != 200 or marker in r.text:
                break
            await asyncio.sleep(0.1)
        else:
            ctx.unwalked.append(f"GET /metrics as {role}: this world's snapshot never showed (no {marker})")
        check(ctx, k, role, "GET /metrics", "/metrics", r)


def _figure(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return Decimal(0)


async def _planner_solves(client, k: Canary, ctx: Context, planner: dict) -> None:
    """The uncleared planner's own coverage, drill and plan in the region at emergency, where civil
    relief may borrow military medical stock: there is no civilian stock of the canary material, so
    whatever they plan, count or report of it is military stock it may not see."""
    role = "planner"
    r = await _get(client, ctx, k, role, "GET /api/v1/coverage", f"{API}/coverage", planner)
    mine = [c for c in r.json().get("items", []) if c.get("target") == ctx.own_target]
    if not mine:
        ctx.unwalked.append(f"GET {API}/coverage: the uncleared planner's own target {ctx.own_target} is not in its "
                            f"coverage ({r.status_code}), so its figures could not be checked")
    for c in mine:
        if _figure(c.get("usable")) != 0 or (c.get("days_of_supply") or 0) != 0:
            ctx.leaks.append(Leak(role, "GET /api/v1/coverage", "/coverage", r.status_code,
                                  "military stock counted in the reader's own all-owner target",
                                  f"usable {c.get('usable')}, days_of_supply {c.get('days_of_supply')}"))
    scenario = {"name": f"oracle {k.uid}", "readiness": {k.region: "emergency"}, "requests": [
        {"requester": k.civil, "destination": k.south, "material": k.material, "quantity": "20000",
         "priority": "flash", "needed_by": day(10)}]}
    shared = {"name": f"oracle shared {k.uid}", "readiness": {k.region: "emergency"}, "requests": [
        {"requester": k.civil, "destination": k.south, "material": k.vaccine, "quantity": "45000",
         "priority": "flash", "needed_by": day(10)}]}
    r = await client.post(f"{API}/drills", headers=planner, json=shared)  # civilian stock under a hidden floor
    ctx.requests += 1
    check(ctx, k, role, "POST /api/v1/drills", json.dumps(shared), r)
    for name, body in (("drill for the canary material", scenario),
                       ("drill with the pending requests", {"name": "oracle pending", "include_pending": True,
                                                            "readiness": {k.region: "emergency"}})):
        r = await client.post(f"{API}/drills", headers=planner, json=body)
        ctx.requests += 1
        route = "POST /api/v1/drills"
        if r.status_code == 201:
            ctx.own.add(r.json()["id"])
        check(ctx, k, role, route, json.dumps(body), r)
        if r.status_code != 201:
            ctx.unwalked.append(f"{route} ({name}) by the uncleared planner answered {r.status_code}: {r.text[:200]}")
            continue
        report_ = r.json()
        _solved_on_visible_stock(ctx, k, role, route, name, r.status_code, report_)
        again = await _get(client, ctx, k, role, "GET /api/v1/drills/{drill_id}", f"{API}/drills/{report_['id']}",
                           planner)
        if again.status_code == 200:
            _solved_on_visible_stock(ctx, k, role, "GET /api/v1/drills/{drill_id}", name, 200, again.json())
    r = await client.post(f"{API}/allocation-plans", headers=planner, json={"region": k.region})
    ctx.requests += 1
    route = "POST /api/v1/allocation-plans"
    if r.status_code == 201:
        ctx.own.add(r.json()["id"])
    check(ctx, k, role, route, f"region={k.region}", r)
    if r.status_code == 201:
        _solved_on_visible_stock(ctx, k, role, route, "plan of the region's pending requests", 201, r.json())
        again = await _get(client, ctx, k, role, "GET /api/v1/allocation-plans/{plan_id}",
                           f"{API}/allocation-plans/{r.json()['id']}", planner)
        if again.status_code == 200:
            _solved_on_visible_stock(ctx, k, role, "GET /api/v1/allocation-plans/{plan_id}", "its plan", 200,
                                     again.json())
    else:
        ctx.unwalked.append(f"{route} by the uncleared planner answered {r.status_code}: {r.text[:200]}")


def _solved_on_visible_stock(ctx: Context, k: Canary, role: str, route: str, name: str, status: int,
                             report_: dict) -> None:
    """A plan or drill of an uncleared reader draws on nothing of the canary material (only military
    stock of it exists) — no line, not even a restricted one; nothing planned; its own target's days
    of supply are zero."""
    def leak(what: str, where: str) -> None:
        ctx.leaks.append(Leak(role, route, name, status, what, where))

    lines = [x for x in report_.get("lines", []) if x.get("material") in (k.material, None)
             or x.get("restricted") or x.get("lot_id") == k.lot_id]
    for i, line in enumerate(lines):
        leak("a line on military stock", f"$.lines[{i}] = {json.dumps(line)[:200]}")
    for i, request in enumerate(report_.get("requests", [])):
        if _figure(request.get("planned")) > 0:
            leak("quantity planned from military stock", f"$.requests[{i}].planned = {request.get('planned')}")
    for priority, rate in (report_.get("fill_rate") or {}).items():
        if rate:
            leak("fill rate reached with military stock", f"$.fill_rate.{priority} = {rate}")
    for i, d in enumerate(report_.get("days_of_supply", [])):
        if d.get("target") == ctx.own_target and (d.get("before") or 0) != 0:
            leak("days of supply counting military stock", f"$.days_of_supply[{i}] = {json.dumps(d)}")
    for i, f in enumerate(report_.get("floors_bounding", [])):
        if f.get("target") == ctx.own_target and _figure(f.get("headroom")) != 0:
            leak("a floor's headroom counting military stock", f"$.floors_bounding[{i}] = {json.dumps(f)}")


async def _attempt_writes(client, k: Canary, ctx: Context, role: str, headers: dict, operations: dict,
                          writes: dict) -> None:
    """Every write operation, by this uncleared reader, against the canary objects: whatever it
    answers (a problem, or worse, a success) names no canary."""
    for (method, template), _ in sorted(operations.items()):
        key = f"{method} {template}"
        if method == "GET" or key not in writes:
            continue
        for path, body in writes[key]:
            if key == f"POST {API}/tokens":
                body = {**body, "principal": f"oracle-{uuid.uuid4().hex[:8]}"}
            r = await client.request(method, path, headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                                     json=body)
            ctx.requests += 1
            if r.status_code < 300:
                ctx.accepted_writes.append(f"{key} — {role} {r.status_code}: {json.dumps(body)[:100]}")
            check(ctx, k, role, key, f"{path} {json.dumps(body)}", r,
                  reference=template.startswith((f"{API}/materials", f"{API}/parties")))
            twin_path, twin_body = _twin(ctx, path), json.loads(_twin(ctx, json.dumps(body)))
            # (a PUT of a code that does not exist creates it: an upsert by code cannot hide what exists)
            if method != "PUT" and (twin_path, twin_body) != (path, body):
                other = await client.request(method, twin_path, json=twin_body,
                                             headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
                ctx.requests += 1
                _same_as_missing(ctx, role, key, f"{path} {json.dumps(body)}", r, other, twin_path)


async def _webhooks(url: str, settings, k: Canary, ctx: Context, capture: Capture, control: Capture | None) -> None:
    """The bodies an uncleared webhook endpoint receives: the outbox delivered to a loopback endpoint
    declared uncleared — beside a military-cleared one (when endpoints declare a clearance), which
    must receive the canary's alerts, so the outbox really held them."""
    db = Database(url, pool_size=2)
    try:
        outcome = await run_slot(db, catalog(settings)["deliver-notifications"], slot=-1)
    finally:
        await db.dispose()
    assert outcome.outcome == "ok", outcome.detail
    if control is not None:
        seen = {s.what for body in control.bodies for s in k.secrets if s.pattern.search(body.decode())}
        if not seen:
            ctx.unwalked.append(f"webhooks: the cleared endpoint received no canary alert ({outcome.detail})")
    elif not capture.bodies:
        ctx.unwalked.append(f"webhooks: the endpoint received nothing ({outcome.detail})")
    for body in capture.bodies:
        check(ctx, k, "uncleared endpoint", "webhook delivery", "", _Body(body))


class _Body:
    """A captured webhook body (or a decoded cursor) as ``check`` reads a response."""

    def __init__(self, raw: bytes, status_code: int = 200, label: str = "") -> None:
        self.text, self.status_code, self.headers = raw.decode(), status_code, {}
        if label:
            self.text = f"{label} {self.text}"

    def json(self) -> Any:
        return json.loads(self.text)


def test_the_oracle_recognises_a_quantity_however_it_is_written():
    """The oracle's own check: a canary quantity is found as any presenter could write it, and a
    different number that merely contains its digits is not taken for it."""
    from tests.canary import quantity_pattern

    def found(text: str) -> bool:
        return any(p.search(text) for p in quantity_pattern("31337.417"))

    for shown in ('"31337.417"', "31337.4170", "31337.41700", "31337417", "31,337.417", "31 337.417",
                  'usable{target="T"} 31337.42', "31337.4 kg", "balance: 31337.417 kg"):
        assert found(shown), shown
    for other in ("131337.417", "31337.4171", "31337.418", "313374170", "2026-12-02T18:31:33.741Z"):
        assert not found(other), other
