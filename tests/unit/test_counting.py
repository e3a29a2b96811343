"""The counting rules (what is an edit, what is a refusal), against what a real
JupyterLab sends.

``data/lab_streams.json`` holds the y-sync frames JupyterLab 4 sent from headless
Chromium (recorded by ``tests/integration/record_lab_streams.py``): ed, an editor,
opens ``nb.ipynb``, types 18 characters into cell ``free`` and 6 into the locked cell;
vi, a viewer, opens it and types 5 into ``spare``; olive, the owner, opens it.  Every
keystroke JupyterLab sends also writes the notebook's ``state`` (``dirty``), and
opening it writes ``state`` and, with a kernel, the notebook's metadata.

Each stream is replayed through the guarded room's connection logic into a room that
starts from the document as that person found it and applies what the room sent
them too (its own writes, which later keystrokes build on).
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc

from hub_rtc.guard import FrameKind, Touch, Verdict, frames
from hub_rtc.singleuser.connection import RoomConnection
from hub_rtc.singleuser.counting import Refusal, edited_cells, refusal
from hub_rtc.singleuser.presence import PresenceReporter
from hub_rtc.singleuser.roomguards import RoomGuards
from hub_rtc.singleuser.tally import Tally
from tests.unit.test_room_connection import NOTEBOOK_ROOM, PATH, member

STREAMS = json.loads((Path(__file__).parent / "data" / "lab_streams.json").read_text())
TYPED = STREAMS["_about"]["typed"]
_DOCUMENT = (FrameKind.SYNC_STEP2, FrameKind.SYNC_UPDATE)

#: the rights each recorded person had (olive owns the server: nothing is protected)
ACCESS = {
    "ed": member("editor", protected=frozenset({"locked"})),
    "vi": member("viewer"),
    "olive": member("editor"),
}

Counts = dict[tuple[str, str, str], int]


class RecordedRoom:
    """The room as the recorded person found it (its first sync step 2 to them)."""

    def __init__(self, initial: bytes) -> None:
        self.ydoc: Doc = Doc()
        self.take(initial)

    def take(self, frame: bytes | None) -> None:
        """Apply a document frame (the room's own, or one the connection passed on)."""
        if frame is not None and frames.classify(frame) in _DOCUMENT:
            self.ydoc.apply_update(frames.sync_payload(frame))


def replay(person: str) -> tuple[dict[str, Counts], RecordedRoom]:
    """``person``'s stream through a :class:`RoomConnection`: what it counted per phase."""
    stream = STREAMS[person]
    room = RecordedRoom(base64.b64decode(stream["initial"]))
    tally = Tally()
    conn = RoomConnection(NOTEBOOK_ROOM, PATH, person, tally=tally, presence=PresenceReporter(),
                          log=logging.getLogger("test"))
    conn.set_access(ACCESS[person])
    conn.follow(RoomGuards(), room)
    counts: dict[str, Counts] = {}
    for entry in stream["frames"]:
        frame = base64.b64decode(entry["frame"])
        if entry["way"] == "received":
            room.take(frame)
            continue
        forward, close = conn.receive(frame)
        assert close is None, (entry, close)
        room.take(forward)
        phase = counts.setdefault(entry["phase"], {})
        for events in tally.drain().values():
            for e in events:
                key = (e["kind"], e["path"], e.get("cell_id", ""))
                phase[key] = phase.get(key, 0) + e["count"]
    return counts, room


def sent_updates(person: str, phase: str) -> int:
    """How many document updates ``person``'s JupyterLab sent in ``phase``."""
    return sum(1 for e in STREAMS[person]["frames"]
               if e["way"] == "sent" and e["phase"] == phase
               and frames.classify(base64.b64decode(e["frame"])) is FrameKind.SYNC_UPDATE)


def source(room: RecordedRoom, cell_id: str) -> str:
    cell = next(c for c in room.ydoc.get("cells", type=Array) if c.get("id") == cell_id)
    return str(cell["source"])


# -- recorded from JupyterLab -------------------------------------------------------


@pytest.mark.parametrize("person", ["ed", "vi", "olive"])
def test_opening_a_notebook_counts_nothing(person: str) -> None:
    # JupyterLab did write on opening (state; the metadata once ed's kernel started)
    assert sent_updates(person, "open") >= 1
    counts, _ = replay(person)
    assert counts.get("open", {}) == {}


def test_typing_18_characters_counts_18_edits_on_that_cell_only() -> None:
    assert len(TYPED) == 18 and sent_updates("ed", "type") == 18  # a keystroke an update
    counts, room = replay("ed")
    assert counts["type"] == {("edit", "nb.ipynb", "free"): 18}
    assert source(room, "free").startswith(TYPED)


def test_each_refused_keystroke_counts_one_refusal_and_no_edit() -> None:
    counts, room = replay("ed")
    # each keystroke into the locked cell also wrote the state, which ed may: not an edit
    assert counts["locked"] == {("refused", "nb.ipynb", "locked"): sent_updates("ed", "locked")}
    assert "SECRET" not in source(room, "locked")


def test_a_viewers_keystrokes_count_one_refusal_each_and_their_state_writes_none() -> None:
    counts, room = replay("vi")
    # each keystroke wrote the cell and the state, both refused: one attempt, on the cell
    assert counts["type"] == {("refused", "nb.ipynb", "spare"): 5}
    assert "vivid" not in source(room, "spare")


# -- the rules, one case each -------------------------------------------------------


def verdict(touched: tuple[Touch, ...] = (), refused: tuple[Touch, ...] = (), **extra: Any) -> Verdict:
    return Verdict(accepted=not refused and not extra, forward=b"", touched=touched,
                   refused=refused, **extra)


@pytest.mark.parametrize(("touched", "cells"), [
    ((Touch("a", "source"), Touch("a", "outputs"), Touch("a", "metadata")), ["a"]),
    ((Touch("a", "delete"), Touch("a", "insert")), ["a"]),          # a move is one edit
    ((Touch("a", "source"), Touch("b", "insert")), ["a", "b"]),    # one per cell changed
    ((Touch(None, "state"), Touch(None, "notebook"), Touch(None, "document")), []),
    ((Touch("a", "execution_count"), Touch("a", "execution_state")), []),  # a run's bookkeeping
    ((Touch(None, "insert"),), [None]),                             # a new cell without an id
])
def test_what_is_an_edit(touched: tuple[Touch, ...], cells: list[str | None]) -> None:
    assert edited_cells(verdict(touched)) == cells


@pytest.mark.parametrize(("given", "expected"), [
    (verdict(refused=(Touch("a", "source"), Touch("b", "source"))), Refusal("a")),  # one per update
    (verdict(refused=(Touch(None, "state"), Touch("a", "source"))), Refusal("a")),
    (verdict(refused=(Touch(None, "state"),)), None),                # JupyterLab's own write
    (verdict(refused=(Touch("a", "execution_state"),)), None),
    (verdict(refused=(Touch(None, "notebook"),)), Refusal(None)),    # the notebook's metadata
    (verdict(touched=(Touch("a", "source"),)), None),                # accepted
    (Verdict(False, None, pending=True, reason="too large"), Refusal(None)),  # refused whole
    (Verdict(False, None, pending=True), None),                      # out of order: no attempt
])
def test_what_is_a_refusal(given: Verdict, expected: Refusal | None) -> None:
    assert refusal(given) == expected
