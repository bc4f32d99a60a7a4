"""Byte links to the NCP, chosen by URL (see :mod:`ncp.links.url`)."""

from __future__ import annotations

from .base import Link, LinkLost
from .url import LinkUrl, create_link, parse_link_url

__all__ = ["Link", "LinkLost", "LinkUrl", "create_link", "parse_link_url"]
