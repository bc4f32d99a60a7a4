"""Load gatewayd.toml: parse, locate every key's line, validate against the schema.

tomllib gives no positions, so a light line scan maps each key path to the line
that defines it; errors then read like a compiler's:
``gatewayd.toml:12: ncp.baudrate: expected an integer, got "fast"``.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from gatewayd.config.schema import SCHEMA, Key, Section
from gatewayd.config.sections import (
    SECTION_TYPES,
    BorderSection,
    CommissioningSection,
    ControlSection,
    DaemonSection,
    Dns64Section,
    LogSection,
    LwM2MSection,
    Nat64Section,
    NcpSection,
    Node,
    RestSection,
    RootSection,
    Table,
    ThreadSection,
)
from gatewayd.secrets import Secret

DEFAULT_PATH = "/etc/gatewayd/gatewayd.toml"

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]#]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*=""")
_PART = re.compile(r"""\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*\.?""")
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


class ConfigError(Exception):
    """The configuration cannot be used; ``errors`` holds one line per problem."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


def _split_dotted(text: str) -> list[str]:
    return [m.strip("\"'") for m in _PART.findall(text)]


def locate_lines(text: str) -> dict[str, int]:
    """Map dotted key paths (arrays as ``name[i]``) to 1-based line numbers."""
    lines: dict[str, int] = {}
    table: list[str] = []
    array_counts: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            parts = _split_dotted(header.group(2))
            name = ".".join(parts)
            if header.group(1) == "[[":
                index = array_counts.get(name, 0)
                array_counts[name] = index + 1
                table = [*parts[:-1], f"{parts[-1]}[{index}]"]
            else:
                table = parts
            # Paths inside an array element refer to the newest element of every enclosing array.
            table = [_newest(array_counts, table, i) for i in range(len(table))]
            lines.setdefault(".".join(table), number)
            continue
        key = _KEY.match(line)
        if key:
            parts = table + _split_dotted(key.group(1))
            for end in range(len(table) + 1, len(parts) + 1):
                lines.setdefault(".".join(parts[:end]), number)
    return lines


def _newest(array_counts: dict[str, int], table: list[str], i: int) -> str:
    part = table[i]
    if "[" in part:
        return part
    name = ".".join(p.split("[")[0] for p in table[: i + 1])
    count = array_counts.get(name)
    return f"{part}[{count - 1}]" if count else part


@dataclass
class Config:
    """A validated configuration. ``root`` mirrors the TOML, one typed section per table
    (sections.py); ``secrets_inline`` lists the secret keys written in the file itself (for the
    permission warning)."""

    path: str
    root: RootSection
    warnings: list[str] = field(default_factory=list)
    secrets_inline: list[str] = field(default_factory=list)

    @property
    def daemon(self) -> DaemonSection:
        return self.root.daemon

    @property
    def ncp(self) -> NcpSection:
        return self.root.ncp

    @property
    def thread(self) -> ThreadSection:
        return self.root.thread

    @property
    def border(self) -> BorderSection:
        return self.root.border

    @property
    def nat64(self) -> Nat64Section:
        return self.root.nat64

    @property
    def dns64(self) -> Dns64Section:
        return self.root.dns64

    @property
    def lwm2m(self) -> LwM2MSection:
        return self.root.lwm2m

    @property
    def commissioning(self) -> CommissioningSection:
        return self.root.commissioning

    @property
    def rest(self) -> RestSection:
        return self.root.rest

    @property
    def control(self) -> ControlSection:
        return self.root.control

    @property
    def log(self) -> LogSection:
        return self.root.log


class _Validator:
    def __init__(self, path: str, lines: dict[str, int], base_dir: Path):
        self.path = path
        self.lines = lines
        self.base_dir = base_dir
        self._errors: list[tuple[int, str]] = []
        self.secrets_inline: list[str] = []

    def error(self, key_path: str, message: str) -> None:
        line = self._line(key_path)
        self._errors.append((line, f"{self.path}:{line}: {key_path}: {message}"))

    @property
    def errors(self) -> list[str]:
        """In file order, as an editor would walk them."""
        return [text for _, text in sorted(self._errors, key=lambda e: e[0])]

    def _line(self, key_path: str) -> int:
        if key_path not in self.lines and f"{key_path}_file" in self.lines:  # a secret given as <name>_file
            return self.lines[f"{key_path}_file"]
        probe = key_path
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe.rpartition(".")[0]
        return 1

    def section(self, section: Section, data: dict[str, Any], prefix: str, schema_path: str = "") -> Table | Node[Any]:
        """The validated table at ``prefix`` (``lwm2m.device[2].``) of the schema table at ``schema_path``
        (``lwm2m.device``), built as its class in SECTION_TYPES (a free table as a Node)."""
        values: dict[str, Any] = {}
        known = {k.name for k in section.keys} | {s.name for s in section.sections}
        known |= {f"{k.name}_file" for k in section.keys if k.secret}
        for name, value in data.items():
            path = f"{prefix}{name}"
            if section.free is not None:
                if section.free_names and name not in section.free_names:
                    self.error(path, "unknown name, expected one of " + ", ".join(section.free_names))
                    continue
                try:
                    values[name] = section.free.check(value)
                except ValueError as exc:
                    self.error(path, str(exc))
                continue
            if name not in known:
                self.error(path, f"unknown key{self._suggest(name, known)}")
        if section.free is not None:
            return Node(values)
        errors_before = len(self._errors)
        for key in section.keys:
            values[key.name] = self.key(key, data, prefix)
        for sub in section.sections:
            sub_path = f"{schema_path}.{sub.name}" if schema_path else sub.name
            values[sub.name] = self.subsection(sub, data.get(sub.name), f"{prefix}{sub.name}", sub_path)
        node = SECTION_TYPES[schema_path](**values)
        if section.check is not None and len(self._errors) == errors_before:
            for where, message in section.check(node):
                self.error(f"{prefix}{where}", message)
        return node

    def subsection(self, sub: Section, data: Any, path: str,
                   schema_path: str) -> Table | Node[Any] | list[Table | Node[Any]]:
        if sub.array:
            if data is None:
                return []
            if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
                self.error(path, f"expected [[{path}]] tables")
                return []
            return [self.section(sub, d, f"{path}[{i}].", schema_path) for i, d in enumerate(data)]
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.error(path, f"expected a [{path}] table")
            data = {}
        return self.section(sub, data, f"{path}.", schema_path)

    def key(self, key: Key, data: dict[str, Any], prefix: str) -> Any:
        path = f"{prefix}{key.name}"
        file_key = f"{key.name}_file"
        if key.secret and file_key in data:
            if key.name in data:
                self.error(path, f"set {key.name} or {file_key}, not both")
                return key.default
            return self._from_file(key, data[file_key], f"{prefix}{file_key}")
        if key.name not in data:
            default = key.type.check(key.default)  # defaults are written as a user would write them
            return Secret(default) if key.secret else default
        value = data[key.name]
        try:
            checked = key.type.check(value)
        except ValueError as exc:
            # A secret's bad value is never echoed: on reload this line goes to the journal.
            self.error(path, _unechoed(exc) if key.secret else str(exc))
            return None
        if key.secret:
            if checked:
                self.secrets_inline.append(path)
            return Secret(checked)
        return checked

    def _from_file(self, key: Key, name: Any, path: str) -> Any:
        if not isinstance(name, str) or not name:
            self.error(path, f"expected a file path, got {name!r}")
            return key.default
        file = self.base_dir / name
        try:
            text = file.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.error(path, f"cannot read {file}: {reason}")
            return key.default
        try:
            return Secret(key.type.check(text))
        except ValueError as exc:
            self.error(path, f"{file}: {_unechoed(exc)}")
            return key.default

    @staticmethod
    def _suggest(name: str, known: set[str]) -> str:
        import difflib

        close = difflib.get_close_matches(name, sorted(known), n=1)
        return f" (did you mean {close[0]}?)" if close else ""


def _unechoed(exc: ValueError) -> str:
    """A type's "expected ..., got VALUE" error without the value, for secrets."""
    return str(exc).split(", got")[0]


