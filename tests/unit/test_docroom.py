"""The guarded room's hot path without a server: a real room, a real store, a plain file.

The file loader and the event logger are the two things a room needs from
jupyter_server; here they are a text file held in memory (``PlainFile``) and a
list.  The room, its document and its SQLite store are the real ones.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pycrdt import (
    Doc,
    Text,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    read_message,
)

from hub_rtc.singleuser.docroom import AWARENESS_SECONDS, GuardedDocumentRoom
from hub_rtc.singleuser.updatelog import on_file

ROOM = "text:file:abc"
STORE_PATH = ".file:abc.y"


class PlainFile:
    """What a room asks of jupyter-collaboration's FileLoader, for one text file."""

    path = "notes.txt"

    def __init__(self, content: str, modified: float) -> None:
        self.content = content
        self.modified = modified
        self.saves: list[str] = []

    def observe(self, room_id: str, outofband: Any, filepath: Any) -> None:
        pass

    def unobserve(self, room_id: str) -> None:
        pass

    async def load_content(self, file_format: str, file_type: str) -> dict[str, Any]:
        return {"content": self.content, "format": file_format, "type": file_type,
                "last_modified": datetime.fromtimestamp(self.modified, UTC)}

    async def maybe_save_content(self, model: dict[str, Any]) -> dict[str, Any]:
        self.content = model["content"]
        self.saves.append(self.content)
        return {"hash": None}


class Events:
    def __init__(self) -> None:
        self.emitted: list[dict[str, Any]] = []

    def emit(self, *, schema_id: str, data: dict[str, Any]) -> None:
        self.emitted.append(data)


class Peer:
    """A client of the room: what it pushes in, and every frame it is sent."""

    path = ROOM

    def __init__(self, on_frame: Any = None) -> None:
        self.frames: list[bytes] = []
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.on_frame = on_frame

    def push(self, frame: bytes) -> None:
        if self.on_frame is not None:
            self.on_frame(frame)
        self.frames.append(frame)

    async def send(self, frame: bytes) -> None:
        self.push(frame)

    def __aiter__(self) -> Peer:
        return self

    async def __anext__(self) -> bytes:
        frame = await self.inbox.get()
        if not frame:
            raise StopAsyncIteration
        return frame


def rows(db: str) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT count(*) FROM yupdates").fetchone()[0])
    finally:
        con.close()


async def open_room(db: str, file: PlainFile, save_delay: float = 0.05) -> GuardedDocumentRoom:
    room = GuardedDocumentRoom(ROOM, "text", "file", file, Events(), on_file(db)(STORE_PATH),
                               None, save_delay=save_delay)
    asyncio.ensure_future(room.start())
    await room.started.wait()
    await room.initialize()
    return room


def typed(base: GuardedDocumentRoom, chars: str) -> bytes:
    """An update frame typing ``chars`` at the start of the room's text, from a new client."""
    doc: Doc = Doc()
    doc.apply_update(base.ydoc.get_update())
    state = doc.get_state()
    doc.get("source", type=Text).insert(0, chars)
    return create_update_message(doc.get_update(state))


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "ystore.db")


async def test_no_client_receives_an_update_before_it_is_in_the_store(db: str) -> None:
    room = await open_room(db, PlainFile("hello", 1.0))
    stored_when_received: list[int] = []
    sender, watcher = Peer(), Peer(lambda frame: stored_when_received.append(rows(db)))
    tasks = [asyncio.ensure_future(room.serve(p)) for p in (sender, watcher)]
    await asyncio.sleep(0.05)
    before = rows(db)
    watcher.frames.clear()
    stored_when_received.clear()
    for i in range(20):
        sender.inbox.put_nowait(typed(room, f"<{i}>"))
    await asyncio.sleep(0.3)
    assert watcher.frames, "the watcher received nothing"
    assert stored_when_received[0] > before  # on disk before the first frame left
    assert rows(db) >= before + 20  # (and the saves' own state changes)
    await room.stop()
    for t in tasks:
        t.cancel()


async def test_a_joining_client_is_answered_with_committed_state_only(db: str) -> None:
    room = await open_room(db, PlainFile("hello", 1.0))
    sender = Peer()
    late = Peer(lambda frame: seen.append((frame[:2], rows(db))))
    seen: list[tuple[bytes, int]] = []
    tasks = [asyncio.ensure_future(room.serve(sender))]
    await asyncio.sleep(0.05)
    before = rows(db)
    sender.inbox.put_nowait(typed(room, "unsaved "))
    tasks.append(asyncio.ensure_future(room.serve(late)))
    late.inbox.put_nowait(create_sync_message(Doc()))  # step 1: "I have nothing"
    await asyncio.sleep(0.3)
    [(_, stored)] = [s for s in seen if s[0] == b"\x00\x01"]  # the step 2 answer
    assert stored == before + 1
    await room.stop()
    for t in tasks:
        t.cancel()


