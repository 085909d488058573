"""Whether this process can serve: the database answers and its schema is the one the code expects."""

from __future__ import annotations

from stockpile.store.db import Database, schema_revision
from stockpile.store.engine import head_revision


async def schema_revisions(db: Database) -> tuple[str | None, str]:
    """(the database's migration revision, the latest this code ships); raises when the database
    cannot be reached."""
    head = head_revision()
    async with db.transaction() as tx:
        return await schema_revision(tx.pg), head
