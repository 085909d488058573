"""Principals and their tokens: issuing, listing, narrowing, disabling; and who a CLI command acts as.

Each use case runs in its caller's transaction; the caller (a request handler or a CLI command)
audits the change in that same transaction and commits. A principal's row is locked while its
rights change, so two changes to one principal are made one after the other.

Guarantees:

1. Issuing a token never changes an existing principal's rights unless the request says ``widen``
   (``stockpile.domain.principals.rights_to_add``); what a widening added is returned for the audit.
2. A removed role or grant, and a disabled principal, hold for every token of the principal from
   the next lookup on (an API process trusts a lookup for ``STOCKPILE_TOKEN_CACHE_SECONDS``).
3. A CLI command acts as a named, enabled principal holding the role the action needs (``acting_as``),
   or, without one, is attributed to ``cli:<user>``: a principal that holds no rights and is
   disabled, so nothing but the command line itself can ever act under that name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from stockpile.domain.access import MILITARY, Principal
from stockpile.domain.errors import Forbidden, Invalid, NotFound
from stockpile.domain.principals import CLI_PREFIX, SENSOR_PREFIX, Rights, require_may_issue, reserved_name, rights_to_add
from stockpile.store import tokens as store


@dataclass(frozen=True)
class Issued:
    """A new token (its value, shown once) and what issuing it did to the principal."""

    token: str
    record: asyncpg.Record  # the token's row (store.TOKEN_COLUMNS)
    created: bool  # the principal was created for it
    added: Rights  # what a widening added to an existing principal (empty otherwise)


def _rights(record: asyncpg.Record) -> Rights:
    return Rights.of(record["roles"], record["clearance"], record["warehouses"], record["regions"])


async def _record(pg: asyncpg.Connection, name: str, *, for_update: bool = True) -> asyncpg.Record:
    record = await store.principal_record(pg, name, for_update=for_update)
    if record is None:
        raise NotFound(f"no principal {name!r}")
    return record


async def issue_token(pg: asyncpg.Connection, name: str, asked: Rights | None, *, widen: bool = False,
                      label: str | None = None, expires_at: datetime | None = None,
                      issuer: Principal | None = None) -> Issued:
    """A token for ``name``, creating the principal with ``asked`` if it is new.

    ``asked`` is ``None`` for a token for an existing principal as it is; ``issuer`` is who asks
    (``None``: the trusted command line). Raises ``Invalid`` (unknown codes, a new principal without
    roles, a reserved name), ``Conflict`` (the request would widen or narrow the principal without
    ``widen``, or it is disabled) or ``Forbidden`` (an uncleared issuer, a token with clearance);
    nothing is written then.
    """
    cleared = issuer is None or issuer.cleared_military
    if asked is not None:
        missing = await store.unknown_codes(pg, sorted(asked.warehouses), sorted(asked.regions))
        if missing:
            raise Invalid.field("warehouses/regions", f"unknown codes: {', '.join(missing)}")
    record = await store.principal_record(pg, name, for_update=True)
    created = False
    if record is None:
        add = rights_to_add(name, None, asked, widen=widen)
        require_may_issue(cleared, name, add.clearance)
        principal_id = await store.create_principal(pg, name, sorted(add.roles), add.clearance)
        if principal_id is None:  # created by someone else meanwhile: decide against what it is now
            record = await _record(pg, name)
        else:
            created = True
    if record is not None:
        principal_id = record["id"]
        add = rights_to_add(name, _rights(record), asked, widen=widen, disabled=record["disabled_at"] is not None)
        require_may_issue(cleared, name, add.clearance or record["clearance"])
        if add.roles or add.clearance:
            await store.add_rights(pg, principal_id, sorted(add.roles), add.clearance)
    if add.warehouses or add.regions:  # every code asked for was found above
        await store.add_grants(pg, principal_id, sorted(add.warehouses), sorted(add.regions))
    token = await store.issue_token(pg, principal_id, label, expires_at)
    row = await store.token_by_hash(pg, store.hash_token(token))
    return Issued(token, row, created, Rights() if created else add)


async def tokens_of(pg: asyncpg.Connection, name: str | None = None, *, include_all: bool = False) -> list[asyncpg.Record]:
    """Tokens, live ones only (not revoked, not expired) unless ``include_all``; of one principal if named."""
    if name is not None:
        await _record(pg, name, for_update=False)
    return await store.list_tokens(pg, principal=name, after=None, limit=None, live_only=not include_all)


async def tokens_page(pg: asyncpg.Connection, *, name: str | None, after: int | None,
                      limit: int) -> list[asyncpg.Record]:
    """Tokens (never their values) by id, of one principal if named, revoked and expired ones too."""
    return await store.list_tokens(pg, principal=name, after=after, limit=limit)


async def revoke_token(pg: asyncpg.Connection, token_id: int, by: Principal) -> tuple[asyncpg.Record, int]:
    """Revoke one token at once; returns it and how many were revoked (0 when it already was).
    An unknown id is a 404, whatever the revocation found."""
    count = await store.revoke(pg, token_id=token_id, by=by.name)
    row = await store.token_by_id(pg, token_id)
    if row is None:
        raise NotFound(f"token {token_id} does not exist")
    return row, count


async def show(pg: asyncpg.Connection, name: str) -> dict[str, Any]:
    """A principal as written down: roles, clearance, grants by code, disabled, and every token of it."""
    record = await _record(pg, name, for_update=False)
    return {
        "name": record["name"], "roles": list(record["roles"]), "clearance": record["clearance"],
        "warehouses": list(record["warehouses"]), "regions": list(record["regions"]),
        "created_at": record["created_at"], "disabled_at": record["disabled_at"],
        "tokens": await store.list_tokens(pg, principal=name, after=None, limit=None),
    }


async def revoke_role(pg: asyncpg.Connection, name: str, role: str) -> bool:
    """Take a role from a principal (and so from every token of it); whether it held it."""
    record = await _record(pg, name)
    return await store.remove_role(pg, record["id"], role)


async def revoke_clearance(pg: asyncpg.Connection, name: str) -> bool:
    """Take the military clearance from a principal; whether it held it."""
    record = await _record(pg, name)
    if record["clearance"] != MILITARY:
        return False
    await store.set_clearance(pg, record["id"], None)
    return True


async def ungrant(pg: asyncpg.Connection, name: str, warehouses: list[str], regions: list[str]) -> list[str]:
    """Remove warehouse and region grants by code; returns the codes removed (codes not granted are
    left alone: the caller reports them)."""
    if not (warehouses or regions):
        raise Invalid.field("warehouses/regions", "name the warehouse or region grants to remove")
    record = await _record(pg, name)
    return await store.ungrant(pg, record["id"], sorted(set(warehouses)), sorted(set(regions)))


async def set_disabled(pg: asyncpg.Connection, name: str, disabled: bool) -> bool:
    """Disable a principal (none of its tokens authenticates) or enable it again; whether it changed.
    The command line's own ``cli:`` principals stay disabled."""
    if not disabled and reserved_name(name):
        raise Invalid.field("principal", f"{name} is an attribution principal (of the command line or a sensor) "
                                         "and stays disabled")
    record = await _record(pg, name)
    return await store.set_disabled(pg, record["id"], disabled)


