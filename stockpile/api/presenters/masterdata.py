"""Master-data JSON: a row as stored, with coordinates as numbers, capacity as an object and the
daily consumption as a decimal string."""

from __future__ import annotations

import json
from typing import Any


def present_master(kind: str, row) -> dict[str, Any]:
    out = dict(row)
    if kind == "warehouses":
        out["latitude"] = float(out["latitude"])
        out["longitude"] = float(out["longitude"])
        out["capacity"] = out["capacity"] if isinstance(out["capacity"], dict) else json.loads(out["capacity"])
    if kind == "materials" and out["daily_consumption_per_person"] is not None:
        out["daily_consumption_per_person"] = format(out["daily_consumption_per_person"].normalize(), "f")
    return out
