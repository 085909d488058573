"""Example requests and answers of the main operations, shown in the docs and the document."""

from __future__ import annotations

from typing import Any

from litestar.openapi.spec import Example, OpenAPIResponse, Operation, RequestBody

LOT = "3f0f5c8e-5c43-4a7e-9a52-2d6f1f0f8a10"
MOVEMENT = "7d1e2b9a-0c55-4b8e-8d3f-6a7c9e0b1f22"

RECEIPT = {"kind": "receipt", "warehouse": "WH-N-01", "material": "DIESEL-0", "owner": "CIV-RES-BUREAU",
           "quantity": "12000.5", "lot": {"code": "B2026-0113", "manufactured_on": "2026-01-10", "expires_on": "2028-01-10"},
           "occurred_at": "2026-11-20T08:00:00Z", "note": "delivery note 4471"}
ISSUE = {"kind": "issue", "warehouse": "WH-N-01", "material": "DIESEL-0", "owner": "CIV-RES-BUREAU",
         "quantity": "500", "reason": "consumption"}
ISSUED = {
    "id": MOVEMENT, "kind": "issue", "occurred_at": "2026-11-21T09:30:00Z", "recorded_at": "2026-11-21T09:30:00Z",
    "reason": "consumption", "note": None, "reverses": None, "transfer_id": None,
    "postings": [
        {"account": {"type": "stock", "lot_id": LOT, "owner": "CIV-RES-BUREAU"}, "material": "DIESEL-0", "delta": "-500.0"},
        {"account": {"type": "consumption", "material": "DIESEL-0"}, "material": "DIESEL-0", "delta": "500.0"},
    ],
    "balances": [{"lot_id": LOT, "owner": "CIV-RES-BUREAU", "balance": "11500.5", "reserved": "0.0",
                  "available": "11500.5"}],
}
POSITION = {"lot_id": LOT, "lot_code": "B2026-0113", "warehouse": "WH-N-01", "region": "NORTH", "material": "DIESEL-0",
            "category": "fuel", "unit": "L", "owner": "CIV-RES-BUREAU", "owner_sector": "civilian",
            "balance": "11500.5", "reserved": "0.0", "available": "11500.5", "expires_on": "2028-01-10",
            "expired": False, "status": "available"}
TRANSFER_IN = {"from_warehouse": "WH-N-01", "to_warehouse": "WH-S-02",
               "lines": [{"lot_id": LOT, "owner": "CIV-RES-BUREAU", "quantity": "2000"}],
               "expected_at": "2026-11-23T12:00:00Z"}
REQUEST_IN = {"requester": "CIV-RES-BUREAU", "destination": "WH-S-02", "material": "DIESEL-0", "quantity": "4000",
              "priority": "immediate", "needed_by": "2026-12-01", "purpose": "flood relief generators"}
COVERAGE = {"code": "T-DIESEL-NORTH", "scope": {"region": "NORTH"}, "material": "DIESEL-0", "category": None,
            "substitution_group": None, "owner": None, "sector": "civilian", "quantity": "50000",
            "warning_ratio": 0.9, "critical_ratio": 0.7, "floor_ratio": 0.5, "horizon_days": 30, "population": None,
            "target": "T-DIESEL-NORTH", "required": "50000", "usable": "41000.5", "floor": "25000", "ratio": 0.82,
            "state": "warning", "days_of_supply": None, "unit": "L"}
READINGS_IN = {"readings": [{"sensor": "TEMP-E01-COLD", "at": "2026-11-21T09:30:00Z", "value": "4.6"},
                            {"sensor": "TEMP-E01-COLD", "at": "2026-11-21T09:31:00Z", "value": "warm"}]}
READINGS_TAKEN = {"accepted": 1, "duplicates": 0, "refused": [{
    "index": 1, "sensor": "TEMP-E01-COLD", "status": 422,
    "problem": {"type": "validation", "title": "Invalid request", "status": 422,
                "detail": "readings[1].value: is not a finite number",
                "errors": [{"field": "readings[1].value", "message": "is not a finite number"}]}}]}

# (path, method) → (request examples, success answer examples)
EXAMPLES: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {
    ("/api/v1/movements", "post"): ({"receipt": RECEIPT, "issue (first-expiring-first)": ISSUE}, {"issue": ISSUED}),
    ("/api/v1/stock", "get"): ({}, {"one page": {"items": [POSITION], "next_cursor": None}}),
    ("/api/v1/transfers", "post"): ({"dispatch": TRANSFER_IN}, {}),
    ("/api/v1/allocation-requests", "post"): ({"request": REQUEST_IN}, {}),
    ("/api/v1/coverage", "get"): ({}, {"coverage": {"items": [COVERAGE], "next_cursor": None}}),
    ("/api/v1/sensor-readings", "post"): ({"one good, one refused": READINGS_IN},
                                          {"one good, one refused": READINGS_TAKEN}),
}


def attach(path: str, method: str, operation: Operation) -> None:
    """Put the examples of one operation (if it has any) on its request body and success answer."""
    requests, answers = EXAMPLES.get((path, method), ({}, {}))
    body = operation.request_body
    if requests and isinstance(body, RequestBody):
        for media in body.content.values():
            media.examples = {name: Example(summary=name, value=value) for name, value in requests.items()}
    for status, response in (operation.responses or {}).items():
        if answers and status.startswith("2") and isinstance(response, OpenAPIResponse):
            for media_type, media in (response.content or {}).items():
                if media_type == "application/json":
                    media.examples = {name: Example(summary=name, value=value) for name, value in answers.items()}
