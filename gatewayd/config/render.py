"""Render the schema: the documented default gatewayd.toml, the Markdown reference,
and a running configuration as plain data (secrets masked)."""

from __future__ import annotations

import ipaddress
import textwrap
from typing import Any

from gatewayd.config.schema import SCHEMA, Key, Section, walk
from gatewayd.config.sections import Node, Table
from gatewayd.config.types import Int
from gatewayd.secrets import MASK, Secret

HEADER = """\
# gatewayd.toml: configuration of gatewayd, the Thread border router daemon.
#
# Every key is listed with its default, commented out: uncomment and edit what
# you need. `gatewayd check-config -c FILE` validates a file; `systemctl reload
# gatewayd` applies it (keys marked "needs restart" take effect after
# `systemctl restart gatewayd`). Secrets (the Thread dataset, PSKs) may be
# written inline or kept in a file named by the matching *_file key; a file
# holding inline secrets should be mode 0640, owner root, group gatewayd.
"""


def toml_value(value: Any) -> str:
    """A default value as TOML source."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return f'"{value.hex()}"'
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return str(value)


def key_default(key: Key) -> str:
    if isinstance(key.type, Int) and key.type.octal:
        return oct(key.default)
    return toml_value(key.default)


def _comment(text: str, indent: str = "# ") -> list[str]:
    return [f"{indent}{line}".rstrip() for line in textwrap.wrap(text, 100 - len(indent))]


def default_toml() -> str:
    """The shipped config/gatewayd.toml: every key documented, defaults commented out."""
    out = [HEADER]
    for path, section in walk():
        out.append("")
        out.extend(_comment(section.doc))
        if section.array:
            out.append(f"#[[{path}]]")
        else:
            out.append(f"[{path}]")
        if section.free is not None:
            out.extend(_comment(f"Keys: {section.free_doc}; expected {section.free.expected}."))
            for name, value in section.example.items():
                out.append(f"#{name} = {toml_value(value)}")
        for key in section.keys:
            out.append("")
            note = "" if key.live else " (needs restart)"
            extra = f" Or {key.name}_file = a file holding it." if key.secret else ""
            out.extend(_comment(f"{key.doc}{extra} Expected {key.type.expected}.{note}"))
            out.append(f"#{key.name} = {key_default(key)}")
    return "\n".join(out).rstrip() + "\n"


def markdown_reference() -> str:
    """docs/configuration.md."""
    out = [
        "# Configuration reference",
        "",
        "Generated from the schema (`python -m gatewayd.config.render markdown`); the shipped",
        "`config/gatewayd.toml` is generated from the same source. Keys marked *live* are applied by",
        "`systemctl reload gatewayd`; the others need a restart.",
    ]
    for path, section in walk():
        title = f"[[{path}]]" if section.array else f"[{path}]"
        out += ["", f"## `{title}`", "", section.doc, ""]
        if section.free is not None:
            out += [f"Keys: {section.free_doc}; expected {section.free.expected}.", ""]
        if section.keys:
            out += ["| key | default | expected | |", "|---|---|---|---|"]
            for key in section.keys:
                flags = ", ".join(f for f, on in (("live", key.live), ("secret", key.secret)) if on)
                doc = key.doc + (f" Or `{key.name}_file`." if key.secret else "")
                cells = (f"`{key.name}`", f"`{key_default(key)}`", key.type.expected,
                         doc + (f" *({flags})*" if flags else ""))
                out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    """A Markdown table cell: a bare ``|`` (as in ``none|rtscts``) would split it (GFM takes ``\\|``)."""
    return text.replace("|", "\\|")


def plain(value: Any) -> Any:
    """A configured value as JSON-able data."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network | ipaddress.IPv4Address
                  | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def dump(node: Table | Node[Any], section: Section = SCHEMA, show_secrets: bool = False) -> dict[str, Any]:
    """A running configuration as nested dicts, secrets masked unless asked for."""
    out: dict[str, Any] = {}
    for name, value in node.items():
        sub = section.section(name)
        if isinstance(value, Table | Node):
            out[name] = dump(value, sub or Section(name="", doc=""), show_secrets)
        elif isinstance(value, list) and value and isinstance(value[0], Table):
            out[name] = [dump(v, sub or Section(name="", doc=""), show_secrets) for v in value]
        elif isinstance(value, Secret):
            out[name] = plain(value.reveal()) if show_secrets else (MASK if value else "")  # key bytes → hex
        else:
            out[name] = plain(value)
    return out


def main() -> None:
    import sys

    what = sys.argv[1] if len(sys.argv) > 1 else "toml"
    sys.stdout.write(markdown_reference() if what == "markdown" else default_toml())


if __name__ == "__main__":
    main()
