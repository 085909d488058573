"""The operator's console: a warehouse today, and the forms that record its movements.

Every read goes through the services the API reads through (need-to-know included) and every
form posts the same command the API's route would, through the same use case, once per form.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post

from stockpile.api.auth import can_post_movements, can_read, requires
from stockpile.api.presenters.alerts import present_alert
from stockpile.api.presenters.stock import present_position
from stockpile.api.presenters.masterdata import present_master
from stockpile.api.presenters.movements import present_movement, present_posted
from stockpile.api.presenters.rotation import present_order
from stockpile.console import sensors as sensor_panel
from stockpile.console.web import (
    Failure, Form, apply, attempt, command_of, day_field, decimal_field, done, read_form, render, signed_in,
)
from stockpile.domain.errors import Invalid
from stockpile.domain.moments import Clock
from stockpile.metrics import MOVEMENTS_POSTED
from stockpile.services import alerts, ledger, lots, masterdata, rotation, transfers
from stockpile.services import commands as c
from stockpile.services.movements import post_movement
from stockpile.services.workspace import Workspace

EXPIRING_DAYS = 30
ROWS = 1000  # a warehouse page shows at most this many positions (the CSV export has them all)
OPEN_ORDERS = ("planned", "in_progress")
ACKNOWLEDGERS = ("operator", "planner", "commander", "admin")  # as the API's acknowledge route
TRANSFER_LINES = 5  # line rows the transfer form offers (empty ones are left out)


async def my_warehouses(pg, principal) -> list[dict]:
    """The warehouses the principal acts on (all of them for a national role), by code."""
    return [present_master("warehouses", r)
            for r in await masterdata.page(pg, "warehouses", principal, after=None, limit=ROWS)]


def _expiry_class(expires_on: str | None, today: date) -> tuple[str, int | None]:
    if not expires_on:
        return "", None
    left = (date.fromisoformat(expires_on) - today).days
    return ("expired" if left < 0 else "expiring" if left <= EXPIRING_DAYS else ""), left


async def _positions(pg, principal, code: str, today: date) -> list[dict]:
    rows = await lots.positions(pg, principal, warehouse=code, material=None, owner=None, region=None, category=None,
                                expiring_before=None, status=None, after=None, limit=ROWS)
    items = [present_position(r, today) | {"decimals": r["decimals"]} for r in rows]
    totals: dict[str, Decimal] = {}
    for p in items:
        totals[p["lot_id"]] = totals.get(p["lot_id"], Decimal(0)) + Decimal(p["balance"])
    for p in items:
        p["expiry_class"], p["days_left"] = _expiry_class(p["expires_on"], today)
        total = totals[p["lot_id"]]
        p["share"] = float(Decimal(p["balance"]) / total) if total else 0.0
    items.sort(key=lambda p: (p["material"], p["expires_on"] or "9999", p["lot_code"], p["owner"]))
    return items


async def warehouse_context(request: Request, code: str) -> dict[str, Any]:
    principal = request.user
    today = Clock.utc().today
    async with request.app.state.db.transaction() as tx:
        pg = tx.pg
        warehouse = present_master("warehouses", await masterdata.get(pg, "warehouses", code, principal))
        positions = await _positions(pg, principal, code, today)
        moving, _ = await transfers.listing(pg, principal, state="in_transit", warehouse=code, after=None, size=100)
        orders = [present_order(r, today, principal) for r in await rotation.orders(
            pg, principal, state=None, warehouse=code, material=None, due_before=None, after=None, limit=200)]
        unresolved = await sensor_panel.unresolved_alerts(pg, principal)
        sensors = await sensor_panel.of_warehouse(pg, principal, code, unresolved)
        recent = [present_movement(r) for r in await ledger.movements(
            pg, principal, warehouse=code, material=None, owner=None, kind=None, since=None, until=None,
            before_seq=None, limit=15)]
        materials = await masterdata.page(pg, "materials", principal, after=None, limit=ROWS)
        parties = [p for p in await masterdata.page(pg, "parties", principal, after=None, limit=ROWS)
                   if principal.may_see_owner(p["sector"])]
        others = await masterdata.page(pg, "warehouses", principal, after=None, limit=ROWS)
    return {
        "warehouse": warehouse, "positions": positions, "today": today,
        "incoming": [t for t in moving if t["to_warehouse"] == code],
        "outgoing": [t for t in moving if t["from_warehouse"] == code],
        "orders": [o | {"quantity_left_out": str(Decimal(o["quantity"]) - Decimal(o["out_quantity"])),
                        "quantity_left_in": str(Decimal(o["quantity"]) - Decimal(o["in_quantity"]))}
                   for o in orders if o["state"] in OPEN_ORDERS],
        "alerts": [a for a in unresolved if a["warehouse"] == code], "sensors": sensors,
        "may_acknowledge": principal.has_any(ACKNOWLEDGERS),
        "recent": recent, "materials": materials, "parties": parties,
        "destinations": [w for w in others if w["code"] != code],
        "may_post": principal.has_any({"operator", "admin"}), "transfer_lines": TRANSFER_LINES,
        "decimals": {m["code"]: m["decimals"] for m in materials},
    }


async def _page(request: Request, code: str, failure: Failure | None = None, values: Form | None = None) -> Response:
    context = await warehouse_context(request, code)
    return render(request, "warehouse.html", status=failure.status if failure else 200,
                  failure=failure, values=values or {}, done_message=request.query_params.get("done"), **context)


@get("/warehouses/{code:str}", guards=[signed_in, can_read])
async def warehouse(request: Request, code: str) -> Response:
    return await _page(request, code)


@get("/warehouses/{code:str}/lot", guards=[signed_in, can_read])
async def find_lot(request: Request, code: str, lot: str = "") -> Response:
    """The lot a typed or scanned code names at this warehouse (an htmx fragment)."""
    today = Clock.utc().today
    async with request.app.state.db.transaction() as tx:
        await masterdata.get(tx.pg, "warehouses", code, request.user)
        found = [p for p in await _positions(tx.pg, request.user, code, today) if p["lot_code"] == lot.strip()]
    return render(request, "lot_found.html", lot=lot.strip(), found=found)


# -- forms ----------------------------------------------------------------------------------------

async def _lot_id(request: Request, code: str, lot_code: str | None, field: str = "lot") -> str | None:
    """The id of the lot a code names at this warehouse (among the positions the reader sees)."""
    if lot_code is None:
        return None
    async with request.app.state.db.transaction() as tx:
        positions = await lots.positions(tx.pg, request.user, warehouse=code, material=None, owner=None, region=None,
                                         category=None, expiring_before=None, status=None, after=None, limit=ROWS)
    for p in positions:
        if p["lot_code"] == lot_code:
            return str(p["lot_id"])
    raise Invalid.field(field, f"no lot {lot_code} with stock at {code}")


async def _post(request: Request, form: Form, command: c.Movement) -> dict:
    principal = request.user

    async def run(tx):
        posted = await post_movement(Workspace(tx.pg), command, principal, Clock.utc())
        MOVEMENTS_POSTED.labels(posted.kind).inc()
        return 201, present_posted(posted)

    return await apply(request, form, run)


def _movement_form(name: str, build):
    """A POST route for one movement form of the warehouse page: decode, apply once, come back."""

    async def handler(request: Request, code: str) -> Response:
        form = await read_form(request)

        async def action() -> Response:
            moved = await _post(request, form, await build(request, code, form))
            return done(request, f"/console/warehouses/{code}", f"{moved['kind']} {moved['id']}")

        return await attempt(request, name, action, lambda failure: _page(request, code, failure, form))

    handler.__name__ = f"post_{name}"
    return post(f"/warehouses/{{code:str}}/{name}", guards=[signed_in, can_post_movements], name=f"console:{name}")(handler)


async def _receipt(request: Request, code: str, form: Form) -> c.Receipt:
    return command_of(c.Receipt, {
        "warehouse": code, "material": form.text("material"), "owner": form.text("owner"),
        "quantity": decimal_field(form, "quantity"),
        "lot": {"code": form.text("lot") or "", "manufactured_on": day_field(form, "manufactured_on"),
                "expires_on": day_field(form, "expires_on")},
        "note": form.text("note"),
    })


async def _issue(request: Request, code: str, form: Form) -> c.Issue:
    lot_id = await _lot_id(request, code, form.text("lot"))
    return command_of(c.Issue, {
        "warehouse": code, "material": None if lot_id else form.text("material"), "owner": form.text("owner"),
        "quantity": decimal_field(form, "quantity"), "lot_id": lot_id, "reason": form.text("reason") or "consumption",
    })


async def _required_lot(request: Request, code: str, form: Form) -> str:
    """The lot the form's ``lot`` field names (a code typed or scanned, or an id): required."""
    lot_id = await _lot_id(request, code, form.text("lot"))
    if lot_id is None:
        raise Invalid.field("lot", "is required")
    return lot_id


