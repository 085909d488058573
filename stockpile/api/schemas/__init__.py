"""Response schemas: what each operation answers, as the OpenAPI document shows it.

The handlers build their JSON in presenters; these Structs describe the same bodies so the served
document (and every client generated from it) carries the real fields. They are documentation
types: a handler's return annotation names one (``-> Response[Movement]``) and the presenter keeps
the key order of stored idempotent answers. ``tests/contract/`` checks that every
answer conforms (fuzzed, read by id, through a generated client).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec
from litestar.openapi.datastructures import ResponseSpec

Quantity = Annotated[str, msgspec.Meta(
    pattern=r"^-?[0-9]+(\.[0-9]+)?$",
    description="An exact decimal string, written with the material's decimals (never a float).",
    examples=["12000.500"],
)]
Code = Annotated[str, msgspec.Meta(description="A master-data code (party, region, warehouse, material, …).")]
Day = date
Moment = datetime


class Schema(msgspec.Struct, kw_only=True):
    """Base of every response schema (unknown members are allowed: answers may grow)."""


def page_of(item: type, name: str | None = None) -> type:
    """``{"items": [item, …], "next_cursor": str | null}``: one page of a list, as every list answers."""
    return msgspec.defstruct(
        name or f"{item.__name__}Page",
        [("items", list[item]),
         ("next_cursor", Annotated[str | None, msgspec.Meta(
             description="Pass as `cursor` to read the next page; null on the last page.")])],
        bases=(Schema,), kw_only=True, module=__name__,
    )


def created(schema: type) -> dict[int, ResponseSpec]:
    """``responses=`` for an upsert: 201 with ``schema`` when it created the object (200 replaced it)."""
    return {201: ResponseSpec(data_container=schema, description="Created", generate_examples=False)}


__all__ = ["Code", "Day", "Moment", "Quantity", "Schema", "created", "page_of"]
