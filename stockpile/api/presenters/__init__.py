"""Presenters: the one place where records and results become response JSON, one module per resource."""
