"""What the relay needs to know about a y-sync frame: its kind, from its first bytes.

The relay never parses payloads: the guarded room on the shared server does,
for every frame, as the real user.  Message types and sync steps are lib0
varuints below 128, so one byte each.
"""

from __future__ import annotations

from ..guard.frames import FrameKind

__all__ = ["EMPTY_STEP1", "FrameKind", "peek"]

#: a sync step 1 with an empty state vector: "send me everything you have"
EMPTY_STEP1 = b"\x00\x00\x01\x00"

_SYNC_STEPS = {0: FrameKind.SYNC_STEP1, 1: FrameKind.SYNC_STEP2, 2: FrameKind.SYNC_UPDATE}


def peek(frame: bytes) -> FrameKind | None:
    """The kind of ``frame`` by its header alone; None for anything else (the room decides)."""
    if not frame:
        return None
    head = frame[0]
    if head == 0:
        return _SYNC_STEPS.get(frame[1]) if len(frame) > 1 else None
    if head == 1:
        return FrameKind.AWARENESS
    if head == 2:
        return FrameKind.RAW
    return None
