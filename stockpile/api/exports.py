"""CSV exports of the list endpoints (``Accept: text/csv``) and of ``stockpile export``.

An export is the JSON list it mirrors, every matching row at once: the same filters, the same
use case (so the same scope and need-to-know, applied in SQL by ``stockpile.store.visibility``)
and the same presenter, so each CSV row holds exactly the values of its JSON item. The header is
the JSON member names, nested ones dotted (``scope.warehouse``); a member holding a list or a
free-form object (a movement's ``postings``, an alert's ``details``) is one cell of compact JSON.
Rows come from a server-side cursor in one read-only snapshot and leave in chunks as they are
written, so memory stays flat however many rows match.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, BinaryIO, get_args, get_origin, get_type_hints

import asyncpg
import msgspec
from litestar import Request
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.params import ParameterKwarg
from litestar.response import Stream

from stockpile.config import Settings
from stockpile.domain.access import READERS, Principal
from stockpile.domain.errors import Invalid
from stockpile.domain.moments import Clock
from stockpile.store.db import Database, repeatable_read

CSV_MEDIA_TYPE = "text/csv"
JSON_MEDIA_TYPE = "application/json"
CHUNK_BYTES = 64 * 1024  # written rows are sent once this much has gathered

Items = Callable[[asyncpg.Connection, Principal, dict[str, Any], date], AsyncIterator[dict[str, Any]]]


@dataclass(frozen=True)
class Export:
    """One list as CSV.

    ``columns``: the JSON member names of its items (nested ones dotted); ``listing``: the handler
    of the JSON list, whose query parameters (``limit`` and ``cursor`` aside) are the export's
    filters, decoded the same way; ``items``: its items, presented as the JSON list presents them,
    in the list's order; ``needs``: the roles that may read it; ``before``: what must happen before
    the read, in a transaction of its own (the audit trail seals what has committed)."""

    name: str
    columns: tuple[str, ...]
    listing: HTTPRouteHandler
    items: Items
    needs: frozenset[str] = READERS
    before: Callable[[Database, Settings], Awaitable[None]] | None = None

    @functools.cached_property
    def filters(self) -> type[msgspec.Struct]:
        """The list's filters by query name, each optional, as one type to decode them with."""
        fields = []
        for name, hint in get_type_hints(self.listing.fn, include_extras=True).items():
            if name in PAGING or hint in (Request, State) or name == "return":
                continue
            if get_origin(hint) is Annotated:
                hint, *meta = get_args(hint)
                name = next((m.query for m in meta if isinstance(m, ParameterKwarg) and m.query), name)
            fields.append((name, hint, None))
        return msgspec.defstruct(f"{self.name}-filters", fields, forbid_unknown_fields=True)


PAGING = {"limit", "cursor"}


def wants_csv(request: Request) -> bool:
    """Whether the client asks for CSV rather than JSON (JSON when both are equally welcome)."""
    return request.accept.best_match([JSON_MEDIA_TYPE, CSV_MEDIA_TYPE], default=JSON_MEDIA_TYPE) == CSV_MEDIA_TYPE


