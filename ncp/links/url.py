"""Pick and configure the NCP link from the ``[ncp] url`` setting.

Supported forms::

    spinel+hdlc+uart:///dev/ttyACM0?baudrate=115200&flow-control=none|rtscts
    cascoda+uart:///dev/serial0?baudrate=1000000
    spinel+hdlc+forkpty:///path/to/ncp-program?args=1&args=--foo

Every scheme also takes ``record=/path/file.jsonl``: the client then records the HDLC stream both ways
(:mod:`ncp.record`; the file holds the network key, so it is created owner-only).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from .base import Link

__all__ = ["SCHEMES", "LinkUrl", "create_link", "parse_link_url"]

SCHEMES = {
    "spinel+hdlc+uart": {"baudrate": 115200, "params": {"baudrate", "flow-control", "record"}},
    "cascoda+uart": {"baudrate": 1_000_000, "params": {"baudrate", "record"}},
    "spinel+hdlc+forkpty": {"baudrate": 0, "params": {"args", "record"}},
}


@dataclass(frozen=True, slots=True)
class LinkUrl:
    scheme: str
    path: str
    baudrate: int = 0
    rtscts: bool = False
    args: tuple[str, ...] = ()
    record: str | None = None


def parse_link_url(url: str) -> LinkUrl:
    """Validate an NCP URL; ValueError says exactly what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("NCP url is empty; expected e.g. spinel+hdlc+uart:///dev/ttyACM0")
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        supported = ", ".join(f"{s}://" for s in SCHEMES)
        raise ValueError(f"NCP url {url!r}: unknown scheme {parts.scheme!r}; supported: {supported}")
    if parts.netloc:
        raise ValueError(
            f"NCP url {url!r}: unexpected host {parts.netloc!r}; the path needs three slashes, "
            f"e.g. {scheme}:///dev/ttyACM0"
        )
    path = unquote(parts.path)
    if not path or path == "/":
        raise ValueError(f"NCP url {url!r}: missing device or program path")
    if parts.fragment:
        raise ValueError(f"NCP url {url!r}: fragments ('#...') are not allowed")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ValueError(f"NCP url {url!r}: malformed query {parts.query!r}") from exc
    allowed = SCHEMES[scheme]["params"]
    for key in query:
        if key not in allowed:
            raise ValueError(
                f"NCP url {url!r}: unknown parameter {key!r} for {scheme}; allowed: {', '.join(sorted(allowed))}"
            )
        if key != "args" and len(query[key]) > 1:
            raise ValueError(f"NCP url {url!r}: parameter {key!r} given more than once")
    baudrate = int(SCHEMES[scheme]["baudrate"])
    if "baudrate" in query:
        raw = query["baudrate"][0]
        if not raw.isdigit() or int(raw) <= 0:
            raise ValueError(f"NCP url {url!r}: baudrate must be a positive integer, not {raw!r}")
        baudrate = int(raw)
    rtscts = False
    if "flow-control" in query:
        flow = query["flow-control"][0].lower()
        if flow not in ("none", "rtscts"):
            raise ValueError(f"NCP url {url!r}: flow-control must be 'none' or 'rtscts', not {flow!r}")
        rtscts = flow == "rtscts"
    record = query["record"][0] if "record" in query else None
    if record is not None and not record.startswith("/"):
        raise ValueError(f"NCP url {url!r}: record must be an absolute file path, not {record!r}")
    return LinkUrl(scheme, path, baudrate, rtscts, tuple(query.get("args", ())), record)


def create_link(url: str | LinkUrl) -> Link:
    """A closed link object for ``url``; call ``await link.open()``."""
    spec = parse_link_url(url) if isinstance(url, str) else url
    if spec.scheme == "spinel+hdlc+uart":
        from .uart import UartLink

        return UartLink(spec.path, spec.baudrate, spec.rtscts)
    if spec.scheme == "cascoda+uart":
        from .cascoda import CascodaLink

        return CascodaLink(spec.path, spec.baudrate)
    from .forkpty import ForkptyLink

    return ForkptyLink(spec.path, spec.args)
