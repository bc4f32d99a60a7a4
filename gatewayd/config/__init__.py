"""Configuration: one schema (schema.py), validated by the loader into typed sections (sections.py)
and rendered as docs."""

from gatewayd.config.loader import DEFAULT_PATH, Config, ConfigError, Node, flatten, load, parse

__all__ = ["DEFAULT_PATH", "Config", "ConfigError", "Node", "flatten", "load", "parse"]
