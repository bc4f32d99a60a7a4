"""The one error class every Spinel decoder and packer raises for bad input."""

from __future__ import annotations

__all__ = ["SpinelError"]


class SpinelError(ValueError):
    """A Spinel frame or value does not match its format (truncated, out of range, bad UTF-8, ...)."""
