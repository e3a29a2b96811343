"""The relay: y-sync frames between a client of the service and the room on a
shared server, with back-pressure, bounded holding and reconnects.  Imports
only asyncio, the frame kinds of :mod:`hub_rtc.guard` and the shared
:mod:`hub_rtc.protocol`: no tornado, no records; which room a relay URL names
is the domain's to say, before a relay starts."""

from . import codes
from .backoff import Backoff
from .frames import EMPTY_STEP1, peek
from .held import HeldFrames, HeldOverflow
from .relay import Client, Closing, Connect, ConnectError, Link, LinkClosed, Relay, RelayLimits

__all__ = [
    "EMPTY_STEP1",
    "Backoff",
    "Client",
    "Closing",
    "Connect",
    "ConnectError",
    "HeldFrames",
    "HeldOverflow",
    "Link",
    "LinkClosed",
    "Relay",
    "RelayLimits",
    "codes",
    "peek",
]
