"""A canary world: stock only a military owner holds, in a joint depot beside civilian stock, and the
activity that copies it into every place a reader could learn it from.

Built through the public API by cleared principals (and the worker's own job functions), in a
database of its own (rotation planning, alerts and the metrics snapshot are national). Every
distinctive string the build produces that an uncleared reader must never learn is collected in
``Canary.secrets``; ``tests/api/test_leak_oracle.py`` looks for them in everything it can read.

The world, in the region ``R-<uid>``:

- ``JNT-<uid>``, a ``joint`` depot holding civilian diesel and vaccine, and the canary: a lot
  ``K9LOT-<uid>`` of a military-only medical material ``K9MED-<uid>`` (3 decimals), received by the
  military party ``K9MIL-<uid>`` as 31,337.417 kg; issued from, partly handed to a second military
  party (an ``ownership_transfer``), partly sent to a military depot (a transfer left in transit).
- a civilian vaccine lot at the joint depot of which the military owns a share (received into
  the same lot), counted by an every-owner target ``K9ALL-<uid>`` at the depot (which an
  uncleared reader may not see): the civilian share's rotation order must not explain itself by it.
- a military reserve target ``K9TGT-<uid>`` (47,474.747 kg of the material, the military owner's, at
  the joint depot): in shortfall, with a floor the rotation planner and approvals respect.
- a rotation policy for medical stock; the canary lot expires in 20 days, so it is due for rotation
  (the ``plan-rotation`` job orders it) and ``expiring`` (the ``evaluate-alerts`` job raises it).
- two allocation requests of the military party (one planned, approved and so reserved by a cleared
  planner; one left pending), a drill of a cleared planner drawing on the canary, and an emergency
  loan of military rations to a civilian requester (an obligation whose creditor is military).
- a capacity ``K9CAP-<uid>`` of the military party (a jet-fuel plant delivering to the military
  depot, overdue for its survey), tasked by an approved plan for a military request no stock can
  meet: a tasking order, a ``survey_overdue`` alert.
- a tank gauge ``K9GAUGE-<uid>`` on the canary material at the joint depot (a military tank: only
  military parties hold that material there), reading 29,876.543 kg against the book, so the
  ``evaluate-sensors`` job raises its ``stock_variance``.
- the region left at ``emergency`` (so an uncleared planner's own plans and drills may borrow
  military medical stock, and must not be shown it), the audit chain sealed, the business-metrics
  snapshot refreshed and the alerts' outbox messages written.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from stockpile.config import Settings
from stockpile.jobs.catalog import catalog
from stockpile.jobs.runs import run_slot
from stockpile.store.db import Database

TODAY = datetime.now(timezone.utc).date()

# Distinctive quantities (3 decimals, none ending in 0, so no formatting drops a digit of them).
RECEIVED = "31337.417"
ISSUED = "271.828"
HANDED = "1618.034"  # ownership_transfer to the second military party
SENT = "141.421"  # transfer to the military depot, left in transit
TARGET_QUANTITY = "47474.747"
REQUESTED = "555.444"  # the military request a cleared planner plans and approves
PENDING = "333.222"  # the military request left pending
DRILLED = "999.111"  # the cleared planner's drill: the military party's need
RATIONS = "8675.309"  # military rations at the joint depot, lent from in the emergency
LENT = "62.837"
VACCINE = "45000"  # a civilian vaccine lot at the joint depot …
SHARE = "17093"  # … into which the military receives its own share (one lot, owned in shares) …
SHARED_TOTAL = "62093"  # … so the lot holds this much (only the civilian share may show uncleared)
SHARED_TARGET_QUANTITY = "71803"  # an every-owner target over that lot at the joint depot (hidden)
CAPACITY_DAILY = "7331.9"  # the military capacity's daily jet fuel (1 decimal, the material's)
TASKING_NEED = "12345.6"  # the military request for jet fuel that only the capacity can meet
GAUGE_READ = "29876.543"  # the canary tank's gauge, at variance with the book


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


def idem() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


@dataclass
class Secret:
    """One thing an uncleared reader must not learn: ``what`` names it in a leak report."""

    what: str
    pattern: re.Pattern


@dataclass
class Canary:
    uid: str
    region: str
    joint: str
    south: str
    depot: str  # the military depot the transfer goes to
    military: str
    military2: str
    civil: str
    enterprise: str
    material: str  # the canary material (master data: named on /materials only)
    rations: str  # the lent material (a civilian holds some once dispatched: not a secret)
    diesel: str
    vaccine: str
    lot_code: str
    target: str
    shared_target: str
    policy: str
    jet: str = ""  # a fuel no one holds: only the military capacity makes it
    capacity: str = ""
    tasking_id: str = ""
    gauge: str = ""  # a military tank's gauge
    lot_id: str = ""
    receipt_id: str = ""
    ration_lot_id: str = ""
    movement_ids: list[str] = field(default_factory=list)
    transfer_id: str = ""
    order_ids: list[str] = field(default_factory=list)
    alert_ids: list[str] = field(default_factory=list)
    request_id: str = ""  # planned and approved
    pending_request_id: str = ""
    plan_id: str = ""
    drill_id: str = ""  # the cleared planner's drill (national readers may see it, without military stock)
    obligation_id: str = ""
    emergency_declaration_id: str = ""  # a civilian object: no canary has a declaration
    loan_plan_id: str = ""  # a civilian request's plan drawing on military rations (seen; its lines not)
    loan_request_id: str = ""
    civil_lot_id: str = ""  # civilian diesel at the joint depot
    shared_lot_id: str = ""  # civilian vaccine with a military share
    civil_order_ids: list[str] = field(default_factory=list)  # the civilian share's rotation order
    derived: dict[str, str] = field(default_factory=dict)  # quantities read back from the cleared views
    secrets: list[Secret] = field(default_factory=list)
    # Master data an uncleared reader may read on /materials and /parties (README "Scope").
    reference_codes: frozenset[str] = frozenset()


def quantity_pattern(text: str) -> list[re.Pattern]:
    """A decimal quantity as any reader could be shown it: as written, with trailing zeros added or
    removed, rounded to fewer decimals (for ≥ 1,000), with thousands separators, and — for seven
    digits or more — in the material's smallest units (``31337417``)."""
    value = Decimal(text)
    normal = format(value.normalize(), "f")
    whole, _, frac = normal.partition(".")
    edge_before, edge_after = r"(?<![\d.])", r"(?![\d])"
    grouped = f"{int(whole):,}"
    alternatives = [re.escape(whole) + (r"\." + re.escape(frac) + "0*" if frac else r"(?:\.0+)?")]
    if int(whole) >= 1000:
        alternatives.append(re.escape(grouped) + (r"\." + re.escape(frac) + "0*" if frac else ""))
        alternatives.append(re.escape(grouped.replace(",", " ")) + (r"\." + re.escape(frac) if frac else ""))
        for places in (1, 2):
            if len(frac) > places:
                rounded = format(value.quantize(Decimal(1).scaleb(-places)), "f")
                alternatives.append(re.escape(rounded) + "(?!\\d)")
    patterns = [re.compile(edge_before + "(?:" + "|".join(alternatives) + ")" + edge_after)]
    units = str(int(value * 1000))
    if value == value.quantize(Decimal("0.001")) and len(units) >= 7:
        patterns.append(re.compile(edge_before + re.escape(units) + edge_after))
    return patterns


