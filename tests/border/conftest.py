"""Fixtures the border tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.border.test_ra_netns import Link


@pytest.fixture
async def link() -> AsyncIterator[Link]:
    """Two namespaces, the border router's and a LAN host's (tests/border/test_ra_netns.py), removed after."""
    lk = Link()
    try:
        yield lk
    finally:
        lk.close()