async def _count(request: Request, code: str, form: Form) -> c.Adjustment:
    lot_id = await _required_lot(request, code, form)
    return command_of(c.Adjustment, {"lot_id": lot_id, "owner": form.text("owner"),
                                   "counted": decimal_field(form, "counted"), "reason": form.text("reason")})


async def _reversal(request: Request, code: str, form: Form) -> c.Reversal:
    return command_of(c.Reversal, {"movement_id": form.text("movement_id"), "reason": form.text("reason")})


async def _write_off(request: Request, code: str, form: Form) -> c.WriteOff:
    lot_id = await _required_lot(request, code, form)
    return command_of(c.WriteOff, {"lot_id": lot_id, "owner": form.text("owner"),
                                   "quantity": decimal_field(form, "quantity"), "reason": form.text("reason")})


async def _ownership_transfer(request: Request, code: str, form: Form) -> c.OwnershipTransfer:
    lot_id = await _required_lot(request, code, form)
    return command_of(c.OwnershipTransfer, {
        "lot_id": lot_id, "from_owner": form.text("from_owner"), "to_owner": form.text("to_owner"),
        "quantity": decimal_field(form, "quantity"), "reason": form.text("reason")})


receipt = _movement_form("receipt", _receipt)
issue = _movement_form("issue", _issue)
count = _movement_form("count", _count)
reversal = _movement_form("reversal", _reversal)
write_off = _movement_form("write-off", _write_off)
ownership_transfer = _movement_form("ownership-transfer", _ownership_transfer)


