"""The Alembic migrations, shipped inside the package as ``stockpile.migrations``."""
