"""The daemon's capabilities in start order. Each factory takes the configuration and
returns a Component, or None when that capability is disabled."""

from __future__ import annotations

from collections.abc import Callable

from gatewayd.component import Component
from gatewayd.config import Config

FACTORIES: list[Callable[[Config], Component | None]] = []
