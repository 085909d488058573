"""Engines, URLs, the embedded PostgreSQL server, and migrations."""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# The top-level migrations/ folder, shipped inside the package as stockpile.migrations (see
# setup.py): found the same way from a checkout, an editable install and a wheel.
MIGRATIONS = Path(str(files("stockpile.migrations")))
MIGRATION_LOCK = "stockpile migrations"  # the advisory lock replicas migrate under (migrations/env.py)
EMBEDDED_DATABASE = "stockpile"

log = logging.getLogger("stockpile.store")


def async_url(url: str) -> str:
    """``postgresql://…`` (any driver spelling) → ``postgresql+asyncpg://…``."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme in {"postgres", "postgresql"}:
        parts = parts._replace(scheme="postgresql+asyncpg")
    return urlunsplit(parts)


def plain_url(url: str) -> str:
    """``postgresql+asyncpg://…`` → ``postgresql://…`` (libpq/asyncpg spelling)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def asyncpg_dsn(url: str) -> tuple[str, dict]:
    """A DSN asyncpg accepts plus keyword arguments (a unix-socket ``host`` query member)."""
    parts = urlsplit(plain_url(url))
    query = dict(parse_qsl(parts.query))
    kwargs = {}
    if "host" in query:
        kwargs["host"] = query.pop("host")
    return urlunsplit(parts._replace(query=urlencode(query))), kwargs


def split_sql(script: str) -> list[str]:
    """Split a SQL script into statements, keeping ``$$``-quoted bodies whole."""
    statements, current, quoted = [], [], False
    for line in script.splitlines():
        stripped = line.strip()
        if not quoted and (not stripped or stripped.startswith("--")):
            continue
        current.append(line)
        if line.count("$$") % 2 == 1:
            quoted = not quoted
        if not quoted and stripped.endswith(";"):
            statements.append("\n".join(current))
            current = []
    if current and "".join(current).strip():
        statements.append("\n".join(current))
    return statements


class EmbeddedUnavailable(RuntimeError):
    """No ``DATABASE_URL`` and no embedded server installed (a production image leaves it out)."""


def start_embedded(data_dir: Path) -> str:
    """Start (or attach to) the embedded PostgreSQL in ``data_dir`` and return its URL.

    The server is reused across restarts and stopped when the last process using it exits.
    """
    try:
        import pgserver  # imported here: only the embedded path needs it (the extra stockpile[embedded])
    except ImportError:
        raise EmbeddedUnavailable(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed: set DATABASE_URL, "
            "or install it with pip install 'stockpile[embedded]'") from None

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir / "pgdata", cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
    return async_url(server.get_uri(EMBEDDED_DATABASE))


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()  # no ini file: an installed package has none, and the service configures its own logging
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the Alembic migrations (the only way the schema is made)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


@lru_cache(maxsize=1)
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()
