"""What a client registration is made of: its settings, its state, what the server gave it, a refusal."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

from ..codecs import ContentFormat
from ..transport import Response

#: the formats a Send may carry: SenML (LwM2M 1.1 §5.5.4) and LwM2M CBOR (1.2), by their gatewayctl names
SEND_FORMATS = {ContentFormat.SENML_JSON: "senml-json", ContentFormat.SENML_CBOR: "senml-cbor",
                ContentFormat.LWM2M_CBOR: "lwm2m-cbor"}


class RegistrationState(enum.StrEnum):
    BOOTSTRAPPING = "bootstrapping"
    REGISTERING = "registering"
    REGISTERED = "registered"
    UPDATING = "updating"
    DEREGISTERED = "deregistered"
    DISABLED = "disabled"
    FAILED = "failed"


@dataclass(slots=True)
class ClientSettings:
    """How one client registers; ``lifetime``/``binding`` of a Server instance win over these."""

    lifetime: int = 300
    binding: str = "U"
    queue_mode: bool = False
    lwm2m_version: str = "1.1"
    #: send the Update this many seconds before the lifetime ends (at most half the lifetime)
    update_margin: float = 15.0
    #: an Update at least this often keeps NAT bindings alive (0: only before the lifetime ends)
    keepalive: float = 60.0
    request_timeout: float = 30.0
    backoff_initial: float = 2.0
    backoff_max: float = 300.0
    #: failed Register attempts before falling back to the Bootstrap-Server (0: never)
    bootstrap_after: int = 3
    bootstrap_timeout: float = 60.0
    #: queue mode: notifications kept while offline (the oldest dropped beyond), and how long the client
    #: stays reachable after it spoke to the server (MAX_TRANSMIT_WAIT)
    queue_limit: int = 100
    awake_time: float = 93.0
    #: what Reads without Accept answer in; None: by version (see :attr:`default_format`)
    preferred_format: int | None = None

    @property
    def default_format(self) -> int:
        """The format the client registers as its preferred one: LwM2M CBOR for 1.2, SenML JSON for 1.1,
        TLV for 1.0.

        LwM2M CBOR (11544) is 1.2's own compact format, which every 1.2 server reads. SenML JSON for 1.1
        because every 1.1 server takes it: Wakaama's ``lwm2mserver`` refuses a Register whose root link
        says ``ct=11542`` (it accepts only 110, 112 and 11543 there) and reads TLV from a client that
        gives no ``ct``; LwM2M 1.0 has no ``ct`` and TLV is its default.
        """
        if self.preferred_format is not None:
            return self.preferred_format
        if self.lwm2m_version == "1.2":
            return ContentFormat.LWM2M_CBOR
        return ContentFormat.TLV if self.lwm2m_version == "1.0" else ContentFormat.SENML_JSON

    @property
    def send_format(self) -> int:
        """What Send (``POST /dp``) carries: the preferred format if Send allows it, else LwM2M CBOR when
        registered as 1.2 (the rule Reads follow) and SenML CBOR before (Send is 1.1's, SenML only)."""
        if self.preferred_format in SEND_FORMATS:
            return self.preferred_format
        return ContentFormat.LWM2M_CBOR if self.lwm2m_version == "1.2" else ContentFormat.SENML_CBOR


class RegistrationRejected(Exception):
    """The server answered Register/Bootstrap-Request with an error code."""

    def __init__(self, what: str, response: Response, hint: str = "") -> None:
        super().__init__(f"{what} rejected with {response.dotted}{f' ({hint})' if hint else ''}")
        self.response = response


@dataclass(slots=True)
class Registration:
    """What the server gave us: where our registration lives, until when (wall-clock time)."""

    server_uri: str
    location: tuple[str, ...]
    lifetime: int
    expires: float
    objects: str = ""
    registered_at: float = field(default_factory=time.time)