def cell(value: Any) -> str:
    """A JSON value as a CSV cell: text as it is, null as nothing, anything else as its JSON text
    (numbers and booleans as the JSON list writes them; lists and objects as compact JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def _cells(item: dict[str, Any], paths: list[tuple[str, ...]]) -> list[str]:
    out = []
    for path in paths:
        value: Any = item
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        out.append(cell(value))
    return out


@dataclass
class Counted:
    """How many rows an export has written so far."""

    rows: int = 0


async def csv_chunks(columns: tuple[str, ...], items: AsyncIterable[dict[str, Any]],
                     counted: Counted | None = None) -> AsyncIterator[bytes]:
    """The CSV text of ``items`` (header first) in UTF-8 chunks of about ``CHUNK_BYTES``."""
    paths = [tuple(column.split(".")) for column in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    counted = counted or Counted()
    async for item in items:
        writer.writerow(_cells(item, paths))
        counted.rows += 1
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def export_csv(db: Database, settings: Settings, export: Export, principal: Principal,
                     filters: dict[str, Any], today: date, counted: Counted | None = None) -> AsyncIterator[bytes]:
    """The CSV of ``export`` as ``principal`` may see it, read in one read-only snapshot."""
    if export.before is not None:
        await export.before(db, settings)
    async with db.transaction() as tx:
        await repeatable_read(tx.pg, read_only=True)
        async for chunk in csv_chunks(export.columns, export.items(tx.pg, principal, filters, today), counted):
            yield chunk


def filename(export: Export, today: date) -> str:
    return f"{export.name}-{today.isoformat()}.csv"


async def respond(request: Request, state: State, name: str) -> Stream:
    """The streamed CSV answer of the list ``name``, filtered by the request's query as the JSON list
    is (``limit`` and ``cursor`` do not apply: every matching row). The first chunk is read before
    the answer starts, so a failed read is still a problem details answer."""
    export = catalog()[name]
    given = {k: v for k, v in request.query_params.items() if k in export.filters.__struct_fields__}
    filters = decode_filters(export, given)
    today = Clock.utc().today
    chunks = export_csv(state.db, state.settings, export, request.user, filters, today)
    first = await anext(chunks)

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return Stream(body(), media_type=CSV_MEDIA_TYPE,  # Litestar adds "; charset=utf-8"
                  headers={"Content-Disposition": f'attachment; filename="{filename(export, today)}"'})


def decode_filters(export: Export, given: dict[str, str]) -> dict[str, Any]:
    """Filters given as text (a query, or ``stockpile export --filter k=v``) decoded as the JSON list
    decodes its query; an unknown name or a value of the wrong kind is a validation error."""
    try:
        return msgspec.structs.asdict(msgspec.convert(given, export.filters, strict=False))
    except msgspec.ValidationError as exc:
        name = re.search(r"\$\.(\w+)|field `(\w+)`", str(exc))
        raise Invalid.field(next(filter(None, name.groups())) if name else "filter", str(exc)) from None


async def write(db: Database, settings: Settings, export: Export, principal: Principal, filters: dict[str, Any],
                out: BinaryIO) -> int:
    """Write the CSV of ``export`` to ``out``; the number of rows written."""
    counted = Counted()
    async for chunk in export_csv(db, settings, export, principal, filters, Clock.utc().today, counted):
        out.write(chunk)
    return counted.rows


def _presented(rows_of: Callable[..., AsyncIterator[Any]], present: Callable[[Any, Principal, date], dict]) -> Items:
    async def items(pg: asyncpg.Connection, principal: Principal, filters: dict[str, Any],
                    today: date) -> AsyncIterator[dict[str, Any]]:
        async for row in rows_of(pg, principal, **filters):
            yield present(row, principal, today)

    return items


def _as_is(item: dict[str, Any], principal: Principal, today: date) -> dict[str, Any]:
    """The items of a use case that presents them itself (transfers, audit events)."""
    return item


@functools.cache
def catalog() -> dict[str, Export]:
    """Every export by name (the list's path). Built on first use: the controllers, whose filter
    types and presenters it names, import this module."""
    from stockpile.api.controllers import access as access_views
    from stockpile.api.controllers import alerts as alert_views
    from stockpile.api.controllers import allocation as allocation_views
    from stockpile.api.controllers import ledger as ledger_views
    from stockpile.api.controllers import rotation as rotation_views
    from stockpile.api.controllers import stock as stock_views
    from stockpile.api.presenters.alerts import present_alert
    from stockpile.api.presenters.stock import present_lot_head, present_position
    from stockpile.api.controllers import targets as target_views
    from stockpile.api.presenters.allocation import present_request
    from stockpile.api.presenters.movements import present_movement
    from stockpile.api.presenters.rotation import present_order
    from stockpile.api.presenters.targets import present_coverage
    from stockpile.services import alerts, allocation, audit, ledger, lots, rotation, targets, transfers

    async def coverage(pg, principal, filters, today):
        for item in await targets.coverage(pg, principal, today=today, **filters):
            yield present_coverage(item)

    async def every_request(pg, principal, filters, today):
        async for row in allocation.every_request(pg, principal, state=filters["state"],
                                                  priority=filters["priority"]):
            yield present_request(row)

    async def seal(db: Database, settings: Settings) -> None:
        await audit.seal_committed(db, settings.audit_key_bytes)

    exports = [
        Export("stock", (
            "lot_id", "lot_code", "warehouse", "region", "material", "category", "unit", "owner", "owner_sector",
            "balance", "reserved", "available", "expires_on", "expired", "status"), stock_views.StockController.listing,
            _presented(lots.every_position, lambda row, _, today: present_position(row, today))),
        Export("lots", (
            "id", "code", "warehouse", "material", "unit", "manufactured_on", "expires_on", "expired", "status",
            "origin_lot_id", "balance"), stock_views.LotController.listing,
            _presented(lots.every_lot, lambda row, _, today: present_lot_head(row, today))),
        Export("movements", (
            "id", "kind", "occurred_at", "recorded_at", "recorded_by", "reason", "note", "reverses", "transfer_id",
            "postings", "rotation_order_id"), ledger_views.MovementController.listing,
            _presented(ledger.every_movement, lambda row, _, __: present_movement(row))),
        Export("transfers", (
            "id", "from_warehouse", "to_warehouse", "state", "expected_at", "dispatched_at", "received_at", "overdue",
            "lines"), ledger_views.TransferController.listing, _presented(transfers.every_transfer, _as_is)),
        Export("coverage", (
            "code", "scope.warehouse", "scope.region", "material", "category", "substitution_group", "owner", "sector",
            "quantity", "warning_ratio", "critical_ratio", "floor_ratio", "horizon_days", "population", "target",
            "required", "usable", "floor", "ratio", "state", "days_of_supply", "unit"),
            target_views.CoverageController.coverage, coverage),
        Export("alerts", (
            "id", "kind", "subject", "severity", "state", "title", "details", "warehouse", "region", "opened_at",
            "last_seen_at", "acknowledged_at", "acknowledged_by", "resolved_at"), alert_views.AlertController.listing,
            _presented(alerts.every_alert, lambda row, principal, _: present_alert(row, principal))),
        Export("rotation-orders", (
            "id", "lot_id", "lot_code", "owner", "warehouse", "material", "unit", "policy", "quantity",
            "out_quantity", "in_quantity", "out_by", "in_by", "outlet", "state", "overdue", "explanation",
            "cancel_reason", "created_at", "updated_at"), rotation_views.RotationOrderController.listing,
            _presented(rotation.every_order, lambda row, principal, today: present_order(row, today, principal))),
        Export("allocation-requests", (
            "id", "requester", "destination", "material", "substitution_group", "category", "quantity", "priority",
            "needed_by", "purpose", "state", "created_at"), allocation_views.RequestController.listing,
            every_request),
        Export("audit-events", (
            "id", "at", "actor", "roles", "action", "target", "outcome", "status", "client", "request_id", "details",
            "chain_seq", "restricted", "content_hash", "chain_hash"), access_views.AuditController.listing,
            _presented(audit.every_event, _as_is), needs=frozenset({"auditor", "admin"}), before=seal),
    ]
    return {export.name: export for export in exports}