async def _order(request: Request, order_id: str) -> dict:
    async with request.app.state.db.transaction() as tx:
        return present_order(await rotation.get_order(tx.pg, order_id, request.user), Clock.utc().today, request.user)


@post("/warehouses/{code:str}/rotation/{order_id:uuid}/{direction:str}", guards=[signed_in, can_post_movements])
async def work_rotation(request: Request, code: str, order_id: UUID, direction: str) -> Response:
    """Work a rotation order: its old stock out (``rotation_out`` of its lot) or fresh stock in
    (``rotation_in``, a receipt carrying the order)."""
    form = await read_form(request)
    name = f"rotation-{direction}-{order_id}"

    async def action() -> Response:
        order = await _order(request, str(order_id))
        common = {"owner": order["owner"], "quantity": decimal_field(form, "quantity"),
                  "rotation_order_id": order["id"], "warehouse": code, "material": order["material"]}
        if direction == "out":
            movement = command_of(c.RotationOut, {**common, "lot_id": order["lot_id"]})
        elif direction == "in":
            movement = command_of(c.RotationIn, {**common, "lot": {
                "code": form.text("lot") or "", "expires_on": day_field(form, "expires_on")}})
        else:
            raise Invalid.field("direction", "is out or in")
        moved = await _post(request, form, movement)
        return done(request, f"/console/warehouses/{code}", f"{moved['kind']} {moved['id']}")

    return await attempt(request, name, action, lambda failure: _page(request, code, failure, form))


@post("/warehouses/{code:str}/transfer", guards=[signed_in, can_post_movements])
async def dispatch_transfer(request: Request, code: str) -> Response:
    form = await read_form(request)

    async def action() -> Response:
        expected = day_field(form, "expected_on")
        command = command_of(c.TransferIn, {
            "from_warehouse": code, "to_warehouse": form.text("to_warehouse"),
            "lines": await _transfer_lines(request, code, form),
            "expected_at": datetime.combine(date.fromisoformat(expected), time(12), timezone.utc) if expected else None,
            "note": form.text("note"),
        })
        moved = await _transfer_step(request, form, lambda pg, clock: transfers.dispatch(pg, command, request.user, clock))
        return done(request, f"/console/warehouses/{code}", f"transfer {moved['id']}")

    return await attempt(request, "transfer", action, lambda failure: _page(request, code, failure, form))


