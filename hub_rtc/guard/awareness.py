"""Awareness updates are client-asserted: pin each connection to one client id and
overwrite the ``user`` field with the identity the hub vouches for.

An awareness update is a varuint entry count, then per entry a varuint client id, a
varuint clock and the client's state as a JSON varstring (``null``: the client left).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .frames import FrameError, Reader, encode_var_string, encode_var_uint

__all__ = ["AwarenessEntry", "AwarenessPin", "decode_awareness", "encode_awareness"]


@dataclass(frozen=True)
class AwarenessEntry:
    client_id: int
    clock: int
    #: the parsed JSON state; None when the client announces it left
    state: Any


def decode_awareness(payload: bytes) -> list[AwarenessEntry]:
    """All entries of an awareness update; raises FrameError if it is malformed."""
    reader = Reader(payload)
    entries = [_read_entry(reader) for _ in range(reader.var_uint())]
    reader.expect_end()
    return entries


def _read_entry(reader: Reader) -> AwarenessEntry:
    client_id = reader.var_uint()
    clock = reader.var_uint()
    try:
        state = json.loads(reader.var_string())
    except json.JSONDecodeError as e:
        raise FrameError("awareness state is not JSON") from e
    return AwarenessEntry(client_id, clock, state)


def encode_awareness(entries: Iterable[AwarenessEntry]) -> bytes:
    entries = list(entries)
    parts = [encode_var_uint(len(entries))]
    for entry in entries:
        state = json.dumps(entry.state, separators=(",", ":"), ensure_ascii=False)
        parts += [encode_var_uint(entry.client_id), encode_var_uint(entry.clock), encode_var_string(state)]
    return b"".join(parts)


class AwarenessPin:
    """Awareness filter for one websocket connection.

    The connection is pinned to the first client id it announces a state for; it may
    then speak only for that id (a client cannot set or clear another's cursor), and
    whatever identity it claims is replaced by ``user``.
    """

    def __init__(self) -> None:
        self.client_id: int | None = None

    def rewrite(self, payload: bytes, user: Mapping[str, Any]) -> bytes | None:
        """The payload to forward, or None when nothing of it may be forwarded."""
        try:
            entries = decode_awareness(payload)
        except FrameError:
            return None
        kept = [self._pinned(entry, user) for entry in entries]
        remaining = [entry for entry in kept if entry is not None]
        return encode_awareness(remaining) if remaining else None

    def _pinned(self, entry: AwarenessEntry, user: Mapping[str, Any]) -> AwarenessEntry | None:
        if entry.state is None:
            # Leaving is only ever announced for the pinned id: pinning on a "left"
            # entry would let a client log someone else out.
            return entry if entry.client_id == self.client_id else None
        if not isinstance(entry.state, dict):
            return None
        if self.client_id is None:
            self.client_id = entry.client_id
        if entry.client_id != self.client_id:
            return None
        return AwarenessEntry(entry.client_id, entry.clock, {**entry.state, "user": dict(user)})
