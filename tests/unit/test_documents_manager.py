"""The document API's domain part: checks first, then one change through the room.

A real database (SQLite and PostgreSQL) and the in-memory guarded room of
test_documents_sync: alice owns session "Lab" on her server, folder ``lab1``,
bob is an editor, carol a viewer, and cell ``intro`` of ``nb.ipynb`` is locked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import update

from hub_rtc.guard import Rights
from hub_rtc.manager import Actor, Manager, ServerState, StaticDirectory
from hub_rtc.manager.actor import (
    SCOPE_ADMIN,
    SCOPE_DOCUMENTS_READ,
    SCOPE_DOCUMENTS_WRITE,
    SCOPE_SESSIONS,
)
from hub_rtc.manager.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from hub_rtc.records import RTCSession
from tests.unit.test_documents_sync import EDITOR, VIEWER, MemoryChannel, MemoryRoom

DOCS = frozenset({SCOPE_SESSIONS, SCOPE_DOCUMENTS_READ, SCOPE_DOCUMENTS_WRITE})


def person(name: str, scopes: frozenset[str] = DOCS) -> Actor:
    return Actor(name, frozenset({"cs101"}), scopes)


ALICE, BOB, CAROL, DAVE = (person(n) for n in ("alice", "bob", "carol", "dave"))


@dataclass
class Rooms:
    """An opener over one in-memory room per notebook; rights as the server would give them."""

    rights: dict[str, Rights] = field(default_factory=lambda: {
        "alice": Rights.full(), "bob": EDITOR, "carol": VIEWER})
    rooms: dict[tuple[Any, str], MemoryRoom] = field(default_factory=dict)
    opened: list[tuple[Any, str, str]] = field(default_factory=list)
    channels: list[MemoryChannel] = field(default_factory=list)

    def room(self, server: Any = ("alice", ""), path: str = "lab1/nb.ipynb") -> MemoryRoom:
        return self.rooms.setdefault((server, path), MemoryRoom())

    async def __call__(self, server: Any, path: str, user: str) -> MemoryChannel:
        self.opened.append((server, path, user))
        if user not in self.rights:
            raise Forbidden(f"the server refused {user}")
        channel = self.room(server, path).connect(self.rights[user])
        self.channels.append(channel)
        return channel


@pytest.fixture
async def session_id(manager: Manager) -> str:
    members = [{"user": "bob", "role": "editor"}, {"user": "carol", "role": "viewer"}]
    session = await manager.sessions.create(ALICE, {"title": "Lab", "host": "owner", "root": "lab1",
                                                    "members": members})
    await manager.cells.put(ALICE, session["id"], {"path": "nb.ipynb", "cell_id": "intro",
                                                   "rule": "locked"})
    return str(session["id"])


@pytest.fixture
def rooms() -> Rooms:
    return Rooms()


@pytest.fixture(autouse=True)
def per_call(manager: Manager) -> None:
    """A room opened and synced per call (test_replicas.py has the warm replicas)."""
    manager.documents.replicas = None


# -- reading -------------------------------------------------------------------------


async def test_a_member_reads_the_live_notebook_as_themselves(manager: Manager, session_id: str,
                                                              rooms: Rooms) -> None:
    notebook = await manager.documents.read(CAROL, session_id, "nb.ipynb", rooms)
    assert [c["id"] for c in notebook["cells"]] == ["intro", "work", "pic", "raw"]
    # the room on alice's server, the path below the session folder, as carol
    assert rooms.opened == [(("alice", ""), "lab1/nb.ipynb", "carol")]
    assert all(c.closed for c in rooms.channels)


async def test_reading_needs_a_documents_scope(manager: Manager, session_id: str, rooms: Rooms) -> None:
    with pytest.raises(Forbidden, match=SCOPE_DOCUMENTS_READ):
        await manager.documents.read(person("bob", frozenset({SCOPE_SESSIONS})), session_id,
                                     "nb.ipynb", rooms)
    writer = person("bob", frozenset({SCOPE_DOCUMENTS_WRITE}))  # writing includes reading
    assert (await manager.documents.read(writer, session_id, "nb.ipynb", rooms))["cells"]
    assert len(rooms.opened) == 1


@pytest.mark.parametrize(("who", "session", "path", "error"), [
    (DAVE, None, "nb.ipynb", Forbidden),             # not a member
    (BOB, "nope", "nb.ipynb", NotFound),
    (BOB, None, "../private.ipynb", Invalid),
    (BOB, None, "notes.txt", Invalid),
    (person("root", frozenset({SCOPE_ADMIN})), None, "nb.ipynb", Forbidden),  # admin, not member
])
async def test_who_and_what_is_checked_before_connecting(manager: Manager, session_id: str, rooms: Rooms,
                                                         who: Actor, session: str | None, path: str,
                                                         error: type[Exception]) -> None:
    with pytest.raises(error):
        await manager.documents.read(who, session or session_id, path, rooms)
    assert rooms.opened == []


# -- changing ------------------------------------------------------------------------


async def test_an_editor_replaces_appends_inserts_and_deletes(manager: Manager, session_id: str,
                                                              rooms: Rooms) -> None:
    room = rooms.room()
    docs = manager.documents
    result = await docs.replace_source(BOB, session_id, "nb.ipynb", "work", "y = 2", rooms)
    assert result == {"id": "work", "index": 1, "cell": {**result["cell"], "source": "y = 2"}}
    assert room.source("work") == "y = 2"
    await docs.append_source(BOB, session_id, "nb.ipynb", "work", "\nprint(y)", rooms)
    assert room.source("work") == "y = 2\nprint(y)"
    made = await docs.insert_cell(BOB, session_id, "nb.ipynb",
                                  {"index": 2, "cell_type": "markdown", "source": "## Bob"}, rooms)
    assert made["index"] == 2 and made["cell"]["cell_type"] == "markdown"
    assert room.source(made["id"]) == "## Bob"
    await docs.delete_cell(BOB, session_id, "nb.ipynb", made["id"], rooms)
    assert made["id"] not in [c["id"] for c in (await docs.read(BOB, session_id, "nb.ipynb", rooms))["cells"]]
    assert {user for _, _, user in rooms.opened} == {"bob"}
    assert all(c.closed for c in rooms.channels)


@pytest.mark.parametrize(("who", "cell", "match"), [
    (BOB, "intro", "locked"),
    (CAROL, "work", "role viewer may not write"),
])
async def test_refused_changes_send_nothing(manager: Manager, session_id: str, rooms: Rooms,
                                            who: Actor, cell: str, match: str) -> None:
    docs = manager.documents
    for change in (docs.replace_source(who, session_id, "nb.ipynb", cell, "x", rooms),
                   docs.append_source(who, session_id, "nb.ipynb", cell, "x", rooms),
                   docs.delete_cell(who, session_id, "nb.ipynb", cell, rooms)):
        with pytest.raises(Forbidden, match=match):
            await change
    assert rooms.opened == []
    # refused before any room saw them, so counted here: "Refused attempts" lists them
    refused = await manager.activity.read(ALICE, session_id, {"kind": "refused"})
    assert {(e["user"], e["path"], e["cell_id"]) for e in refused} == {(who.name, "nb.ipynb", cell)}
    assert sum(e["count"] for e in refused) == 3


async def test_a_viewer_cannot_insert_and_a_token_without_write_cannot_change(
        manager: Manager, session_id: str, rooms: Rooms) -> None:
    with pytest.raises(Forbidden, match="viewer"):
        await manager.documents.insert_cell(CAROL, session_id, "nb.ipynb", {}, rooms)
    reader = person("bob", frozenset({SCOPE_DOCUMENTS_READ}))
    with pytest.raises(Forbidden, match=SCOPE_DOCUMENTS_WRITE):
        await manager.documents.replace_source(reader, session_id, "nb.ipynb", "work", "x", rooms)
    assert rooms.opened == []
    # carol's insert, on no cell; the token without the scope is no member's attempt
    refused = await manager.activity.read(ALICE, session_id, {"kind": "refused"})
    assert [(e["user"], e["cell_id"], e["count"]) for e in refused] == [("carol", None, 1)]


async def test_the_owner_may_change_a_locked_cell(manager: Manager, session_id: str, rooms: Rooms) -> None:
    await manager.documents.replace_source(ALICE, session_id, "nb.ipynb", "intro", "# New", rooms)
    assert rooms.room().source("intro") == "# New"


async def test_unknown_cells_and_bad_edits(manager: Manager, session_id: str, rooms: Rooms) -> None:
    docs = manager.documents
    with pytest.raises(NotFound, match="nope"):
        await docs.replace_source(BOB, session_id, "nb.ipynb", "nope", "x", rooms)
    with pytest.raises(NotFound):
        await docs.delete_cell(BOB, session_id, "nb.ipynb", "nope", rooms)
    with pytest.raises(Invalid, match="outside"):
        await docs.insert_cell(BOB, session_id, "nb.ipynb", {"index": 99}, rooms)
    assert all(c.closed for c in rooms.channels)


async def test_a_change_the_room_reverts_anyway_is_refused(manager: Manager, session_id: str,
                                                           rooms: Rooms) -> None:
    # the room's rules changed after the service checked (it sees bob as a viewer now)
    rooms.rights["bob"] = VIEWER
    before = rooms.room().source("work")
    with pytest.raises(Forbidden, match="refused bob's change to cell 'work'.*reverted"):
        await manager.documents.replace_source(BOB, session_id, "nb.ipynb", "work", "x", rooms)
    assert rooms.room().source("work") == before
    # the room counts what it refuses (and reports it); counted here too, it would be twice
    assert await manager.activity.read(ALICE, session_id, {"kind": "refused"}) == []
    assert all(c.closed for c in rooms.channels)


# -- when the session cannot serve ---------------------------------------------------------


async def test_an_ended_or_unready_session_is_a_conflict(manager: Manager, session_id: str,
                                                         rooms: Rooms) -> None:
    for state in ("waiting", "starting", "failed"):
        await manager.ctx.db.run(lambda db, s=state: db.execute(
            update(RTCSession).where(RTCSession.id == session_id).values(hosting_state=s)))
        with pytest.raises(Conflict, match="cannot serve documents now"):
            await manager.documents.read(BOB, session_id, "nb.ipynb", rooms)
    await manager.sessions.end(ALICE, session_id)
    with pytest.raises(Conflict, match="has ended"):
        await manager.documents.read(BOB, session_id, "nb.ipynb", rooms)
    assert rooms.opened == []


async def test_a_room_that_goes_away_or_stays_silent_is_unavailable(manager: Manager, session_id: str,
                                                                    rooms: Rooms) -> None:
    room = rooms.room()
    room.silent = True
    manager.documents.timeout = 0.2
    with pytest.raises(Unavailable, match="did not answer"):
        await manager.documents.read(BOB, session_id, "nb.ipynb", rooms)

    async def closing(server: Any, path: str, user: str) -> MemoryChannel:
        channel = MemoryRoom().connect()
        channel.inbox = type(channel.inbox)()
        channel.inbox.put_nowait(None)
        rooms.channels.append(channel)
        return channel

    with pytest.raises(Unavailable, match="broke"):
        await manager.documents.replace_source(BOB, session_id, "nb.ipynb", "work", "x", closing)
    assert all(c.closed for c in rooms.channels)


async def test_a_server_that_is_not_running_is_a_conflict(manager: Manager, session_id: str,
                                                          rooms: Rooms) -> None:
    rooms.rights.pop("bob")  # the hub answers 403 for a stopped server: the opener refuses
    with pytest.raises(Conflict, match="alice's server is not running; start it"):
        await manager.documents.read(BOB, session_id, "nb.ipynb", rooms)
    directory = manager.ctx.directory
    assert isinstance(directory, StaticDirectory)
    directory.servers[("alice", "")] = ServerState(ready=True)
    with pytest.raises(Forbidden, match="refused bob"):  # running: the refusal stands
        await manager.documents.read(BOB, session_id, "nb.ipynb", rooms)
