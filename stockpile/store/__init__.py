"""PostgreSQL: the engine and embedded server, table definitions, and the SQL of each use case.

This package is the only place that writes SQL.
"""
