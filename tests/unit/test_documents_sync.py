"""The document client against an in-memory guarded room.

:class:`MemoryRoom` behaves as the shared server's room does, message by
message: it sends its sync step 1 to each new connection, answers a step 1 with
a step 2, runs every update through the real :class:`DocumentGuard` with the
connection's rights, applies the verdict's ``forward`` and broadcasts whatever
its document takes to every connection, the sender included.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from jupyter_ydoc import YNotebook
from pycrdt import (
    Array,
    Doc,
    YMessageType,
    YSyncMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)

from hub_rtc.documents import (
    DocumentClient,
    NoAnswer,
    RoomGone,
    append_source,
    cell_ids,
    cell_json,
    delete_cell,
    insert_cell,
    notebook_json,
    replace_source,
)
from hub_rtc.guard import DocumentGuard, Rights, sync_payload
from tests.unit.test_documents import NOTEBOOK

EDITOR = Rights(write=True, protected=frozenset({"intro"}))
VIEWER = Rights.read_only()


class MemoryChannel:
    """The client's end of one connection to a :class:`MemoryRoom` (a room
    :class:`~hub_rtc.protocol.Channel`)."""

    close_code: int | None = None
    close_reason: str | None = None

    def __init__(self, room: MemoryRoom, rights: Rights) -> None:
        self.room = room
        self.rights = rights
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.sent: list[bytes] = []
        self.closed = False

    async def send(self, message: bytes) -> None:
        if self.closed:
            raise RoomGone("closed")
        self.sent.append(message)
        self.room.handle(self, message)

    async def recv(self) -> bytes | None:
        return await self.inbox.get()

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closed = True
        self.room.connections.remove(self)


class MemoryRoom:
    def __init__(self, notebook: dict[str, Any] | None = None) -> None:
        self.doc = Doc()
        YNotebook(self.doc).set(copy.deepcopy(notebook or NOTEBOOK))
        self.guard = DocumentGuard(self.doc.get_update())
        self.connections: list[MemoryChannel] = []
        self.verdicts: list[Any] = []
        self.silent = False
        self.doc.observe(self._broadcast)

    def connect(self, rights: Rights = EDITOR) -> MemoryChannel:
        channel = MemoryChannel(self, rights)
        self.connections.append(channel)
        channel.inbox.put_nowait(create_sync_message(self.doc))
        return channel

    def handle(self, channel: MemoryChannel, message: bytes) -> None:
        if self.silent or message[0] != YMessageType.SYNC:
            return
        if message[1] == YSyncMessageType.SYNC_STEP1:
            reply = handle_sync_message(message[1:], self.doc)
            if reply:
                channel.inbox.put_nowait(reply)
            return
        verdict = self.guard.check(sync_payload(message), channel.rights)
        self.verdicts.append(verdict)
        if verdict.forward is not None:
            self.doc.apply_update(verdict.forward)

    def _broadcast(self, event: Any) -> None:
        self.guard.follow(event.update)
        for channel in self.connections:
            channel.inbox.put_nowait(create_update_message(event.update))

    def source(self, cell_id: str) -> str:
        return str(cell_json(self.doc, cell_id)["source"])


async def synced(room: MemoryRoom, rights: Rights = EDITOR, timeout: float = 2) -> DocumentClient:
    client = DocumentClient(room.connect(rights), timeout=timeout)
    await client.sync()
    return client


# -- syncing and reading --------------------------------------------------------------


async def test_sync_brings_the_whole_notebook() -> None:
    room = MemoryRoom()
    client = await synced(room)
    assert notebook_json(client.doc) == YNotebook(room.doc).get()
    channel = client.channel
    assert isinstance(channel, MemoryChannel)
    # it answered the room's step 1 and asked with its own
    kinds = sorted(m[1] for m in channel.sent)
    assert kinds == [YSyncMessageType.SYNC_STEP1, YSyncMessageType.SYNC_STEP2]


async def test_awareness_and_raw_messages_are_ignored() -> None:
    room = MemoryRoom()
    channel = room.connect()
    channel.inbox.put_nowait(b"\x01\x03\x00\x00\x00")
    channel.inbox.put_nowait(b"\x02\x04save")
    client = DocumentClient(channel, timeout=2)
    await client.sync()
    assert cell_ids(client.doc) == ["intro", "work", "pic", "raw"]


# -- changes the room keeps ------------------------------------------------------------


async def test_an_editors_change_holds_and_reaches_everyone() -> None:
    room = MemoryRoom()
    watcher = await synced(room, VIEWER)
    client = await synced(room)
    outcome = await client.apply(lambda doc: replace_source(doc, "work", "x = 2\nprint(x)"))
    assert outcome.held
    assert room.source("work") == "x = 2\nprint(x)"
    await watcher.sync()
    assert str(cell_json(watcher.doc, "work")["source"]) == "x = 2\nprint(x)"
    assert room.verdicts[-1].accepted


@pytest.mark.parametrize("edit", [
    lambda doc: append_source(doc, "work", "\n# more"),
    lambda doc: insert_cell(doc, 2, "markdown", "## new"),
    lambda doc: delete_cell(doc, "pic"),
    lambda doc: replace_source(doc, "raw", ""),
])
async def test_every_kind_of_change_holds_for_an_editor(edit: Any) -> None:
    room = MemoryRoom()
    client = await synced(room)
    outcome = await client.apply(edit)
    assert outcome.held
    assert notebook_json(room.doc) == notebook_json(client.doc)


async def test_an_empty_change_sends_nothing() -> None:
    room = MemoryRoom()
    client = await synced(room)
    channel = client.channel
    assert isinstance(channel, MemoryChannel)
    before = len(channel.sent)
    outcome = await client.apply(lambda doc: replace_source(doc, "work", "x = 1\nprint(x)"))
    assert outcome.held and outcome.change.empty and len(channel.sent) == before


async def test_a_concurrent_edit_by_someone_else_does_not_look_like_a_refusal() -> None:
    room = MemoryRoom()
    client = await synced(room)
    other = await synced(room)
    # the other replica's edit lands in the room while ours is on its way
    theirs = append_source(other.doc, "work", "\n# theirs")
    await other.channel.send(create_update_message(theirs.update))
    outcome = await client.apply(lambda doc: replace_source(doc, "work", "y = 1\nprint(x)"))
    assert outcome.held
    assert room.source("work") == "y = 1\nprint(x)\n# theirs" == str(cell_json(client.doc, "work")["source"])


# -- changes the room refuses ---------------------------------------------------------


@pytest.mark.parametrize(("rights", "edit"), [
    (EDITOR, lambda doc: replace_source(doc, "intro", "# Hacked")),       # locked cell
    (EDITOR, lambda doc: append_source(doc, "intro", " hacked")),
    (EDITOR, lambda doc: replace_source(doc, "intro", "# Lab 1\n")),      # a pure deletion
    (EDITOR, lambda doc: delete_cell(doc, "intro")),
    (VIEWER, lambda doc: replace_source(doc, "work", "hacked")),
    (VIEWER, lambda doc: insert_cell(doc, 0, "code", "hacked")),
    (VIEWER, lambda doc: delete_cell(doc, "work")),
])
async def test_a_refused_change_is_reported_and_the_replica_converges(rights: Rights, edit: Any) -> None:
    room = MemoryRoom()
    before = notebook_json(room.doc)
    client = await synced(room, rights)
    outcome = await client.apply(edit)
    assert not outcome.held
    assert not room.verdicts[-1].accepted
    assert notebook_json(room.doc) == before
    assert notebook_json(client.doc) == before  # the revert reached the sender
    assert "hacked" not in str(room.doc.get_update())


async def test_the_client_can_carry_on_after_a_refusal() -> None:
    room = MemoryRoom()
    client = await synced(room)
    assert not (await client.apply(lambda doc: append_source(doc, "intro", "!"))).held
    assert (await client.apply(lambda doc: append_source(doc, "work", "!"))).held
    assert room.source("work").endswith("!") and not room.source("intro").endswith("!")


# -- a room that goes away ------------------------------------------------------------


async def test_a_closed_room_is_reported() -> None:
    room = MemoryRoom()
    channel = room.connect()
    channel.inbox.put_nowait(None)
    with pytest.raises(RoomGone, match="closed"):
        await DocumentClient(channel, timeout=2).sync()


async def test_a_silent_room_times_out() -> None:
    room = MemoryRoom()
    room.silent = True
    channel = room.connect()
    with pytest.raises(NoAnswer, match="0.2 s"):
        await DocumentClient(channel, timeout=0.2).sync()


async def test_an_unreadable_sync_message_is_reported() -> None:
    room = MemoryRoom()
    channel = room.connect()
    channel.inbox.put_nowait(b"\x00\x02\xff\xff")
    with pytest.raises(RoomGone, match="unreadable"):
        await DocumentClient(channel, timeout=2).sync()


def test_the_replica_is_a_plain_doc() -> None:
    # no YNotebook wrapper, so no UndoManager keeping deleted items alive
    client = DocumentClient(MemoryChannel.__new__(MemoryChannel))
    assert type(client.doc) is Doc
    assert isinstance(client.doc.get("cells", type=Array), Array)
