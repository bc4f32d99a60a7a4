"""The error every LwM2M operation fails with: a CoAP response code and a message."""

from __future__ import annotations

from aiocoap.numbers.codes import Code


class LwM2MError(Exception):
    """An operation failed; ``code`` is the CoAP response the client answers with."""

    def __init__(self, code: Code, message: str = "") -> None:
        super().__init__(f"{code.dotted} {message}".rstrip())
        self.code = code
        self.message = message