def parse(text: str, path: str = "gatewayd.toml", base_dir: Path | None = None) -> Config:
    """Validate TOML text; raises ConfigError listing every problem found."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        pos = _TOML_POS.search(message)
        line = pos.group(1) if pos else "1"
        raise ConfigError([f"{path}:{line}: syntax error: {_TOML_POS.sub('', message).strip()}"]) from None
    validator = _Validator(path, locate_lines(text), base_dir or Path(path).parent)
    root = cast(RootSection, validator.section(SCHEMA, data, ""))
    if validator.errors:
        raise ConfigError(validator.errors)
    return Config(path=path, root=root, secrets_inline=validator.secrets_inline)


def load(path: str | os.PathLike[str] = DEFAULT_PATH) -> Config:
    """Read and validate a config file; inline secrets in a file others can read earn a warning."""
    name = os.fspath(path)
    try:
        raw = Path(name).read_bytes()
        mode = os.stat(name).st_mode
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{name}:{line}: not valid UTF-8"]) from None
    config = parse(text, name)
    if config.secrets_inline and mode & (stat.S_IROTH | stat.S_IWOTH):
        config.warnings.append(
            f"{name} holds secrets ({', '.join(config.secrets_inline)}) and is readable by other users: "
            f"chmod 0640 {name} (owner root, group gatewayd), or move them to *_file keys"
        )
    return config


def flatten(node: Table | Node[Any] | list[Table], prefix: str = "") -> dict[str, Any]:
    """Dotted path → value, for diffing configurations on reload."""
    out: dict[str, Any] = {}
    if isinstance(node, list):
        out[prefix.rstrip(".")] = [flatten(n) for n in node]
        return out
    for name, value in node.items():
        if isinstance(value, Table | Node) or (isinstance(value, list) and value and isinstance(value[0], Table)):
            out.update(flatten(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out
