"""y-sync websocket frames as jupyter-collaboration speaks them.

A frame starts with a varuint message type: ``0`` sync (then a varuint sync step:
``0`` step 1, ``1`` step 2, ``2`` update, then the payload as varbytes), ``1``
awareness (payload as varbytes) and ``2`` jupyter's raw message (a varstring; the
string ``save`` is followed by a varuint request id).  Every parser here raises a
single :class:`FrameError` on malformed input, so the adapter has one thing to catch.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pycrdt import Doc, handle_sync_message

__all__ = [
    "FrameError",
    "FrameKind",
    "Reader",
    "awareness_frame",
    "awareness_payload",
    "classify",
    "encode_var_bytes",
    "encode_var_string",
    "encode_var_uint",
    "save_request_id",
    "sync_frame",
    "sync_payload",
]

_SYNC, _AWARENESS, _RAW = 0, 1, 2
_STEP1, _STEP2, _UPDATE = 0, 1, 2
# 10 bytes of 7 bits hold any 64-bit number; anything longer is garbage, not a number.
_MAX_VARUINT_BYTES = 10


class FrameError(ValueError):
    """A frame or payload that does not follow the protocol."""


class FrameKind(Enum):
    SYNC_STEP1 = "sync_step1"
    SYNC_STEP2 = "sync_step2"
    SYNC_UPDATE = "sync_update"
    AWARENESS = "awareness"
    SAVE = "save"
    RAW = "raw"


_SYNC_STEPS = {_STEP1: FrameKind.SYNC_STEP1, _STEP2: FrameKind.SYNC_STEP2, _UPDATE: FrameKind.SYNC_UPDATE}
_STEP_OF = {kind: step for step, kind in _SYNC_STEPS.items()}


class Reader:
    """Reads lib0 varuints, varbytes and varstrings, raising FrameError past the end."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def done(self) -> bool:
        return self._pos >= len(self._data)

    def var_uint(self) -> int:
        value = 0
        for shift in range(0, 7 * _MAX_VARUINT_BYTES, 7):
            if self._pos >= len(self._data):
                raise FrameError("truncated varuint")
            byte = self._data[self._pos]
            self._pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
        raise FrameError("varuint too long")

    def var_bytes(self) -> bytes:
        length = self.var_uint()
        end = self._pos + length
        if end > len(self._data):
            raise FrameError("truncated payload")
        chunk = self._data[self._pos : end]
        self._pos = end
        return bytes(chunk)

    def var_string(self) -> str:
        try:
            return self.var_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise FrameError("string is not UTF-8") from e

    def expect_end(self) -> None:
        if not self.done:
            raise FrameError("trailing bytes after the payload")


def encode_var_uint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varuint cannot be negative")
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_var_bytes(data: bytes) -> bytes:
    return encode_var_uint(len(data)) + data


def encode_var_string(text: str) -> bytes:
    # The length prefix counts UTF-8 bytes, as lib0 does (not characters).
    return encode_var_bytes(text.encode("utf-8"))


def classify(message: bytes) -> FrameKind:
    """The kind of a complete client frame; raises FrameError if it is malformed."""
    reader = Reader(message)
    kind = reader.var_uint()
    if kind == _SYNC:
        step = reader.var_uint()
        if step not in _SYNC_STEPS:
            raise FrameError(f"unknown sync step {step}")
        reader.var_bytes()
        reader.expect_end()
        return _SYNC_STEPS[step]
    if kind == _AWARENESS:
        reader.var_bytes()
        reader.expect_end()
        return FrameKind.AWARENESS
    if kind == _RAW:
        return FrameKind.SAVE if _raw_save_id(reader) is not None else FrameKind.RAW
    raise FrameError(f"unknown message type {kind}")


def sync_payload(message: bytes) -> bytes:
    """The payload of a sync frame: the update (step 2, update) or state vector (step 1)."""
    reader = Reader(message)
    if reader.var_uint() != _SYNC:
        raise FrameError("not a sync message")
    if reader.var_uint() not in _SYNC_STEPS:
        raise FrameError("unknown sync step")
    payload = reader.var_bytes()
    reader.expect_end()
    return payload


def sync_frame(kind: FrameKind, payload: bytes) -> bytes:
    """A sync frame of ``kind`` (one of the SYNC_* kinds) carrying ``payload``."""
    if kind not in _STEP_OF:
        raise ValueError(f"{kind} is not a sync kind")
    return bytes([_SYNC, _STEP_OF[kind]]) + encode_var_bytes(payload)


def awareness_payload(message: bytes) -> bytes:
    """The awareness update inside an awareness frame."""
    reader = Reader(message)
    if reader.var_uint() != _AWARENESS:
        raise FrameError("not an awareness message")
    payload = reader.var_bytes()
    reader.expect_end()
    return payload


def awareness_frame(payload: bytes) -> bytes:
    return bytes([_AWARENESS]) + encode_var_bytes(payload)


def save_request_id(message: bytes) -> int | None:
    """The request id of a jupyter ``save`` raw message; None for any other message."""
    reader = Reader(message)
    if reader.var_uint() != _RAW:
        return None
    return _raw_save_id(reader)


def _raw_save_id(reader: Reader) -> int | None:
    # jupyter_server_ydoc reads the string, then the id only when the string is "save".
    if reader.var_string() != "save":
        return None
    return reader.var_uint()


def client_receive_sync(message: bytes, doc: Doc[Any]) -> tuple[bytes | None, bool]:
    """For a *client* replica: apply a SYNC frame from the room to ``doc``.

    Returns the reply to send (the answer to the room's step 1, if any) and
    whether this frame completed the initial sync (a step 2).  The test and
    benchmark clients share it.
    """
    reply = handle_sync_message(message[1:], doc)
    return reply, len(message) > 1 and message[1] == _STEP2
