"""The document API's warm replicas: one room connection per (document, user) while in use.

The same database, session and in-memory guarded room as test_documents_manager:
alice owns "Lab", bob is an editor, carol a viewer, cell ``intro`` is locked.
"""

from __future__ import annotations

import asyncio

import pytest

from hub_rtc.manager import Manager
from hub_rtc.manager.documents.replicas import Replicas
from hub_rtc.manager.errors import Conflict, Forbidden, NotFound
from tests.unit import test_documents_manager as documents
from tests.unit.test_documents_manager import BOB, CAROL, Rooms
from tests.unit.test_documents_sync import VIEWER

#: the session "Lab" (the fixture of test_documents_manager)
session_id = documents.session_id


@pytest.fixture
def rooms() -> Rooms:
    return Rooms()


def typed_by_someone_else(rooms: Rooms, cell_id: str, text: str) -> None:
    """A change another client makes in the room between two calls."""
    from pycrdt import Array, Map, Text

    for cell in rooms.room().doc.get("cells", type=Array):
        assert isinstance(cell, Map)
        if cell.get("id") == cell_id:
            source = cell.get("source")
            assert isinstance(source, Text)
            source.insert(0, text)


async def test_calls_share_one_connection_that_stays_in_step(manager: Manager, session_id: str,
                                                             rooms: Rooms) -> None:
    first = await manager.documents.read(CAROL, session_id, "nb.ipynb", rooms)
    typed_by_someone_else(rooms, "work", "changed meanwhile ")
    second = await manager.documents.read(CAROL, session_id, "nb.ipynb", rooms)
    assert rooms.opened == [(("alice", ""), "lab1/nb.ipynb", "carol")]  # opened once
    assert not rooms.channels[0].closed
    work = {c["id"]: c for c in second["cells"]}["work"]
    assert work["source"].startswith("changed meanwhile ")
    assert first != second


async def test_a_change_to_a_cell_made_a_moment_ago_catches_up_once(
        manager: Manager, session_id: str, rooms: Rooms, monkeypatch: pytest.MonkeyPatch) -> None:
    """A change is made on the replica as the room's broadcasts left it (no round trip
    first); a cell it has not heard of yet is looked for again after one sync."""
    from hub_rtc.documents import insert_cell

    docs = manager.documents
    await docs.read(BOB, session_id, "nb.ipynb", rooms)
    checked = docs._place

    async def and_then_a_new_cell(*args: object):  # made once the checks passed: not yet heard
        place = await checked(*args)
        insert_cell(rooms.room().doc, 1, "code", "new\n", cell_id="fresh")
        return place

    monkeypatch.setattr(docs, "_place", and_then_a_new_cell)
    got = await docs.replace_source(BOB, session_id, "nb.ipynb", "fresh", "# bob\n", rooms)
    assert got["index"] == 1 and got["cell"]["source"] == "# bob\n"
    assert rooms.room().source("fresh") == "# bob\n"
    assert len(rooms.opened) == 1  # the same replica


async def test_each_user_has_a_replica_of_their_own(manager: Manager, session_id: str,
                                                    rooms: Rooms) -> None:
    await manager.documents.read(CAROL, session_id, "nb.ipynb", rooms)
    await manager.documents.replace_source(BOB, session_id, "nb.ipynb", "work", "# bob\n", rooms)
    await manager.documents.read(BOB, session_id, "nb.ipynb", rooms)
    assert [who for *_, who in rooms.opened] == ["carol", "bob"]
    assert rooms.room().source("work") == "# bob\n"


async def test_the_room_still_judges_a_warm_replicas_change(manager: Manager, session_id: str,
                                                            rooms: Rooms) -> None:
    await manager.documents.read(BOB, session_id, "nb.ipynb", rooms)
    rooms.rights["bob"] = VIEWER  # (the room would see that on the connection bob has)
    rooms.channels[0].rights = VIEWER
    before = rooms.room().source("work")
    with pytest.raises(Forbidden, match="reverted"):
        await manager.documents.replace_source(BOB, session_id, "nb.ipynb", "work", "x", rooms)
    assert rooms.room().source("work") == before
    with pytest.raises(NotFound):  # a wrong request leaves the replica as it was
        await manager.documents.replace_source(BOB, session_id, "nb.ipynb", "nope", "x", rooms)
    assert len(rooms.opened) == 1


async def test_a_replica_its_room_closed_is_opened_again(manager: Manager, session_id: str,
                                                         rooms: Rooms) -> None:
    await manager.documents.read(CAROL, session_id, "nb.ipynb", rooms)
    rooms.channels[0].inbox.put_nowait(None)  # the room closed it (a restart, a revocation)
    await asyncio.sleep(0.01)
    await manager.documents.read(CAROL, session_id, "nb.ipynb", rooms)
    assert len(rooms.opened) == 2 and rooms.channels[0].closed


async def test_idle_replicas_are_closed(manager: Manager, session_id: str, rooms: Rooms) -> None:
    replicas = manager.documents.replicas = Replicas(idle_seconds=0.05)
    await manager.documents.read(CAROL, session_id, "nb.ipynb", rooms)
    assert len(replicas) == 1
    await asyncio.sleep(0.2)
    assert len(replicas) == 0 and rooms.channels[0].closed


async def test_a_refused_opening_keeps_nothing(manager: Manager, session_id: str,
                                               rooms: Rooms) -> None:
    del rooms.rights["carol"]  # the server refuses the connection (and says it is down)
    with pytest.raises(Conflict):
        await manager.documents.read(CAROL, session_id, "nb.ipynb", rooms)
    assert manager.documents.replicas is not None and len(manager.documents.replicas) == 0
