"""Fuzz the readers of tayga's dynamic.map and debug output; nothing may escape (bad lines are counted)."""

from __future__ import annotations

from nat64.backends.tayga import TaygaMapping, parse_dynamic_map, parse_log_line


def TestOneInput(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    rows, bad = parse_dynamic_map(text)
    assert bad >= 0 and all(isinstance(r, TaygaMapping) for r in rows)
    for line in text.splitlines():
        parse_log_line(line)


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
