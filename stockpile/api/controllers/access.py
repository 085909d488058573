"""Principals' tokens (admin) and the audit trail (auditor)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State

from stockpile.api.audit import write_transaction
from stockpile.api.auth import requires
from stockpile.api.common import decode_cursor, json_response, page, page_limit
from stockpile.domain.errors import Invalid, NotFound
from stockpile.domain.moments import rfc3339
from stockpile.services.commands import Code, Strict
from stockpile.store import audit as audit_store
from stockpile.store import tokens

Role = Literal["operator", "planner", "commander", "auditor", "admin", "metrics"]


class TokenIn(Strict):
    principal: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    roles: Annotated[list[Role], msgspec.Meta(min_length=1)]
    warehouses: list[Code] = []
    regions: list[Code] = []
    clearance: Literal["military"] | None = None
    expires_in_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    label: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class RevokeIn(Strict):
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


def present_token(row) -> dict:
    return {
        "id": row["id"], "principal": row["principal"], "roles": list(row["roles"]), "clearance": row["clearance"],
        "label": row["label"], "created_at": rfc3339(row["created_at"]),
        "expires_at": rfc3339(row["expires_at"]) if row["expires_at"] else None,
        "revoked_at": rfc3339(row["revoked_at"]) if row["revoked_at"] else None,
    }


class TokenController(Controller):
    path = "/api/v1/tokens"
    tags = ["access"]
    guards = [requires("admin")]

    @post("/", summary="Create a token for a principal (shown once, stored hashed)")
    async def create(self, request: Request, state: State, data: TokenIn) -> Response:
        expires_at = (datetime.now(timezone.utc) + timedelta(days=data.expires_in_days)) if data.expires_in_days else None
        async with write_transaction(request, state.db) as (tx, note):
            principal_id = await tokens.upsert_principal(tx.pg, data.principal, sorted(set(data.roles)), data.clearance)
            missing = await tokens.grant(tx.pg, principal_id, data.warehouses, data.regions)
            if missing:
                raise Invalid.field("warehouses/regions", f"unknown codes: {', '.join(missing)}")
            token = await tokens.issue_token(tx.pg, principal_id, data.label, expires_at)
            row = await tokens.token_by_hash(tx.pg, tokens.hash_token(token))
            note.status, note.target = 201, f"/api/v1/tokens/{row['id']}"
            note.details = {"principal": data.principal, "roles": sorted(set(data.roles))}
        return json_response({**present_token(row), "token": token}, 201)

    @get("/", summary="Tokens (never their values)")
    async def listing(self, state: State, principal: str | None = None, limit: int | None = None,
                      cursor: str | None = None) -> Response:
        size = page_limit(limit)
        async with state.db.transaction() as tx:
            rows = await tokens.list_tokens(tx.pg, principal=principal, after=decode_cursor(cursor), limit=size + 1)
        return json_response(page([present_token(r) for r in rows], size, lambda item: item["id"]))

    @post("/{token_id:int}/revoke", status_code=200, summary="Revoke a token at once")
    async def revoke(self, request: Request, state: State, token_id: int, data: RevokeIn | None = None) -> Response:
        async with write_transaction(request, state.db) as (tx, note):
            count = await tokens.revoke(tx.pg, token_id=token_id, by=request.user.name)
            row = await tokens.token_by_id(tx.pg, token_id)
            if row is None:
                raise NotFound(f"token {token_id} does not exist")
            note.details = {"revoked": count, "reason": data.reason if data else None}
        for authenticator in state.authenticators:
            getattr(authenticator, "forget", lambda: None)()
        return json_response(present_token(row))


class AuditController(Controller):
    path = "/api/v1/audit-events"
    tags = ["access"]
    guards = [requires("auditor", "admin")]

    @get("/", summary="The audit trail, newest first")
    async def listing(
        self, state: State, since: datetime | None = None, until: datetime | None = None, actor: str | None = None,
        target: str | None = None, action: str | None = None, limit: int | None = None, cursor: str | None = None,
    ) -> Response:
        size = page_limit(limit)
        async with state.db.transaction() as tx:
            await audit_store.seal(tx.pg)  # chain what has committed before anyone reads it
        async with state.db.transaction() as tx:
            rows = await audit_store.events(tx.pg, since=since, until=until, actor=actor, target=target, action=action,
                                            before_id=decode_cursor(cursor), limit=size + 1)
        items = [{**audit_store.content_of(r), "at": rfc3339(r["at"]), "id": r["id"], "chain_seq": r["chain_seq"],
                  "content_hash": r["content_hash"], "chain_hash": r["chain_hash"]} for r in rows]
        return json_response(page(items, size, lambda item: item["id"]))
