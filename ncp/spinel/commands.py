"""Spinel command ids (spinel.h ``SPINEL_CMD_*``)."""

from __future__ import annotations

import enum

__all__ = ["PROP_COMMANDS", "Command"]


class Command(enum.IntEnum):
    """``SPINEL_CMD_*`` without the prefix."""

    NOOP = 0
    RESET = 1
    PROP_VALUE_GET = 2
    PROP_VALUE_SET = 3
    PROP_VALUE_INSERT = 4
    PROP_VALUE_REMOVE = 5
    PROP_VALUE_IS = 6
    PROP_VALUE_INSERTED = 7
    PROP_VALUE_REMOVED = 8
    NET_SAVE = 9
    NET_CLEAR = 10
    NET_RECALL = 11
    HBO_OFFLOAD = 12
    HBO_RECLAIM = 13
    HBO_DROP = 14
    HBO_OFFLOADED = 15
    HBO_RECLAIMED = 16
    HBO_DROPPED = 17
    PEEK = 18
    PEEK_RET = 19
    POKE = 20
    PROP_VALUE_MULTI_GET = 21
    PROP_VALUE_MULTI_SET = 22
    PROP_VALUES_ARE = 23

    @property
    def spinel_name(self) -> str:
        return f"SPINEL_CMD_{self.name}"


# Commands whose payload starts with a single property id (then the value).
PROP_COMMANDS = frozenset(range(Command.PROP_VALUE_GET, Command.PROP_VALUE_REMOVED + 1))