async def acting_as(pg: asyncpg.Connection, name: str, needs: tuple[str, ...], doing: str) -> Principal:
    """The existing principal a CLI command runs as, with its roles, scope and clearance; refused if
    it is disabled or holds none of the roles ``needs``."""
    found = await store.principal_by_name(pg, name)
    if found is None:
        raise NotFound(f"no principal {name!r}")
    principal, disabled_at = found
    if disabled_at is not None:
        raise Forbidden(f"{name} is disabled")
    if not principal.has_any(needs):
        raise Forbidden(f"{name} may not {doing}: that needs one of the roles {', '.join(needs)}")
    return principal


async def command_line(pg: asyncpg.Connection, user: str) -> Principal:
    """``cli:<user>``, whom a CLI command without ``--as`` is attributed to.

    The command line is trusted — whoever holds the database URL owns the database — so the
    principal it acts as here is national and cleared. In the table the principal holds no rights
    and is disabled: no token can authenticate as it, and nothing but the command line acts as it.
    """
    name = f"{CLI_PREFIX}{user}"
    principal_id = await store.attribution_principal(pg, name)
    return Principal(principal_id, name, frozenset({"admin"}), MILITARY)


async def sensor_attribution(pg: asyncpg.Connection, code: str) -> Principal:
    """``sensor:<code>``, whom what a sensor's rules do on their own (a cold-chain excursion's lot
    quarantine) is attributed to: like the command line's, it holds no rights in the table, is
    disabled, and no token authenticates as it."""
    name = f"{SENSOR_PREFIX}{code}"
    return Principal(await store.attribution_principal(pg, name), name, frozenset())
