"""Keeping secrets (Thread network key, PSKc, DTLS PSKs) out of logs and CLI output."""

from __future__ import annotations

MASK = "********"


def mask(value: bytes | str | None) -> str:
    """What a log line or CLI table shows instead of a secret: only whether it is set."""
    return MASK if value else "(unset)"


def reveal(value: Secret | str | None) -> bytes:
    """The bytes of a secret configuration value, b"" when it is unset (the schema's default is "")."""
    return value.reveal() if isinstance(value, Secret) and value else b""


class Secret:
    """Wraps a secret so an accidental ``str()``/``repr()``/f-string shows the mask."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes):
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
