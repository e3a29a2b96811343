"""Reading just enough of Yjs v1 updates to tell whether a doc integrated one fully.

pycrdt keeps an update whose dependencies are missing *pending* inside the doc,
silently, and integrates it later when they arrive.  The guard must notice at once:
a pending update cannot be checked, and must never slip into the mirror later.
"""

from __future__ import annotations

from pycrdt import get_update

from .frames import FrameError, Reader

#: an update with no items and an empty delete set
_NOTHING = b"\x00\x00"


def decode_state_vector(state: bytes) -> dict[int, int]:
    """client id -> number of items the doc holds from that client."""
    reader = Reader(state)
    return {reader.var_uint(): reader.var_uint() for _ in range(reader.var_uint())}


def fully_integrated(update: bytes, state: bytes) -> bool:
    """Whether every item and every deletion in ``update`` is part of a doc whose
    state vector is ``state`` (taken after applying the update)."""
    # What of the update the doc still lacks: its items beyond the doc's state vector,
    # then the update's delete set (always carried along whole).
    rest = get_update(update, state)
    if rest == _NOTHING:  # the usual case, decided without decoding anything
        return True
    reader = Reader(rest)
    try:
        return reader.var_uint() == 0 and (reader.done or _deletions_known(reader, state))
    except FrameError:
        return False


def _deletions_known(reader: Reader, state: bytes) -> bool:
    # A deletion of an item the doc has never seen stays pending as well.
    known = decode_state_vector(state)
    for _ in range(reader.var_uint()):
        client = reader.var_uint()
        for _ in range(reader.var_uint()):
            clock, length = reader.var_uint(), reader.var_uint()
            if clock + length > known.get(client, 0):
                return False
    return True
