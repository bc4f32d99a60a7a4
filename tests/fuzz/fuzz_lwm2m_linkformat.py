"""Fuzz target: CoRE link-format parser (Register payloads, Discover answers); only CodecError may escape."""

from gatewayd.lwm2m.codecs import CodecError, decode_links, encode_links, parse_registration


def TestOneInput(data: bytes) -> None:
    try:
        links = decode_links(data)
    except CodecError:
        return
    if decode_links(encode_links(links)) != links:
        raise AssertionError("links changed across a re-encode")
    parse_registration(data)
    for link in links:
        for name in link.attributes:
            for getter in (link.int_attr, link.float_attr):
                try:
                    getter(name)
                except CodecError:
                    pass


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
