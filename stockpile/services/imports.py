"""Importing a CSV file of movements or master data (`stockpile import FILE.csv`).

A file's columns are the members of the API's JSON bodies (``kind``, ``warehouse``, ``quantity``…);
nested members are written with a dot (``lot.code``, ``lot.expires_on``, ``capacity.fuel``). An
empty cell is an absent member. Master-data files carry a ``code`` column and say which resource
they fill (``--resource parties|regions|warehouses|materials``); so do capacity surveys, which arrive as
spreadsheets (``--resource capacities``: each row a survey, as ``PUT /capacities/{code}``); a file with
a ``kind`` column is movements.

Guarantees:
1. All or nothing by default: every row is judged, every refused row is reported with its line,
   and if any is refused nothing is written. ``per_row`` writes the rows that pass and reports the
   others.
2. A file is imported once: its SHA-256 is claimed as an idempotency key of the importing
   principal in the import's own transaction, so a second run of the same file writes nothing and
   says when the first one ran.
3. Rows are posted through the same rules, locks and append path as the API's batches.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg
import msgspec

from stockpile.domain.access import Principal
from stockpile.domain.errors import DomainError
from stockpile.domain.moments import Clock
from stockpile.services import commands as c
from stockpile.services import capacities, idempotency, masterdata
from stockpile.services.movements import post_movement
from stockpile.services.workspace import Workspace

MASTER_DATA = {"parties": c.PartyIn, "regions": c.RegionIn, "warehouses": c.WarehouseIn, "materials": c.MaterialIn}
BY_CODE = {**MASTER_DATA, "capacities": c.CapacityIn}  # files with a code column
CHUNK = 500  # rows preloaded and locked together


@dataclass
class Refusal:
    line: int
    problem: str


@dataclass
class Report:
    resource: str
    rows: int = 0
    written: int = 0
    refused: list[Refusal] = field(default_factory=list)
    already_imported_at: str | None = None

    @property
    def committed(self) -> bool:
        return self.already_imported_at is None and (self.written > 0 or not self.refused)


class ImportError_(ValueError):
    """The file itself cannot be imported (not CSV, no header, unknown resource)."""


def read_rows(text: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """The header and each row as a JSON-shaped dict (dotted columns nested, empty cells absent),
    with the file line it starts on."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise ImportError_("the file has no header row")
    header = [name.strip() for name in reader.fieldnames]
    if len(set(header)) < len(header) or any(not name for name in header):
        raise ImportError_("the header has empty or repeated column names")
    rows = []
    for raw in reader:
        line = reader.line_num
        if None in raw:
            raise ImportError_(f"line {line}: more cells than the header has columns")
        body: dict[str, Any] = {}
        for name, value in zip(header, raw.values()):
            if value is None or not value.strip():
                continue
            *parents, leaf = name.split(".")
            node = body
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = value.strip()
        if body:
            rows.append((line, body))
    return header, rows


def resource_of(header: list[str], resource: str | None) -> str:
    if resource is None:
        if "kind" in header:
            return "movements"
        raise ImportError_("the file has no kind column: name the master data it holds with --resource")
    if resource != "movements" and resource not in BY_CODE:
        raise ImportError_(f"unknown resource {resource!r}: movements, {', '.join(BY_CODE)}")
    if resource != "movements" and "code" not in header:
        raise ImportError_(f"a {resource} file needs a code column")
    return resource


def _convert(body: dict[str, Any], schema: Any) -> Any:
    """A row as the API's body (cells are text: numbers and dates are read from it)."""
    return msgspec.convert(body, schema, strict=False)


def _problem(exc: Exception) -> str:
    if isinstance(exc, msgspec.ValidationError):
        return f"validation: {exc}"
    if isinstance(exc, DomainError):
        errors = getattr(exc, "errors", None)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) if errors else str(exc)
        return f"{exc.type}: {detail}"
    raise exc


def _chunks(rows: list, size: int) -> Iterator[list]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


async def run_import(pg: asyncpg.Connection, text: str, principal: Principal, *, resource: str | None = None,
                     per_row: bool = False, progress: Callable[[int, int], None] = lambda done, total: None) -> Report:
    """Import the file in the caller's transaction; the caller commits when ``report.committed``."""
    header, rows = read_rows(text)
    report = Report(resource_of(header, resource), rows=len(rows))
    digest = hashlib.sha256(text.encode()).digest()
    key = (principal.id, f"import:{digest.hex()}")
    keys = await idempotency.Keys.claim(pg, [(*key, digest)])
    if key not in keys.claimed:
        report.already_imported_at = keys.replay(key, digest).body.decode() or "an earlier run"
        return report
    done = 0
    if report.resource == "movements":
        clock = Clock.utc()
        ws = Workspace(pg)
        for chunk in _chunks(rows, CHUNK):
            commands = []
            for line, body in chunk:
                try:
                    commands.append((line, _convert(body, c.Movement)))
                except msgspec.ValidationError as exc:
                    report.refused.append(Refusal(line, _problem(exc)))
            await ws.preload([(cmd, principal) for _, cmd in commands])
            for line, cmd in commands:
                try:
                    await post_movement(ws, cmd, principal, clock, flush=False)
                    report.written += 1
                except DomainError as exc:
                    report.refused.append(Refusal(line, _problem(exc)))
            await ws.flush()
            done += len(chunk)
            progress(done, len(rows))
    else:
        schema, today = BY_CODE[report.resource], Clock.utc().today
        for line, body in rows:
            code = body.pop("code", "")
            try:
                msgspec.convert(code, c.Code)
                await _upsert_one(pg, report.resource, code, _convert(body, schema), principal, today)
                report.written += 1
            except (msgspec.ValidationError, DomainError) as exc:
                report.refused.append(Refusal(line, _problem(exc)))
            done += 1
            if done % CHUNK == 0 or done == len(rows):
                progress(done, len(rows))
    report.refused.sort(key=lambda r: r.line)
    if report.refused and not per_row:
        report.written = 0
    else:
        await idempotency.Keys.record(pg, key, 200, Clock.utc().now.isoformat(timespec="seconds").encode())
    return report


async def _upsert_one(pg: asyncpg.Connection, resource: str, code: str, data: Any, principal: Principal,
                      today: date) -> None:
    """One master-data row or capacity survey, under a savepoint so a refused row leaves the others standing."""
    async with pg.transaction():
        if resource == "capacities":
            await capacities.upsert(pg, code, data, principal, today)
        else:
            await masterdata.upsert(pg, resource, code, data)
