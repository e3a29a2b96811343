"""The CRDT guard: per-update edit rights for a collaborative document.

Imports only pycrdt and the standard library, so it runs and is tested without a
server.  :class:`DocumentGuard` checks document updates (:mod:`.document` says
which module does what) and returns a :class:`Verdict`, :class:`AwarenessPin`
filters awareness, :mod:`.frames` reads and writes y-sync websocket frames.
"""

from . import frames
from .awareness import AwarenessEntry, AwarenessPin, decode_awareness, encode_awareness
from .document import DEFAULT_ROOTS, DocumentGuard, RootType
from .frames import (
    FrameError,
    FrameKind,
    awareness_frame,
    awareness_payload,
    classify,
    save_request_id,
    sync_frame,
    sync_payload,
)
from .rights import Limits, Rights
from .verdict import Touch, Verdict

__all__ = [
    "DEFAULT_ROOTS",
    "AwarenessEntry",
    "AwarenessPin",
    "DocumentGuard",
    "FrameError",
    "FrameKind",
    "Limits",
    "Rights",
    "RootType",
    "Touch",
    "Verdict",
    "awareness_frame",
    "awareness_payload",
    "classify",
    "decode_awareness",
    "encode_awareness",
    "frames",
    "save_request_id",
    "sync_frame",
    "sync_payload",
]
