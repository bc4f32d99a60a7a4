"""Fuzz the LwM2M Gateway prefix rewriting of SenML and LwM2M CBOR names; only PrefixError may escape."""

from __future__ import annotations

from gatewayd.lwm2m.prefixed import PrefixError, add_prefix, split_prefix, strip_prefix

FORMATS = (110, 112, 11544)


def TestOneInput(data: bytes) -> None:
    cf = FORMATS[data[0] % len(FORMATS)] if data else 110
    body = data[1:]
    for op in (add_prefix, strip_prefix):
        try:
            out = op(cf, body, "dev1")
        except PrefixError:
            continue
        assert isinstance(out, bytes)
    prefix, rest = split_prefix(tuple(body.decode("latin-1").split("/")))
    assert not prefix or not prefix.isdigit()
    assert len(rest) <= len(body) + 1


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