async def _transfer_lines(request: Request, code: str, form: Form) -> list[dict]:
    """The transfer form's lines: each row a lot code, an owner and a quantity; rows left empty are
    left out, a row half filled is refused at its field (``lines[i].…``)."""
    lots_, owners, quantities = form.all("lot"), form.all("owner"), form.all("quantity")
    lines = []
    for i, (lot_code, owner, quantity) in enumerate(zip(lots_, owners, quantities)):
        if not (lot_code or owner or quantity):
            continue
        for name, given in (("lot", lot_code), ("owner", owner), ("quantity", quantity)):
            if not given:
                raise Invalid.field(f"lines[{i}].{name}", "is required")
        amount = f"lines[{i}].quantity"
        lines.append({"lot_id": await _lot_id(request, code, lot_code, f"lines[{i}].lot"), "owner": owner,
                      "quantity": decimal_field(Form({amount: quantity}, {}), amount)})
    if not lines:
        raise Invalid.field("lines", "fill in at least one line")
    return lines


@post("/warehouses/{code:str}/transfers/{transfer_id:str}/receipt", guards=[signed_in, can_post_movements])
async def receive_transfer(request: Request, code: str, transfer_id: str) -> Response:
    form = await read_form(request)

    async def action() -> Response:
        lines = [{"lot_id": lot_id, "owner": owner, "received": received.replace(",", "")}
                 for lot_id, owner, received in zip(form.all("line_lot"), form.all("line_owner"), form.all("received"))]
        command = command_of(c.TransferReceiptIn, {"lines": lines})
        moved = await _transfer_step(request, form,
                                     lambda pg, clock: transfers.receive(pg, transfer_id, command, request.user, clock))
        return done(request, f"/console/warehouses/{code}", f"transfer {moved['id']} received")

    return await attempt(request, f"receive-{transfer_id}", action, lambda failure: _page(request, code, failure, form))


async def _transfer_step(request: Request, form: Form, step) -> dict:
    async def run(tx):
        transfer, posted = await step(tx.pg, Clock.utc())
        MOVEMENTS_POSTED.labels(posted.kind).inc()
        return 201, {**transfer, "movement": present_posted(posted)}

    return await apply(request, form, run)


@post("/warehouses/{code:str}/lot-status", guards=[signed_in, can_post_movements])
async def lot_status(request: Request, code: str) -> Response:
    form = await read_form(request)

    async def action() -> Response:
        lot_id = await _lot_id(request, code, form.text("lot"))
        if lot_id is None:
            raise Invalid.field("lot", "is required")
        command = command_of(c.LotStatusIn, {"status": form.text("status"), "reason": form.text("reason")})

        async def run(tx):
            previous = await lots.change_status(tx.pg, lot_id, command.status, command.reason, request.user)
            return 200, {"id": lot_id, "from": previous, "to": command.status}

        changed = await apply(request, form, run)
        return done(request, f"/console/warehouses/{code}", f"{form.text('lot')}: {changed['from']} → {changed['to']}")

    return await attempt(request, "lot-status", action, lambda failure: _page(request, code, failure, form))


@post("/warehouses/{code:str}/alerts/{alert_id:uuid}/acknowledge", guards=[signed_in, requires(*ACKNOWLEDGERS)])
async def acknowledge_alert(request: Request, code: str, alert_id: UUID) -> Response:
    """Acknowledge an alert shown on the warehouse page, with an optional note."""
    form = await read_form(request)

    async def action() -> Response:
        note = form.text("note")
        if note is not None and len(note) > 2000:
            raise Invalid.field("note", "is longer than 2000 characters")

        async def run(tx):
            row, history, _ = await alerts.acknowledge(tx.pg, str(alert_id), request.user, note)
            return 200, present_alert(row, request.user, history)

        acknowledged = await apply(request, form, run)
        return done(request, f"/console/warehouses/{code}", f"{acknowledged['kind']} {acknowledged['state']}")

    return await attempt(request, f"acknowledge-{alert_id}", action, lambda failure: _page(request, code, failure, form))


HANDLERS = [warehouse, find_lot, receipt, issue, count, reversal, write_off, ownership_transfer, work_rotation,
            dispatch_transfer, receive_transfer, lot_status, acknowledge_alert]
