"""PostgreSQL: the embedded server, migrations, the connection pool, and the SQL of each use case.

This package is the only place that writes SQL.
"""
