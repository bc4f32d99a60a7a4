"""Spinel LAST_STATUS codes (spinel.h ``spinel_status_t``)."""

from __future__ import annotations

import enum

__all__ = ["RESET_BEGIN", "RESET_END", "Status", "is_reset", "status_name"]


class Status(enum.IntEnum):
    """``SPINEL_STATUS_*`` without the prefix."""

    OK = 0
    FAILURE = 1
    UNIMPLEMENTED = 2
    INVALID_ARGUMENT = 3
    INVALID_STATE = 4
    INVALID_COMMAND = 5
    INVALID_INTERFACE = 6
    INTERNAL_ERROR = 7
    SECURITY_ERROR = 8
    PARSE_ERROR = 9
    IN_PROGRESS = 10
    NOMEM = 11
    BUSY = 12
    PROP_NOT_FOUND = 13
    DROPPED = 14
    EMPTY = 15
    CMD_TOO_BIG = 16
    NO_ACK = 17
    CCA_FAILURE = 18
    ALREADY = 19
    ITEM_NOT_FOUND = 20
    INVALID_COMMAND_FOR_PROP = 21
    UNKNOWN_NEIGHBOR = 22
    NOT_CAPABLE = 23
    RESPONSE_TIMEOUT = 24
    SWITCHOVER_DONE = 25
    SWITCHOVER_FAILED = 26

    JOIN_FAILURE = 104
    JOIN_SECURITY = 105
    JOIN_NO_PEERS = 106
    JOIN_INCOMPATIBLE = 107
    JOIN_RSP_TIMEOUT = 108
    JOIN_SUCCESS = 109

    RESET_POWER_ON = 112
    RESET_EXTERNAL = 113
    RESET_SOFTWARE = 114
    RESET_FAULT = 115
    RESET_CRASH = 116
    RESET_ASSERT = 117
    RESET_OTHER = 118
    RESET_UNKNOWN = 119
    RESET_WATCHDOG = 120

    @property
    def spinel_name(self) -> str:
        return f"SPINEL_STATUS_{self.name}"


RESET_BEGIN = 112  # SPINEL_STATUS_RESET__BEGIN
RESET_END = 128  # SPINEL_STATUS_RESET__END (exclusive)


def is_reset(status: int) -> bool:
    """True for any reset reason: the NCP restarted and lost its runtime state."""
    return RESET_BEGIN <= status < RESET_END


def status_name(status: int) -> str:
    """Readable name for logs, also for codes this table does not know."""
    try:
        return Status(status).name
    except ValueError:
        if is_reset(status):
            return f"RESET_{status}"
        return f"STATUS_{status}"
