"""The LwM2M client engine: registration state machine, server operations, many clients per process."""

from .engine import LwM2MEngine
from .operations import OpRequest, OpResponse, ServerOperations
from .ramp import RegisterRamp
from .registration import LwM2MClient
from .state import ClientSettings, Registration, RegistrationRejected, RegistrationState

__all__ = [
    "ClientSettings",
    "LwM2MClient",
    "LwM2MEngine",
    "OpRequest",
    "OpResponse",
    "RegisterRamp",
    "Registration",
    "RegistrationRejected",
    "RegistrationState",
    "ServerOperations",
]
