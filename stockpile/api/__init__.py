"""The HTTP API (Litestar): app factory, auth, problem details, one controller per resource."""
