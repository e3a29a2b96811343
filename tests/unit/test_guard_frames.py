"""y-sync frame helpers: kinds, payloads, and one error type for garbage."""

from __future__ import annotations

import pytest
from pycrdt import (
    Doc,
    Text,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)

from hub_rtc.guard import (
    FrameError,
    FrameKind,
    awareness_frame,
    awareness_payload,
    classify,
    save_request_id,
    sync_frame,
    sync_payload,
)
from hub_rtc.guard.frames import Reader, encode_var_string, encode_var_uint


def a_doc() -> Doc:
    doc: Doc = Doc()
    doc["source"] = Text("hello")
    return doc


def save(request_id: int) -> bytes:
    return bytes([2]) + encode_var_string("save") + encode_var_uint(request_id)


def test_pycrdt_frames_are_classified() -> None:
    doc = a_doc()
    step1 = create_sync_message(doc)
    step2 = handle_sync_message(step1[1:], Doc())
    assert step2 is not None
    assert classify(step1) is FrameKind.SYNC_STEP1
    assert classify(step2) is FrameKind.SYNC_STEP2
    assert classify(create_update_message(doc.get_update())) is FrameKind.SYNC_UPDATE
    assert classify(create_awareness_message(b"\x00")) is FrameKind.AWARENESS


@pytest.mark.parametrize("kind", [FrameKind.SYNC_STEP1, FrameKind.SYNC_STEP2, FrameKind.SYNC_UPDATE])
def test_sync_frames_round_trip(kind: FrameKind) -> None:
    update = a_doc().get_update()
    frame = sync_frame(kind, update)
    assert classify(frame) is kind
    assert sync_payload(frame) == update


def test_sync_frame_matches_pycrdt() -> None:
    update = a_doc().get_update()
    assert sync_frame(FrameKind.SYNC_UPDATE, update) == create_update_message(update)
    with pytest.raises(ValueError):
        sync_frame(FrameKind.AWARENESS, update)


def test_long_payloads_use_multi_byte_lengths() -> None:
    payload = bytes(range(256)) * 100
    frame = sync_frame(FrameKind.SYNC_UPDATE, payload)
    assert frame[:2] == b"\x00\x02" and len(frame) == len(payload) + 5
    assert sync_payload(frame) == payload


def test_awareness_round_trip() -> None:
    frame = awareness_frame(b"\x01\x02\x03")
    assert frame == create_awareness_message(b"\x01\x02\x03")
    assert awareness_payload(frame) == b"\x01\x02\x03"


@pytest.mark.parametrize(("message", "expected"), [
    (save(0), 0),
    (save(300), 300),
    (bytes([2]) + encode_var_string("other"), None),
    (create_update_message(b"\x00\x00"), None),
    (awareness_frame(b"\x00"), None),
])
def test_save_requests(message: bytes, expected: int | None) -> None:
    assert save_request_id(message) == expected
    if expected is not None:
        assert classify(message) is FrameKind.SAVE


def test_raw_messages_other_than_save() -> None:
    assert classify(bytes([2]) + encode_var_string("ping")) is FrameKind.RAW
    assert classify(save(7)) is FrameKind.SAVE


GARBAGE = [
    b"",
    b"\x00",                                 # sync without a step
    b"\x00\x07\x00",                         # unknown sync step
    b"\x00\x02",                             # update without payload
    b"\x00\x02\x05abc",                      # payload shorter than announced
    b"\x00\x02\x01ab",                       # trailing bytes
    b"\x01",                                 # awareness without payload
    b"\x02",                                 # raw without string
    b"\x02\x04sav",                          # truncated string
    b"\x02\x02\xff\xfe",                     # string not UTF-8
    bytes([2]) + encode_var_string("save"),  # save without an id
    b"\x09\x00",                             # unknown message type
    b"\xff" * 20,                            # endless varuint
]


@pytest.mark.parametrize("message", GARBAGE)
def test_garbage_raises_frame_error(message: bytes) -> None:
    with pytest.raises(FrameError):
        classify(message)


@pytest.mark.parametrize("message", [m for m in GARBAGE if m[:1] == b"\x00"])
def test_garbage_sync_payload_raises_frame_error(message: bytes) -> None:
    with pytest.raises(FrameError):
        sync_payload(message)


@pytest.mark.parametrize("call", [sync_payload, awareness_payload])
def test_payload_of_the_wrong_kind(call: object) -> None:
    wrong = awareness_frame(b"\x00") if call is sync_payload else sync_frame(FrameKind.SYNC_UPDATE, b"")
    with pytest.raises(FrameError):
        call(wrong)  # type: ignore[operator]


def test_frame_error_is_a_value_error() -> None:
    assert issubclass(FrameError, ValueError)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32, 2**53 + 1])
def test_varuint_round_trip(value: int) -> None:
    reader = Reader(encode_var_uint(value))
    assert reader.var_uint() == value and reader.done


def test_strings_are_measured_in_bytes() -> None:
    encoded = encode_var_string("Zoë ✓")
    assert encoded[0] == len("Zoë ✓".encode())
    assert Reader(encoded).var_string() == "Zoë ✓"


def test_a_client_replica_receives_sync_frames() -> None:
    from pycrdt import Doc, Text, create_sync_message, handle_sync_message

    from hub_rtc.guard.frames import client_receive_sync

    room, client = Doc(), Doc()
    room["source"] = Text("hello")
    step1 = create_sync_message(room)  # the room asks what the client has
    reply, synced = client_receive_sync(step1, client)
    assert reply is not None and not synced
    step2 = handle_sync_message(create_sync_message(client)[1:], room)  # the room answers the client
    assert step2 is not None
    reply, synced = client_receive_sync(step2, client)
    assert reply is None and synced
    assert str(client.get("source", type=Text)) == "hello"
