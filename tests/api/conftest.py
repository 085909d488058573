"""Fixtures of the API tests."""

from __future__ import annotations

import pytest

from tests.factories import make_world


@pytest.fixture
async def world(client, admin, uid):
    """One test's own small reserve (``tests.factories.World``)."""
    return await make_world(client, admin, uid)


@pytest.fixture
async def planner(make_token, world):
    """A planner cleared for military stock, in the world's region."""
    return {"Authorization": f"Bearer {await make_token('planner', clearance='military', regions=[world.region])}"}
