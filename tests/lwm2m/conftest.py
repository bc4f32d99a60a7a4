"""Fixtures for the LwM2M tests."""

from __future__ import annotations

import pytest

from gatewayd.lwm2m.model import ObjectRegistry

from .objects import make_registry


@pytest.fixture(scope="session")
def registry() -> ObjectRegistry:
    return make_registry()
