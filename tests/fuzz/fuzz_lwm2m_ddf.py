"""Fuzz target: OMA DDF XML loader; only DDFError may escape."""

from gatewayd.lwm2m.ddf import DDFError, parse_ddf


def TestOneInput(data: bytes) -> None:
    try:
        objects = parse_ddf(data)
    except DDFError:
        return
    for definition in objects:
        repr(definition)


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
