"""CSV exports of the console's tables: the rows the page shows (same reads, same need-to-know),
one header row of the JSON member names (nested ones dotted)."""

from __future__ import annotations

import csv
import io
from typing import Any

from litestar import Response


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            out[f"{prefix}{key}"] = ";".join(str(v) for v in value)
        else:
            out[f"{prefix}{key}"] = "" if value is None else value
    return out


def csv_response(name: str, rows: list[dict[str, Any]]) -> Response:
    flat = [_flat(r) for r in rows]
    header: list[str] = []
    for row in flat:
        header += [k for k in row if k not in header]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
