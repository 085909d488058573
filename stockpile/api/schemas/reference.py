"""Master data, tokens, the audit trail and health as the API answers them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from stockpile.api.schemas import Code, Moment, Schema, page_of

Sector = Literal["military", "civilian", "enterprise"]


class Party(Schema):
    code: Code
    name: str
    sector: Sector
    parent: Code | None


class Region(Schema):
    code: Code
    name: str
    parent: Code | None


class Warehouse(Schema):
    code: Code
    name: str
    operator: Code
    region: Code
    kind: Literal["military", "civilian", "joint"]
    latitude: float
    longitude: float
    status: Literal["active", "suspended", "lost"]
    capacity: Annotated[dict[str, str], msgspec.Meta(description="Capacity per storage class (decimal strings).")]


class Material(Schema):
    code: Code
    name: str
    category: Literal["fuel", "food", "medical"]
    unit: str
    decimals: Annotated[int, msgspec.Meta(ge=0, le=3)]
    shelf_life_days: int | None
    storage_class: str
    substitution_group: str | None
    daily_consumption_per_person: Annotated[str | None, msgspec.Meta(description="A decimal string, per person per day.")]


PartyPage, RegionPage, WarehousePage, MaterialPage = (page_of(s) for s in (Party, Region, Warehouse, Material))


class Token(Schema):
    id: int
    principal: str
    roles: list[str]
    clearance: Literal["military"] | None
    label: str | None
    created_at: Moment
    expires_at: Moment | None
    revoked_at: Moment | None


class IssuedToken(Token, kw_only=True):
    token: Annotated[str, msgspec.Meta(description="The bearer token: shown this once, stored hashed.")]


TokenPage = page_of(Token)


class AuditEvent(Schema):
    """One audit event; a restricted one shows a reader without military clearance no target,
    details, client or hashes."""

    id: int
    at: Moment
    actor: str | None
    roles: list[str]
    action: str
    target: str | None
    outcome: str
    status: int | None
    client: str | None
    request_id: str | None
    details: dict[str, Any] | None
    chain_seq: int | None
    restricted: bool
    content_hash: str | None
    chain_hash: str | None


AuditEventPage = page_of(AuditEvent)


class DenialCount(Schema):
    id: int
    minute: Moment
    actor_kind: str
    actor: str | None
    action: str
    status: int
    count: int


DenialCountPage = page_of(DenialCount)


class Live(Schema):
    status: Literal["ok"]


class Ready(Schema):
    status: Literal["ok"]
    schema: Annotated[str, msgspec.Meta(description="The database's migration revision (the latest).")]