async def test_a_restarted_room_keeps_stored_edits_newer_than_the_file(db: str) -> None:
    file = PlainFile("hello", 1.0)
    room = await open_room(db, file, save_delay=60)  # the crash comes before the save
    peer = Peer()
    task = asyncio.ensure_future(room.serve(peer))
    await asyncio.sleep(0.05)
    peer.inbox.put_nowait(typed(room, "kept "))
    await asyncio.sleep(0.2)
    await room.stop()
    task.cancel()
    assert file.content == "hello"  # never saved
    again = await open_room(db, file)
    assert str(again.ydoc.get("source", type=Text)) == "kept hello"
    await asyncio.sleep(0.2)
    assert file.content == "kept hello"  # and the file caught up
    await again.stop()


async def test_a_file_changed_after_the_last_stored_update_wins(db: str) -> None:
    file = PlainFile("hello", 1.0)
    room = await open_room(db, file)
    await room.stop()
    file.content, file.modified = "changed on disk", datetime.now(UTC).timestamp() + 60
    again = await open_room(db, file)
    assert str(again.ydoc.get("source", type=Text)) == "changed on disk"
    await again.stop()


async def test_a_burst_of_edits_is_saved_once_after_it_quiets(db: str) -> None:
    file = PlainFile("hello", 1.0)
    room = await open_room(db, file, save_delay=0.1)
    peer = Peer()
    task = asyncio.ensure_future(room.serve(peer))
    for i in range(30):
        peer.inbox.put_nowait(typed(room, f"{i} "))
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.4)
    assert len(file.saves) == 1 and file.saves[0].startswith("29 ")
    await room.stop()
    task.cancel()


async def test_awareness_reaches_each_client_once_per_interval(db: str) -> None:
    room = await open_room(db, PlainFile("hello", 1.0))
    peers = [Peer() for _ in range(5)]
    tasks = [asyncio.ensure_future(room.serve(p)) for p in peers]
    await asyncio.sleep(0.05)
    for p in peers:
        p.frames.clear()
    for clock in range(1, 11):  # 10 moves by each of 5 clients, within one interval
        for client_id, p in enumerate(peers, start=100):
            state = f'{{"cursor":{clock}}}'.encode()
            payload = (bytes([1, client_id, clock]) + bytes([len(state)]) + state)
            p.inbox.put_nowait(create_awareness_message(payload))
    await asyncio.sleep(AWARENESS_SECONDS * 3)
    for p in peers:
        awareness = [f for f in p.frames if f[0] == 1]
        assert len(awareness) == 1  # 50 moves, one frame
        assert b'{"cursor":10}' in read_message(awareness[0][1:])
    await room.stop()
    for t in tasks:
        t.cancel()


async def test_a_file_changed_while_closed_wins_over_a_store_marked_saved(db: str) -> None:
    file = PlainFile("hello", 1.0)
    room = await open_room(db, file, save_delay=0.05)
    peer = Peer()
    task = asyncio.ensure_future(room.serve(peer))
    await asyncio.sleep(0.05)
    peer.inbox.put_nowait(typed(room, "saved "))
    await asyncio.sleep(0.3)
    assert file.content == "saved hello"
    await room.stop()
    task.cancel()
    # changed on disk while closed, with a time older than the store's rows: the
    # save mark, not the clock, says the file is the newer
    file.content, file.modified = "rewritten on disk", 2.0
    again = await open_room(db, file)
    assert str(again.ydoc.get("source", type=Text)) == "rewritten on disk"
    await again.stop()


async def test_a_file_reloaded_into_the_room_counts_as_saved(db: str) -> None:
    # Reloading a file changed on disk writes updates into the store; they are what
    # the file holds, so a file changed again while the room is closed must still win.
    file = PlainFile("hello", 1.0)
    room = await open_room(db, file, save_delay=60)
    file.content = "changed while open"
    await room._on_outofband_change()
    assert str(room.ydoc.get("source", type=Text)) == "changed while open"
    await room.stop()
    file.content = "changed while closed"
    again = await open_room(db, file)
    assert str(again.ydoc.get("source", type=Text)) == "changed while closed"
    await again.stop()


async def test_a_departure_reaches_the_others_through_the_coalesced_awareness(db: str) -> None:
    room = await open_room(db, PlainFile("hello", 1.0))
    leaving, staying = Peer(), Peer()
    tasks = [asyncio.ensure_future(room.serve(p)) for p in (leaving, staying)]
    await asyncio.sleep(0.05)
    state = b'{"cursor":1}'
    leaving.inbox.put_nowait(create_awareness_message(bytes([1, 100, 1, len(state)]) + state))
    await asyncio.sleep(AWARENESS_SECONDS * 3)
    staying.frames.clear()
    leaving.inbox.put_nowait(create_awareness_message(bytes([1, 100, 2, 4]) + b"null"))
    await asyncio.sleep(AWARENESS_SECONDS * 3)
    [frame] = [f for f in staying.frames if f[0] == 1]
    assert b"null" in read_message(frame[1:]) and 100 not in room.awareness.states
    await room.stop()
    for t in tasks:
        t.cancel()
