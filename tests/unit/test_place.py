"""Where a session's document lives: the one answer the relay, the document API and
the pages share, with a real database and an in-memory hub (no servers).

alice owns session "Lab" on her server, folder ``lab1``; bob is an editor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import update

from hub_rtc.manager import Actor, Manager
from hub_rtc.manager.actor import SCOPE_SESSIONS
from hub_rtc.manager.documents.listing import MAX_NOTEBOOKS, session_notebooks
from hub_rtc.manager.documents.place import NOT_SERVING, Place, closed, document, on_server, refusal
from hub_rtc.manager.errors import Conflict, Forbidden, Invalid, NotFound, RTCError, Unavailable
from hub_rtc.manager.ports import ServerKey
from hub_rtc.records import RTCSession


def person(name: str) -> Actor:
    return Actor(name, frozenset({"cs101"}), frozenset({SCOPE_SESSIONS}))


ALICE, BOB, DAVE = person("alice"), person("bob"), person("dave")


async def new_session(manager: Manager, root: str = "lab1") -> str:
    session = await manager.sessions.create(ALICE, {
        "title": "Lab", "host": "owner", "root": root, "members": [{"user": "bob", "role": "editor"}]})
    return str(session["id"])


async def set_hosting(manager: Manager, session_id: str, state: str) -> None:
    await manager.ctx.db.run(lambda db: db.execute(
        update(RTCSession).where(RTCSession.id == session_id).values(hosting_state=state)))


# -- the place ------------------------------------------------------------------------------


async def test_a_place_names_the_room_below_the_session_folder(manager: Manager) -> None:
    session_id = await new_session(manager)
    place = await manager.documents.place(BOB, session_id, "sub/nb.ipynb")
    assert place == Place(session_id, ("alice", ""), "sub/nb.ipynb", "lab1/sub/nb.ipynb", "notebook")
    assert (await manager.documents.place(BOB, session_id, "/x//notes.md/")).doc_type == "file"
    assert (await manager.documents.place(BOB, session_id, "x.ipynb", doc_type="file")).doc_type == "file"
    whole = await new_session(manager, root="")
    notes = await manager.documents.place(BOB, whole, "notes.md")
    assert notes.server_path == "notes.md" and notes.doc_type == "file"


async def test_paths_and_types_that_name_no_document(manager: Manager) -> None:
    session_id = await new_session(manager)
    for bad in ("../secret.ipynb", "", "a/../../b.ipynb", "a\\b.ipynb"):
        with pytest.raises(Invalid):
            await manager.documents.place(BOB, session_id, bad)
    with pytest.raises(Invalid, match="type must be one of notebook, file"):
        await manager.documents.place(BOB, session_id, "nb.ipynb", doc_type="blob")
    for not_a_notebook in ("notes.txt", ".ipynb", ""):
        with pytest.raises(Invalid, match="is not a notebook"):
            await manager.documents.place(BOB, session_id, not_a_notebook, notebooks_only=True)


async def test_who_may_see_the_session_is_said_first(manager: Manager) -> None:
    session_id = await new_session(manager)
    with pytest.raises(Forbidden, match="not shared with dave"):
        await manager.documents.place(DAVE, session_id, "../secret.ipynb")
    with pytest.raises(NotFound, match="no session 'nope'"):
        await manager.documents.place(BOB, "nope", "nb.ipynb")


async def test_a_session_that_cannot_serve_is_a_conflict(manager: Manager) -> None:
    session_id = await new_session(manager)
    docs = manager.documents
    # the service does not manage hub access here: the document API lets the server answer,
    # the relay (which has only the service's own access) says no at once
    assert await docs.place(BOB, session_id, "nb.ipynb")
    with pytest.raises(Conflict, match="manage_hub_access = True"):
        await docs.place(BOB, session_id, "nb.ipynb", relayed=True)
    for state, why in NOT_SERVING.items():
        await set_hosting(manager, session_id, state)
        with pytest.raises(Conflict, match=re.escape(f"cannot serve documents now: {why}")):
            await docs.place(BOB, session_id, "nb.ipynb", relayed=True)
    # a hosting state nobody listed (one added later, or a corrupt row) serves nothing
    await set_hosting(manager, session_id, "migrating")
    with pytest.raises(Conflict, match="cannot serve documents now: its server is migrating"):
        await docs.place(BOB, session_id, "nb.ipynb")
    await set_hosting(manager, session_id, "ready")
    assert (await docs.place(BOB, session_id, "nb.ipynb", relayed=True)).path == "nb.ipynb"
    await manager.sessions.end(ALICE, session_id)
    with pytest.raises(Conflict, match="has ended"):
        await docs.place(BOB, session_id, "nb.ipynb")


def test_the_pure_parts() -> None:
    assert document("sub/./nb.ipynb") == ("sub/nb.ipynb", "notebook")
    assert document("data.csv") == ("data.csv", "file")
    assert on_server("lab1", "nb.ipynb") == "lab1/nb.ipynb"
    assert on_server("", "nb.ipynb") == on_server("/", "nb.ipynb") == "nb.ipynb"
    assert on_server("lab1", "") == "lab1"


# -- what the server says --------------------------------------------------------------------


@dataclass
class Failure:
    status: int
    message: str = "nope"
    transient: bool = False


@pytest.mark.parametrize(("failure", "error", "words"), [
    (Failure(403), Forbidden, "did not let bob open 'lab1/nb.ipynb': nope"),
    (Failure(401), Forbidden, "did not let bob open"),
    (Failure(404), NotFound, "no notebook 'lab1/nb.ipynb' on the session's server"),
    (Failure(503, transient=True), Unavailable, "cannot be reached right now \\(503: nope\\)"),
    (Failure(500), Unavailable, "answered 500 opening 'lab1/nb.ipynb': nope"),
])
def test_a_refusal_to_open_is_the_apis_error(failure: Failure, error: type[RTCError], words: str) -> None:
    made = refusal(failure, "lab1/nb.ipynb", "bob")
    assert isinstance(made, error) and re.search(words, made.message), made.message


def test_a_missing_file_is_called_a_file() -> None:
    assert "no file 'lab1/notes.md'" in refusal(Failure(404), "lab1/notes.md", "bob", "file").message


@pytest.mark.parametrize(("code", "error"), [
    (4404, NotFound), (4403, Forbidden), (4400, Invalid), (1003, Conflict), (1006, None), (1000, None),
    (None, None),
])
def test_how_a_room_closed_is_the_apis_error(code: int | None, error: type[RTCError] | None) -> None:
    made = closed(code, "why", "lab1/nb.ipynb")
    if error is None:
        assert made is None
    else:
        assert isinstance(made, error) and "'lab1/nb.ipynb'" in made.message


# -- the notebooks the pages list ---------------------------------------------------------


@dataclass
class Folders:
    """A server's contents API in memory: models by path from the server's root."""

    models: dict[str, dict[str, Any]]
    asked: list[tuple[ServerKey, str, str]] = field(default_factory=list)

    async def directory(self, server: ServerKey, path: str, as_user: str) -> dict[str, Any]:
        return self._model(server, path, as_user)

    async def notebook(self, server: ServerKey, path: str, as_user: str) -> dict[str, Any]:
        return self._model(server, path, as_user)

    def _model(self, server: ServerKey, path: str, as_user: str) -> dict[str, Any]:
        self.asked.append((server, path, as_user))
        if path not in self.models:
            raise LookupError(f"the session's server answered 404: no {path}")
        return self.models[path]


def entries(*named: tuple[str, str]) -> dict[str, Any]:
    return {"content": [{"name": name, "type": kind} for name, kind in named]}


def cells(*sources: str) -> dict[str, Any]:
    return {"content": {"cells": [{"id": f"c{i}", "cell_type": "code", "source": s}
                                  for i, s in enumerate(sources)]}}


def lab(**over: Any) -> dict[str, Any]:
    base = {"id": "s1", "state": "active", "root": "lab1", "server": {"user": "alice", "name": ""},
            "hosting": {"state": "ready", "message": ""}}
    return {**base, **over}


async def test_the_pages_list_the_folders_notebooks_as_the_reader() -> None:
    folders = Folders({
        "lab1": entries(("b.ipynb", "notebook"), ("a.ipynb", "notebook"), ("sub", "directory"),
                        ("x.txt", "file")),
        "lab1/sub": entries(("c.ipynb", "notebook"), ("deeper", "directory")),
        "lab1/a.ipynb": cells("x = 1", "  " + "y" * 200),
        "lab1/sub/c.ipynb": cells(),
    })
    notebooks, why = await session_notebooks(lab(), "bob", folders)
    assert why == ""
    assert [nb.path for nb in notebooks] == ["a.ipynb", "b.ipynb", "sub/c.ipynb"]
    first, missing, nested = notebooks
    assert [(c.index, c.id, c.preview) for c in first.cells] == [(0, "c0", "x = 1"),
                                                              (1, "c1", "y" * 160 + "…")]
    assert missing.cells == [] and "no lab1/b.ipynb" in missing.error
    assert nested.cells == [] and nested.error == ""
    assert {user for _, _, user in folders.asked} == {"bob"}
    assert {server for server, _, _ in folders.asked} == {("alice", "")}
    assert "lab1/sub/deeper" not in [path for _, path, _ in folders.asked]  # two levels at most


async def test_the_pages_say_why_there_are_no_notebooks() -> None:
    folders = Folders({})
    assert await session_notebooks(lab(state="ended"), "bob", folders) == ([], "")
    waiting = lab(hosting={"state": "waiting", "message": "restarting"})
    assert await session_notebooks(waiting, "bob", folders) == (
        [], "the session's server is not ready yet: restarting")
    assert folders.asked == []
    assert await session_notebooks(lab(hosting={"state": "unmanaged", "message": ""}), "bob",
                                   folders) == ([], "the session's server answered 404: no lab1")


async def test_a_huge_folder_is_listed_only_in_part() -> None:
    names = [(f"n{i:03}.ipynb", "notebook") for i in range(MAX_NOTEBOOKS + 5)]
    folders = Folders({"": entries(*names)})
    notebooks, _ = await session_notebooks(lab(root=""), "bob", folders)
    assert len(notebooks) == MAX_NOTEBOOKS