def text_secret(what: str, text: str) -> Secret:
    return Secret(what, re.compile(re.escape(text), re.IGNORECASE))


async def build(client, url: str, *, admin: dict, operator: dict, planner: dict, commander: dict,
                uid: str, settings: Settings) -> Canary:
    """The canary world (``admin``: admin+operator cleared; ``operator``/``planner``/``commander``
    cleared and national or scoped to the test nation)."""
    k = Canary(
        uid=uid, region=f"R-{uid}", joint=f"JNT-{uid}", south=f"STH-{uid}", depot=f"K9DEP-{uid}",
        military=f"K9MIL-{uid}", military2=f"K9MIL2-{uid}", civil=f"CIV-{uid}", enterprise=f"ENT-{uid}",
        material=f"K9MED-{uid}", rations=f"RTN-{uid}", diesel=f"DSL-{uid}", vaccine=f"VAX-{uid}",
        lot_code=f"K9LOT-{uid}", target=f"K9TGT-{uid}", shared_target=f"K9ALL-{uid}", policy=f"ROT-MED-{uid}",
        jet=f"JET-{uid}", capacity=f"K9CAP-{uid}",
        gauge=f"K9GAUGE-{uid}",
    )

    async def ok(method: str, path: str, headers: dict, body=None, status=(200, 201)) -> dict:
        r = await client.request(method, path, headers=headers, json=body)
        assert r.status_code in status, (method, path, r.status_code, r.text)
        return r.json()

    # Master data (readable by every reader).
    for path, body in [
        ("/api/v1/regions/TEST-NATION", {"name": "Test nation"}),
        (f"/api/v1/regions/{k.region}", {"name": f"Region {uid}", "parent": "TEST-NATION"}),
        (f"/api/v1/parties/{k.military}", {"name": "Medical Command", "sector": "military", "parent": None}),
        (f"/api/v1/parties/{k.military2}", {"name": "Field Hospital 2", "sector": "military", "parent": k.military}),
        (f"/api/v1/parties/{k.civil}", {"name": "Civil Reserve Bureau", "sector": "civilian", "parent": None}),
        (f"/api/v1/parties/{k.enterprise}", {"name": "Depot Services Co", "sector": "enterprise", "parent": None}),
        (f"/api/v1/warehouses/{k.joint}", {"name": "Joint depot", "operator": k.enterprise, "region": k.region,
                                           "kind": "joint", "latitude": 60.1, "longitude": 24.9, "status": "active"}),
        (f"/api/v1/warehouses/{k.south}", {"name": "South depot", "operator": k.civil, "region": k.region,
                                           "kind": "civilian", "latitude": 59.4, "longitude": 24.7, "status": "active"}),
        (f"/api/v1/warehouses/{k.depot}", {"name": "Garrison depot", "operator": k.enterprise, "region": k.region,
                                           "kind": "military", "latitude": 60.4, "longitude": 25.3, "status": "active"}),
        (f"/api/v1/materials/{k.material}", {"name": "Burn dressing kit", "category": "medical", "unit": "kg",
                                             "decimals": 3, "shelf_life_days": 365, "storage_class": "ambient",
                                             "daily_consumption_per_person": "0.01"}),
        (f"/api/v1/materials/{k.rations}", {"name": "Field rations", "category": "food", "unit": "kg",
                                            "decimals": 3, "shelf_life_days": 730, "storage_class": "ambient"}),
        (f"/api/v1/materials/{k.diesel}", {"name": "Diesel", "category": "fuel", "unit": "L", "decimals": 1,
                                           "shelf_life_days": 730, "storage_class": "bulk_liquid"}),
        (f"/api/v1/materials/{k.vaccine}", {"name": "Vaccine", "category": "medical", "unit": "dose", "decimals": 0,
                                            "shelf_life_days": 365, "storage_class": "cold_chain"}),
        (f"/api/v1/materials/{k.jet}", {"name": "Jet fuel", "category": "fuel", "unit": "L", "decimals": 1,
                                        "shelf_life_days": 730, "storage_class": "bulk_liquid"}),
    ]:
        await ok("PUT", path, admin, body)

    async def move(body: dict) -> dict:
        moved = await ok("POST", "/api/v1/movements", {**operator, **idem()}, body, status=(201,))
        return moved

    # Civilian stock in the joint depot, which uncleared readers of the region may see.
    civil = await move({"kind": "receipt", "warehouse": k.joint, "material": k.diesel, "owner": k.civil,
                        "quantity": "500", "lot": {"code": f"D-{uid}", "expires_on": day(600)}})
    k.civil_lot_id = next(p["account"]["lot_id"] for p in civil["postings"] if p["account"]["type"] == "stock")
    shared = await move({"kind": "receipt", "warehouse": k.joint, "material": k.vaccine, "owner": k.civil,
                         "quantity": VACCINE, "lot": {"code": f"V-{uid}", "expires_on": day(40)}})
    k.shared_lot_id = next(p["account"]["lot_id"] for p in shared["postings"] if p["account"]["type"] == "stock")
    await move({"kind": "receipt", "warehouse": k.joint, "material": k.vaccine, "owner": k.military,
                "quantity": SHARE, "lot": {"code": f"V-{uid}", "expires_on": day(40)}})
    await ok("PUT", f"/api/v1/reserve-targets/{k.shared_target}", admin, {
        "scope": {"warehouse": k.joint}, "material": k.vaccine, "quantity": SHARED_TARGET_QUANTITY,
        "floor_ratio": 0.75, "warning_ratio": 0.9, "critical_ratio": 0.8, "horizon_days": 0})

    # The canary and its movements.
    receipt = await move({"kind": "receipt", "warehouse": k.joint, "material": k.material, "owner": k.military,
                          "quantity": RECEIVED, "lot": {"code": k.lot_code, "expires_on": day(20),
                                                         "manufactured_on": day(-345)},
                          "note": "canary receipt"})
    k.lot_id = next(p["account"]["lot_id"] for p in receipt["postings"] if p["account"]["type"] == "stock")
    k.receipt_id = receipt["id"]
    await move({"kind": "issue", "warehouse": k.joint, "material": k.material, "owner": k.military,
                "quantity": ISSUED, "lot_id": k.lot_id, "reason": "consumption"})
    await move({"kind": "ownership_transfer", "lot_id": k.lot_id, "from_owner": k.military,
                "to_owner": k.military2, "quantity": HANDED, "reason": "field hospital stock"})
    transfer = await ok("POST", "/api/v1/transfers", {**operator, **idem()}, {
        "from_warehouse": k.joint, "to_warehouse": k.depot,
        "lines": [{"lot_id": k.lot_id, "owner": k.military, "quantity": SENT}],
        "expected_at": (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()}, status=(201,))
    k.transfer_id = transfer["id"]

    # The gauge of the canary's tank, at variance with the book (tolerance 0: at once).
    await ok("PUT", f"/api/v1/sensors/{k.gauge}", admin, {
        "warehouse": k.joint, "kind": "tank_level", "material": k.material, "unit": "kg", "tolerance_minutes": 0})
    read = await ok("POST", "/api/v1/sensor-readings", operator, {"readings": [
        {"sensor": k.gauge, "at": (datetime.now(timezone.utc) - timedelta(minutes=2)).isoformat(), "value": GAUGE_READ}]})
    assert read["accepted"] == 1, read

    # The military target over it (counting the lot: horizon 0), in shortfall.
    await ok("PUT", f"/api/v1/reserve-targets/{k.target}", admin, {
        "scope": {"warehouse": k.joint}, "material": k.material, "owner": k.military, "quantity": TARGET_QUANTITY,
        "floor_ratio": 0.5, "warning_ratio": 0.9, "critical_ratio": 0.7, "horizon_days": 0, "population": 4321})

    # Allocation: a military request planned and approved by a cleared planner (reserving canary
    # stock), another left pending; a drill of the cleared planner drawing on the canary.
    request = await ok("POST", "/api/v1/allocation-requests", planner, {
        "requester": k.military, "destination": k.depot, "material": k.material, "quantity": REQUESTED,
        "priority": "immediate", "needed_by": day(10), "purpose": "canary: surgical teams"}, status=(201,))
    k.request_id = request["id"]
    plan = await ok("POST", "/api/v1/allocation-plans", planner, {"request_ids": [k.request_id]}, status=(201,))
    k.plan_id = plan["id"]
    assert [x["quantity"] for x in plan["lines"]] == [REQUESTED], plan
    await ok("POST", f"/api/v1/allocation-plans/{k.plan_id}/approve", planner)
    pending = await ok("POST", "/api/v1/allocation-requests", planner, {
        "requester": k.military, "destination": k.depot, "material": k.material, "quantity": PENDING,
        "priority": "priority", "needed_by": day(12), "purpose": "canary: reserve"}, status=(201,))
    k.pending_request_id = pending["id"]
    drill = await ok("POST", "/api/v1/drills", planner, {
        "name": f"canary drill {uid}", "requests": [{
            "requester": k.military, "destination": k.depot, "material": k.material, "quantity": DRILLED,
            "priority": "flash", "needed_by": day(10)}]}, status=(201,))
    k.drill_id = drill["id"]
    assert any(x.get("lot_id") == k.lot_id for x in drill["lines"]), drill

    # Rotation: a medical policy; the planner orders the due canary positions.
    await ok("PUT", f"/api/v1/rotation-policies/{k.policy}", admin, {
        "category": "medical", "trigger_days_before_expiry": 90, "max_out_share": "0.05", "outlet": "donation"})
    db = Database(url, pool_size=2)
    try:
        planned = await run_slot(db, catalog(settings)["plan-rotation"], slot=-1)
        assert planned.outcome == "ok", planned.detail

        # The emergency: military rations lent to a civilian requester (an obligation).
        rations = await move({"kind": "receipt", "warehouse": k.joint, "material": k.rations, "owner": k.military,
                              "quantity": RATIONS, "lot": {"code": f"RL-{uid}", "expires_on": day(500)}})
        k.ration_lot_id = next(p["account"]["lot_id"] for p in rations["postings"] if p["account"]["type"] == "stock")
        declared = await ok("POST", "/api/v1/readiness/declarations", commander,
                            {"region": k.region, "level": "emergency", "reason": "flood"}, status=(201,))
        k.emergency_declaration_id = declared["id"]
        loan_request = await ok("POST", "/api/v1/allocation-requests", planner, {
            "requester": k.civil, "destination": k.south, "material": k.rations, "quantity": LENT,
            "priority": "immediate", "needed_by": day(10), "purpose": "evacuees"}, status=(201,))
        k.loan_request_id = loan_request["id"]
        loan = await ok("POST", "/api/v1/allocation-plans", planner, {"request_ids": [k.loan_request_id]},
                        status=(201,))
        k.loan_plan_id = loan["id"]
        assert [(x["obligation"], x["quantity"]) for x in loan["lines"]] == [("loan", LENT)], loan
        await ok("POST", f"/api/v1/allocation-plans/{k.loan_plan_id}/approve", commander)
        dispatched = await ok("POST", f"/api/v1/allocation-plans/{k.loan_plan_id}/dispatch", {**admin, **idem()})
        k.obligation_id = dispatched["lines"][0]["obligation_id"]
        assert k.obligation_id

        # Mobilisation potential: the military capacity, overdue for its survey, tasked by an approved plan.
        await ok("PUT", f"/api/v1/capacities/{k.capacity}", planner, {
            "party": k.military, "material": k.jet, "daily_quantity": CAPACITY_DAILY, "lead_days": 1,
            "region": k.region, "warehouse": k.depot, "surveyed_on": day(-400), "survey_interval_days": 365,
            "note": "canary: jet fuel plant"})
        tasked = await ok("POST", "/api/v1/allocation-requests", planner, {
            "requester": k.military, "destination": k.depot, "material": k.jet, "quantity": TASKING_NEED,
            "priority": "flash", "needed_by": day(3), "purpose": "canary: air wing"}, status=(201,))
        tasking_plan = await ok("POST", "/api/v1/allocation-plans", planner, {"request_ids": [tasked["id"]]},
                                status=(201,))
        assert [(x["kind"], x["quantity"]) for x in tasking_plan["lines"]] == [("tasking", TASKING_NEED)], tasking_plan
        await ok("POST", f"/api/v1/allocation-plans/{tasking_plan['id']}/approve", planner)
        [order] = (await ok("GET", f"/api/v1/taskings?capacity={k.capacity}", planner))["items"]
        k.tasking_id = order["id"]

        # Requests a cleared principal is refused (its role may not): denied requests naming the canary.
        for headers, path in ((operator, f"/api/v1/allocation-plans/{k.plan_id}/approve"),
                              (commander, f"/api/v1/allocation-plans/{k.plan_id}/dispatch")):
            r = await client.post(path, headers={**headers, **idem()})
            assert r.status_code == 403, (path, r.status_code, r.text)

        # Alerts (expiring canary lot, the military target's shortfall), their outbox messages, the
        # audit chain sealed and the business-metrics snapshot refreshed.
        for job in ("evaluate-sensors", "evaluate-alerts", "seal-audit", "refresh-metrics"):
            outcome = await run_slot(db, catalog(settings)[job], slot=-1)
            assert outcome.outcome == "ok", (job, outcome.detail)
    finally:
        await db.dispose()

    await _collect(client, admin, k)
    return k


async def _all(client, headers: dict, path: str, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        r = await client.get(path, headers=headers, params={**params, "limit": 1000, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, (path, r.text)
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items


async def _collect(client, admin: dict, k: Canary) -> None:
    """Read back, as the cleared admin, every id and figure the build put on record, and list the secrets."""
    for owner in (k.military, k.military2):
        k.movement_ids += [m["id"] for m in await _all(client, admin, "/api/v1/movements", owner=owner)
                           if m["id"] not in k.movement_ids]
    orders = await _all(client, admin, "/api/v1/rotation-orders", material=k.material)
    assert orders, "the rotation planner ordered none of the canary"
    shares = await _all(client, admin, "/api/v1/rotation-orders", material=k.vaccine)
    k.civil_order_ids = [o["id"] for o in shares if o["owner"] == k.civil]
    assert k.civil_order_ids, shares
    orders += [o for o in shares if o["owner"] == k.military]
    k.order_ids = [o["id"] for o in orders]
    for o in orders:
        k.derived[f"rotation order quantity ({o['material']}, {o['owner']})"] = o["quantity"]
    positions = await _all(client, admin, "/api/v1/stock", material=k.material)
    for p in positions:
        for member in ("balance", "reserved", "available"):
            if Decimal(p[member]) > 0:
                k.derived[f"{member} of {p['owner']} in the canary lot"] = p[member]
    military = [p for p in positions if p["owner"] in (k.military, k.military2)]
    k.derived["military stock of the canary lot on hand"] = str(sum(Decimal(p["balance"]) for p in military))
    k.derived["military stock of the canary lot available"] = str(sum(Decimal(p["available"]) for p in military))
    for p in await _all(client, admin, "/api/v1/stock", material=k.rations, owner=k.military):
        k.derived["military rations left after the loan"] = p["balance"]
    coverage = {c["target"]: c for c in (await client.get("/api/v1/coverage", headers=admin)).json()["items"]}
    mine = coverage[k.target]
    k.derived["the military target's usable coverage"] = mine["usable"]
    k.derived["the military target's floor"] = mine["floor"]
    k.derived["the every-owner target's floor"] = coverage[k.shared_target]["floor"]

    alerts = await _all(client, admin, "/api/v1/alerts")
    marks = (k.lot_id, k.target, k.shared_target, k.transfer_id, k.lot_code, k.capacity, k.gauge)
    k.alert_ids = [a["id"] for a in alerts if any(m in str(a) for m in marks)]
    assert len(k.alert_ids) >= 3, alerts  # expiring canary lot, shortfall of the military target, gauge variance
    [variance] = [a for a in alerts if a["kind"] == "stock_variance" and a["subject"] == f"sensor:{k.gauge}"]
    k.derived["the gauge's difference from the book"] = str(abs(Decimal(variance["details"]["difference"])))

    secrets = [text_secret("lot code", k.lot_code), text_secret("military target code", k.target),
               text_secret("every-owner target code", k.shared_target),
               text_secret("canary lot id", k.lot_id), text_secret("transfer id", k.transfer_id),
               text_secret("military request id", k.request_id),
               text_secret("pending military request id", k.pending_request_id),
               text_secret("military plan id", k.plan_id), text_secret("obligation id", k.obligation_id),
               text_secret("military party code", k.military), text_secret("second military party code", k.military2),
               text_secret("canary material code", k.material),
               text_secret("military capacity code", k.capacity), text_secret("tasking order id", k.tasking_id),
               text_secret("military tank's gauge code", k.gauge)]
    secrets += [text_secret("movement id", m) for m in k.movement_ids]
    secrets += [text_secret("rotation order id", o) for o in k.order_ids]
    secrets += [text_secret("alert id", a) for a in k.alert_ids]
    named = {"received quantity": RECEIVED, "issued quantity": ISSUED, "handed-over quantity": HANDED,
             "transferred quantity": SENT, "military target quantity": TARGET_QUANTITY,
             "military request quantity": REQUESTED, "pending military request quantity": PENDING,
             "drilled military need": DRILLED, "military rations received": RATIONS,
             "military share of the civilian vaccine lot": SHARE, "the shared lot's total": SHARED_TOTAL,
             "every-owner target quantity": SHARED_TARGET_QUANTITY, "military capacity per day": CAPACITY_DAILY,
             "military need only the capacity meets": TASKING_NEED, "the military tank's gauge reading": GAUGE_READ,
             **k.derived}
    by_value: dict[Decimal, list[str]] = {}
    for what, quantity in named.items():  # one secret per value, named by everything it is
        by_value.setdefault(Decimal(quantity).normalize(), []).append(what)
    for value, whats in by_value.items():
        text = format(value, "f")
        secrets += [Secret(f"{' = '.join(whats)} ({text})", p) for p in quantity_pattern(text)]
    k.secrets = secrets
    k.reference_codes = frozenset({k.material, k.military, k.military2})
