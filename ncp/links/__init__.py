"""Byte links to the NCP, chosen by URL (see :mod:`ncp.links.url`)."""

from __future__ import annotations

from .base import Link, LinkDown
from .url import LinkUrl, create_link, parse_link_url

__all__ = ["Link", "LinkDown", "LinkUrl", "create_link", "parse_link_url"]
