"""Awareness is client-asserted: the pin keeps a connection to one client id and
puts the hub's identity in ``user``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pycrdt import Awareness, Doc

from hub_rtc.guard import AwarenessEntry, AwarenessPin, decode_awareness, encode_awareness
from hub_rtc.guard.frames import encode_var_string, encode_var_uint

ALICE = {"username": "p-alice", "name": "alice", "display_name": "Alice", "color": "#f00"}


def update(*entries: tuple[int, int, Any]) -> bytes:
    return encode_awareness(AwarenessEntry(client, clock, state) for client, clock, state in entries)


def states(payload: bytes | None) -> list[tuple[int, Any]]:
    assert payload is not None
    return [(entry.client_id, entry.state) for entry in decode_awareness(payload)]


def test_decodes_what_pycrdt_encodes() -> None:
    awareness = Awareness(Doc())
    awareness.set_local_state({"user": {"name": "x"}, "cursor": [1, 2]})
    payload = awareness.encode_awareness_update([awareness.client_id])
    [entry] = decode_awareness(payload)
    assert entry.client_id == awareness.client_id
    assert entry.state == {"user": {"name": "x"}, "cursor": [1, 2]}


def test_pycrdt_reads_what_the_pin_writes() -> None:
    payload = AwarenessPin().rewrite(update((7, 1, {"user": {"name": "Mallory"}, "n": "Zoë ✓"})), ALICE)
    assert payload is not None
    awareness = Awareness(Doc())
    awareness.apply_awareness_update(payload, "test")
    assert awareness.states[7] == {"user": ALICE, "n": "Zoë ✓"}


def test_identity_is_overwritten() -> None:
    pin = AwarenessPin()
    claimed = {"user": {"name": "the teacher", "username": "teacher"}, "cursors": []}
    assert states(pin.rewrite(update((7, 1, claimed)), ALICE)) == [(7, {"user": ALICE, "cursors": []})]
    assert states(pin.rewrite(update((7, 2, {"cursors": [1]})), ALICE)) == [
        (7, {"user": ALICE, "cursors": [1]})]


def test_pinned_to_the_first_client_id() -> None:
    pin = AwarenessPin()
    first = pin.rewrite(update((7, 1, {}), (8, 1, {"user": {}})), ALICE)
    assert states(first) == [(7, {"user": ALICE})]
    assert pin.client_id == 7
    assert pin.rewrite(update((8, 2, {})), ALICE) is None
    assert states(pin.rewrite(update((8, 3, {}), (7, 2, {"a": 1})), ALICE)) == [(7, {"a": 1, "user": ALICE})]


def test_leaving_is_kept_only_for_the_pinned_id() -> None:
    pin = AwarenessPin()
    # Nobody may announce that someone else left, not even before being pinned.
    assert pin.rewrite(update((8, 5, None)), ALICE) is None
    assert pin.client_id is None
    pin.rewrite(update((7, 1, {})), ALICE)
    assert pin.rewrite(update((8, 6, None)), ALICE) is None
    assert states(pin.rewrite(update((7, 2, None)), ALICE)) == [(7, None)]


def test_the_given_identity_is_copied() -> None:
    user = dict(ALICE)
    payload = AwarenessPin().rewrite(update((7, 1, {})), user)
    user["name"] = "changed later"
    assert states(payload) == [(7, {"user": ALICE})]


def test_non_object_states_are_dropped() -> None:
    assert AwarenessPin().rewrite(update((7, 1, [1, 2]), (7, 1, "x")), ALICE) is None


def entry(client: int, clock: int, raw: bytes) -> bytes:
    return encode_var_uint(client) + encode_var_uint(clock) + encode_var_uint(len(raw)) + raw


@pytest.mark.parametrize("payload", [
    b"",
    b"\x01",                                          # one entry announced, none there
    b"\x02" + entry(7, 1, b"{}"),                     # two announced, one there
    b"\x01" + entry(7, 1, b"{not json"),
    b"\x01" + entry(7, 1, b"\xff\xfe"),               # not UTF-8
    b"\x01" + entry(7, 1, b"{}") + b"extra",
    b"\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # endless varuint
    b"\x00",                                          # nothing in it
])
def test_malformed_payloads_are_dropped(payload: bytes) -> None:
    assert AwarenessPin().rewrite(payload, ALICE) is None


def test_non_ascii_state_keeps_its_byte_length() -> None:
    raw = json.dumps({"user": {"name": "Zoë"}}, ensure_ascii=False).encode()
    payload = b"\x01" + entry(7, 1, raw)
    assert decode_awareness(payload)[0].state == {"user": {"name": "Zoë"}}
    assert encode_var_string("ë")[0] == 2
