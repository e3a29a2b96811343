"""Half a character: updates that place or cut inside a character beyond the BMP.

A Yjs clock counts UTF-16 units, so an emoji is two ids.  No editor places an item
between them or deletes one of them alone, but a script can send such an update,
and yrs and Yjs then read it differently (checked here on yrs: it deletes the
neighbouring character instead; Yjs writes U+FFFD), so the room, the file, the store
and every browser would hold different text for good.  The guard refuses any such
update whole, wherever the emoji came from: the document as loaded, the room's own
updates, another client's, or the same update.
"""

from __future__ import annotations

import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Decoder, Doc, Encoder, Text, merge_updates

from hub_rtc.guard import DocumentGuard
from hub_rtc.guard._scan import scan
from tests.unit.test_guard import EDITOR, FULL, NOTEBOOK, Net, cell, code, edit, notebook_net

EMOJI = "\U0001f600"


def source(doc: Doc, cell_id: str = "free") -> Text:
    text = cell(doc, cell_id)["source"]
    assert isinstance(text, Text)
    return text


def next_clock(doc: Doc) -> int:
    """The clock ``doc``'s own client uses next (from its state vector)."""
    decoder = Decoder(doc.get_state())
    for _ in range(decoder.read_var_uint()):
        if decoder.read_var_uint() == doc.client_id:
            return decoder.read_var_uint()
        decoder.read_var_uint()
    return 0


def delete_only(client: int, clock: int, length: int) -> bytes:
    """An update with no items and one deleted range."""
    encoder = Encoder()
    for number in (0, 1, client, 1, clock, length):
        encoder.write_var_uint(number)
    return encoder.to_bytes()


def placed(client: int, clock: int, text: str, *, origin: tuple[int, int] | None = None,
           right: tuple[int, int] | None = None) -> bytes:
    """An update with one string item between ``origin`` and ``right``, as a
    script would write it by hand (lib0: info byte, ids, the string)."""
    encoder = Encoder()
    for number in (1, 1, client, clock):
        encoder.write_var_uint(number)
    head = encoder.to_bytes() + bytes([4 | (0x80 if origin else 0) | (0x40 if right else 0)])
    ids = Encoder()
    for item in (origin, right):
        if item is not None:
            ids.write_var_uint(item[0])
            ids.write_var_uint(item[1])
    body = Encoder()
    body.write_var_string(text)
    return head + ids.to_bytes() + body.to_bytes() + b"\x00"


def with_emoji(net: Net) -> tuple[int, int]:
    """The sender types ``x😀y`` at the start of the free cell; (its client, x's clock):
    x is that clock, the emoji the next two, y the one after."""
    start = next_clock(net.sender)
    assert net.send(edit(net.sender, lambda d: source(d).insert(0, f"x{EMOJI}y")), EDITOR).accepted
    assert str(source(net.room_doc)).startswith(f"x{EMOJI}y")
    return net.sender.client_id, start


def refused(net: Net, update: bytes, words: str) -> None:
    before = net.room_doc.get_update()
    verdict = net.send(update, EDITOR)
    assert not verdict.accepted and verdict.forward is None and words in verdict.reason
    assert net.room_doc.get_update() == before


@pytest.mark.parametrize(("first", "length"), [(2, 1), (1, 1), (0, 2), (2, 2)],
                         ids=["second half", "first half", "x and the first half",
                              "second half and y"])
def test_a_deletion_that_cuts_an_emoji_is_refused_whole(first: int, length: int) -> None:
    net = notebook_net()
    client, start = with_emoji(net)
    refused(net, delete_only(client, start + first, length), "cuts a character in two")
    assert str(source(net.room_doc)).startswith(f"x{EMOJI}y")


def test_what_yrs_would_have_made_of_it() -> None:
    """Why the guard refuses it: applied as it is, yrs keeps the emoji and deletes y."""
    doc = Doc(client_id=7)
    doc.get("t", type=Text).insert(0, f"x{EMOJI}y")
    other: Doc = Doc()
    other.apply_update(doc.get_update())
    other.apply_update(delete_only(7, 2, 1))
    assert str(other.get("t", type=Text)) != "x\ufffdy"  # what Yjs makes of the same update


@pytest.mark.parametrize(("first", "length", "left"), [
    (1, 2, "xy"), (0, 4, ""), (3, 1, f"x{EMOJI}"), (0, 1, f"{EMOJI}y"), (0, 3, "y")])
def test_deleting_whole_characters_stays_allowed(first: int, length: int, left: str) -> None:
    net = notebook_net()
    client, start = with_emoji(net)
    assert net.send(delete_only(client, start + first, length), EDITOR).accepted
    assert str(source(net.room_doc)) == left + "x = 1\nprint(x)"


def test_an_item_placed_inside_an_emoji_is_refused_whole() -> None:
    net = notebook_net()
    client, start = with_emoji(net)
    clock = next_clock(net.sender)
    refused(net, placed(client, clock, "!", origin=(client, start + 1)), "placed inside a character")
    refused(net, placed(client, clock, "!", right=(client, start + 2)), "placed inside a character")
    # next to it is fine: after the emoji's second unit, or between x and its first
    assert net.send(placed(client, clock, "!", origin=(client, start + 2)), EDITOR).accepted
    assert net.send(placed(client, clock + 1, "?", origin=(client, start), right=(client, start + 1)),
                    EDITOR).accepted
    assert str(source(net.room_doc)).startswith(f"x?{EMOJI}!y")


def test_an_emoji_in_the_document_as_loaded_is_protected() -> None:
    room: Doc = Doc()
    YNotebook(room).set({**NOTEBOOK, "cells": [code("free", f"a{EMOJI}b")]})
    net = Net(room, DocumentGuard(room.get_update()))
    [(client, high)] = scan(room.get_update()).highs
    refused(net, delete_only(client, high + 1, 1), "cuts a character in two")
    assert str(source(net.room_doc)) == f"a{EMOJI}b"


def test_an_emoji_from_the_room_itself_is_protected() -> None:
    net = notebook_net()
    room_text = source(net.room_doc)
    clock = next_clock(net.room_doc)
    room_text.insert(0, EMOJI)  # the room's own change (a reload, another writer): followed
    net.broadcast()
    refused(net, delete_only(net.room_doc.client_id, clock, 1), "cuts a character in two")


def test_an_update_that_brings_an_emoji_and_cuts_it_is_refused() -> None:
    net = notebook_net()
    start = next_clock(net.sender)
    insert = edit(net.sender, lambda d: source(d).insert(0, EMOJI))
    refused(net, merge_updates(insert, delete_only(net.sender.client_id, start + 1, 1)),
            "cuts a character in two")


def test_the_owner_cannot_cut_one_either() -> None:
    net = notebook_net()
    client, start = with_emoji(net)
    verdict = net.send(delete_only(client, start + 2, 1), FULL)
    assert not verdict.accepted and "cuts a character" in verdict.reason
