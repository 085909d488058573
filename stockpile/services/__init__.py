"""Use cases: each reads and locks what it needs (store), applies the rules (domain), writes.

Every function here runs inside a transaction its caller (the entry point) owns; none commits.
"""
