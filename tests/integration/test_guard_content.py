"""Attacks on what the saved file and the store keep, through real servers.

One hub for the module: olive's server hosts "Lab 1" (folder ``lab1``) with ed as an
editor and vi as a viewer; cell ``locked`` is locked.  The clients are real y-sync
clients (pycrdt) through the proxy.  Each attack checks what matters after it: the
owner's replica, a client joining later, the file on disk and the ystore, and, where
the attack aims at the saved file, the document as the room reloads it from disk.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Decoder, Doc, Encoder, Map, Text, create_sync_message, create_update_message

from hub_rtc.localhub import LocalHub
from tests.integration.conftest import (
    code_notebook,
    host_session,
    saved_notebook,
    start_hub,
    start_server,
    wait_for,
)
from tests.integration.yclient import YClient, close_socket, notebook_socket, yjs_cells

pytestmark = pytest.mark.integration

OWNER, EDITOR, VIEWER = "olive", "ed", "vi"
NOTEBOOK = "lab1/nb.ipynb"
CELLS = ("free", "locked", "other")
#: the most a client that stops reading may have waiting on the server, here
BACKLOG = 2 * 1024 * 1024
LOCKED_SOURCE = "# locked"


class World:
    def __init__(self, hub: LocalHub, home: Path) -> None:
        self.hub = hub
        self.home = home
        self.tokens = {name: hub.user_token(name) for name in (OWNER, EDITOR, VIEWER)}
        self.session_id = ""

    def server(self, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
        return self.hub.api(method, f"/user/{OWNER}/{path}", body, self.tokens[OWNER])

    def rtc(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.hub.rtc(method, path, body, self.tokens[OWNER])

    async def client(self, user: str) -> YClient:
        return await YClient.connect(self.hub.url, OWNER, NOTEBOOK, self.tokens[user])

    def disk(self) -> dict[str, Any]:
        return saved_notebook(self.home / OWNER / NOTEBOOK)

    def ystore_bytes(self) -> bytes:
        """Every update the ystore holds, concatenated (it is where history is kept)."""
        out = b""
        for db in (self.home / OWNER).rglob("*ystore*.db"):
            with sqlite3.connect(db) as con:
                for (update,) in con.execute("SELECT yupdate FROM yupdates"):
                    out += bytes(update)
        assert out, "no ystore on the shared server"
        return out

    def reset_notebook(self) -> None:
        """The notebook as the module started it, through the contents API."""
        status, _ = self.server(f"api/contents/{NOTEBOOK}", "PUT",
                                {"type": "notebook", "format": "json", "content": notebook()})
        assert status in (200, 201)


def notebook() -> dict[str, Any]:
    return code_notebook({"free": "# free", "locked": LOCKED_SOURCE, "other": "# other"})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("guard-content")
    # The shared servers' own settings (the hub's config does not reach them): a room
    # whose clients all left is dropped quickly, so the next one loads the file.
    args = ["--allow-root", "--YDocExtension.document_save_delay=0.2",
            "--YDocExtension.document_cleanup_delay=0.5",
            f"--HubRTCExtension.room_backlog_bytes={BACKLOG}"]
    hub = start_hub(workdir, manage_hub_access=True, extra=f"c.Spawner.args = {args!r}\n")
    try:
        w = World(hub, workdir / "home")
        start_server(hub, OWNER)
        assert w.server("api/contents/lab1", "PUT", {"type": "directory"})[0] in (200, 201)
        w.reset_notebook()
        members = [{"user": EDITOR, "role": "editor"}, {"user": VIEWER, "role": "viewer"}]
        w.session_id = host_session(w.rtc, {"title": "Lab 1", "host": "owner", "root": "lab1",
                                            "members": members})
        assert w.rtc("PUT", f"/sessions/{w.session_id}/cells",
                     {"path": "nb.ipynb", "cell_id": "locked", "rule": "locked"})[0] in (200, 201)
        yield w
    finally:
        hub.stop()


@pytest.fixture
async def clients(world: World) -> AsyncIterator[dict[str, YClient]]:
    """Everyone connected to the notebook as the module started it (an attack that
    got through must not leak into the next test)."""
    await asyncio.to_thread(world.reset_notebook)
    await asyncio.sleep(1.5)  # an open room notices the file changed and reloads it
    opened = {user: await world.client(user) for user in (OWNER, EDITOR, VIEWER)}
    await opened[OWNER].until(lambda: opened[OWNER].ids() == list(CELLS))
    yield opened
    for client in opened.values():
        client.close()


async def saved(world: World, what: str, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        disk = world.disk()
        return disk if predicate(disk) else None

    return dict(await asyncio.to_thread(wait_for, what, check, 30))


async def reload_room(world: World, clients: dict[str, YClient]) -> YClient:
    """Everyone leaves, the room is dropped, and a new client makes it load again."""
    for client in clients.values():
        client.close()
    await asyncio.sleep(2.5)  # the cleanup delay, and the room's last save
    return await world.client(OWNER)


def locked_cells(disk: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in disk["cells"] if c.get("id") == "locked"]


# -- cell identity: what the saved file will say ------------------------------------------


def text_id_cell(source: str) -> Map:
    return Map({"id": Text("locked"), "cell_type": "code", "source": Text(source),
                "metadata": Map(), "outputs": Array(), "execution_count": None})


async def test_a_text_id_equal_to_a_locked_id_takes_nothing(world: World, clients: dict[str, YClient]
                                                            ) -> None:
    """A cell whose id is a Y.Text "locked" saves as id "locked", and the save path
    renames the real cell that comes second: its lock would be gone after a reload."""
    editor = clients[EDITOR]
    editor.cells.insert(0, text_id_cell("SECRET-takeover"))
    await asyncio.sleep(1.0)  # past the save delay
    await clients[OWNER].until(lambda: "SECRET-takeover" not in json.dumps(clients[OWNER].state()))
    disk = await saved(world, "the file saved", lambda d: len(d["cells"]) >= 3)
    assert "SECRET-takeover" not in json.dumps(disk)
    assert ["".join(c["source"]) for c in locked_cells(disk)] == [LOCKED_SOURCE]
    owner = await reload_room(world, clients)
    try:
        assert owner.ids() == list(CELLS)
        assert owner.source("locked") == LOCKED_SOURCE
        editor = await world.client(EDITOR)
        try:
            editor.type_into("locked", "SECRET-after-reload ")
            await editor.until(lambda: editor.source("locked") == LOCKED_SOURCE)
        finally:
            editor.close()
    finally:
        owner.close()


@pytest.mark.parametrize("change", ["duplicate plain id", "renamed to a Text id"])
async def test_duplicate_and_non_string_ids_are_refused(world: World, clients: dict[str, YClient],
                                                        change: str) -> None:
    editor = clients[EDITOR]
    if change == "duplicate plain id":
        editor.cells.insert(0, Map({"id": "other", "cell_type": "code", "source": Text("SECRET-dup"),
                                    "metadata": Map(), "outputs": Array(), "execution_count": None}))
    else:
        editor.cell("other")["id"] = Text("locked")
    await editor.until(lambda: editor.ids() == list(CELLS))
    await asyncio.sleep(1.0)
    assert [c["id"] for c in world.disk()["cells"]] == list(CELLS)
    assert clients[OWNER].ids() == list(CELLS)


async def test_an_editor_cannot_make_the_save_drop_every_id(world: World, clients: dict[str, YClient]
                                                            ) -> None:
    """Below nbformat 4.5 the save path drops cell ids; the reload then invents new ones."""
    editor = clients[EDITOR]
    editor.doc.get("meta", type=Map)["nbformat_minor"] = 4
    await editor.until(lambda: editor.doc.get("meta", type=Map).get("nbformat_minor") == 5)
    owner = await reload_room(world, clients)
    try:
        assert world.disk()["nbformat_minor"] == 5
        assert owner.ids() == list(CELLS)
    finally:
        owner.close()


# -- refused content leaves nothing behind ---------------------------------------------------

MARKER = "Z7q"  # with a per-case suffix: a string no notebook holds by chance
BIG = 200_000


def formatting(tag: str) -> Callable[[Text], None]:
    return lambda text: text.format(0, 3, {f"ATTR-{tag}": f"VALUE-{tag}"})


def attributed_insert(tag: str) -> Callable[[Text], None]:
    return lambda text: text.insert(1, f"TEXT-{tag}", {f"ATTR-{tag}": f"VALUE-{tag}"})


def big_embed(tag: str) -> Callable[[Text], None]:
    return lambda text: text.insert_embed(1, {f"ATTR-{tag}": f"VALUE-{tag}" + "e" * BIG})


ATTACKS = {"formatting": formatting, "insert with attributes": attributed_insert, "200 kB embed": big_embed}


@pytest.mark.parametrize(("user", "cell"), [(VIEWER, "free"), (EDITOR, "locked")])
@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_refused_formatting_and_embeds_leave_nothing(world: World, clients: dict[str, YClient],
                                                           attack: str, user: str, cell: str) -> None:
    tag = f"{MARKER}-{user}-{cell}-{attack.replace(' ', '_')}"
    store_before = len(world.ystore_bytes())
    attacker = clients[user]
    ATTACKS[attack](tag)(attacker.cell(cell)["source"])
    await asyncio.sleep(1.5)  # refused or closed, echoed, saved
    owner = clients[OWNER]
    owner.type_into("free", "after ")  # the room still works and saves
    await saved(world, "a later edit saved", lambda d: "after " in json.dumps(d))
    late = await world.client(OWNER)
    try:
        places = {"owner's replica": owner.doc.get_update(), "late joiner": late.doc.get_update(),
                  "saved file": json.dumps(world.disk()).encode(), "ystore": world.ystore_bytes()}
        for place, data in places.items():
            assert tag.encode() not in data, f"refused content in the {place}"
        assert owner.source(cell) == late.source(cell)
        assert not formatted(owner.doc) and not formatted(late.doc)
    finally:
        late.close()
    assert len(world.ystore_bytes()) - store_before < BIG // 4  # the store did not take it


def formatted(doc: Doc) -> bool:
    """Whether any cell source carries formatting or an embed."""
    return any(attrs or not isinstance(chunk, str)
               for c in doc.get("cells", type=Array) for chunk, attrs in c["source"].diff())


# -- text that no file can hold -------------------------------------------------------------


def delete_only(client_id: int, clock: int, length: int) -> bytes:
    """A hand-made update with no new content and one delete range: ``length``
    clock units of ``client_id``'s from ``clock`` (lib0 varuints, as y-sync has them)."""
    encoder = Encoder()
    for number in (0, 1, client_id, 1, clock, length):  # no structs; one client, one range
        encoder.write_var_uint(number)
    return encoder.to_bytes()


def clock_of(doc: Doc) -> int:
    """The next clock ``doc``'s own client will use."""
    decoder = Decoder(doc.get_state())  # a state vector: (client, clock) pairs
    for _ in range(decoder.read_var_uint()):
        if decoder.read_var_uint() == doc.client_id:
            return decoder.read_var_uint()
        decoder.read_var_uint()
    return 0


def utf8_whole(value: Any) -> bool:
    """Whether every string in ``value`` can be written as UTF-8 (no lone surrogate)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def test_a_delete_inside_an_emoji_is_refused_and_the_file_stays_whole(
        world: World, clients: dict[str, YClient]) -> None:
    """A Yjs clock counts UTF-16 units, so an emoji is two clock units: a delete set
    naming only its second half (which no editor makes, but a script can) made the
    room (yrs) keep the emoji and delete the next character, while JupyterLab (Yjs)
    showed U+FFFD instead, and a browser joining later a third text: the file and
    the browsers disagreed for good.  The room refuses it whole and closes the
    sender; the cell keeps its text everywhere, and later edits still save."""
    editor, owner = clients[EDITOR], clients[OWNER]
    start = clock_of(editor.doc)
    await editor.type(editor.text("free"), "x\U0001f600y", at=0)  # x, the emoji's two units, y
    await owner.until(lambda: "\U0001f600" in owner.source("free"))
    await editor.ws.write_message(create_update_message(
        delete_only(editor.doc.client_id, start + 2, 1)), binary=True)
    code, reason = await asyncio.wait_for(editor.closed, 10)
    assert code == 4400 and "character" in (reason or "")
    owner.type_into("other", "after ")
    disk = await saved(world, "a later edit saved", lambda d: "after " in json.dumps(d))
    raw = (world.home / OWNER / NOTEBOOK).read_bytes()
    assert json.loads(raw.decode("utf-8")) == disk  # valid UTF-8 JSON, not cut short
    free = next(c for c in disk["cells"] if c.get("id") == "free")
    assert "".join(free["source"]).startswith("x\U0001f600y")
    late = await world.client(OWNER)
    try:
        assert late.source("free") == owner.source("free") == "".join(free["source"])
        assert utf8_whole(late.state()) and utf8_whole(owner.state())
    finally:
        late.close()
    # and a stock Yjs client (JupyterLab's CRDT) joining now reads the same text
    stock = await yjs_cells(world.hub.url, OWNER, NOTEBOOK, world.tokens[EDITOR], "free")
    assert next(c for c in stock if c["id"] == "free")["source"] == "".join(free["source"])



# -- bounded work ---------------------------------------------------------------------------


async def test_deeply_nested_maps_are_refused_and_saves_keep_working(
        world: World, clients: dict[str, YClient]) -> None:
    """600 nested maps in an editor's own cell made every later save fail (nbformat
    recursion) and the guard raise on later updates."""
    editor = clients[EDITOR]
    with editor.doc.transaction():
        level = editor.cell("free")["metadata"]
        for _ in range(600):
            level["deeper"] = Map()
            level = level["deeper"]
    code, reason = await asyncio.wait_for(editor.closed, 10)
    assert code == 4413 and "nested" in (reason or "")
    owner = clients[OWNER]
    owner.type_into("free", "still-saving ")
    disk = await saved(world, "the owner's edit saved", lambda d: "still-saving " in json.dumps(d))
    assert "deeper" not in json.dumps(disk)
    fresh = await world.client(EDITOR)  # an editor can work again after reconnecting
    try:
        fresh.type_into("free", "editor-again ")
        await saved(world, "the editor's edit saved", lambda d: "editor-again " in json.dumps(d))
    finally:
        fresh.close()


# -- a client that stops reading (last: the room keeps the 60 MB it carries here in its
# -- history and store, which later tests' clients would then have to sync) --------------


async def caught_up(reader: YClient, writer: YClient, what: str, timeout: float = 30) -> None:
    """Until ``reader`` holds ``writer``'s "other" cell (no 1 MB dump on failure)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while reader.source("other") != writer.source("other"):
        assert not reader.closed.done(), f"{what}: the reading client was closed: {reader.closed.result()}"
        assert asyncio.get_running_loop().time() < deadline, f"{what}: the reading client fell behind"
        await asyncio.sleep(0.01)


async def test_a_client_that_stops_reading_is_closed_not_buffered(
        world: World, clients: dict[str, YClient]) -> None:
    """The room writes each frame straight to every client's socket.  A client that
    stops reading (a frozen tab, a stalled script) must not make the server hold the
    room's traffic for it without bound: past ``room_backlog_bytes`` it is closed
    (4408, or dropped while its close waits behind what it never read), and
    everyone else goes on receiving."""
    stalled = await notebook_socket(world.hub.url, OWNER, NOTEBOOK, world.tokens[VIEWER],
                                    max_message_size=1 << 26)
    await stalled.write_message(create_sync_message(Doc()), binary=True)  # joined; never reads
    owner, editor = clients[OWNER], clients[EDITOR]
    chunk = "z" * 1_000_000
    try:
        for n in range(60):  # 60 MB through the room, 1 MB at a time, the cell kept at 1 MB
            text = owner.text("other")
            with owner.doc.transaction():
                del text[0:len(text)]
                text.insert(0, f"<{n}>{chunk}")
            # a client that reads keeps up (one update behind at most), whatever the limit
            await caught_up(editor, owner, f"update {n}")
        owner.type_into("other", "after ")
        await caught_up(editor, owner, "the last edit")
        assert editor.source("other").startswith("after <59>") and not editor.closed.done()
        # what reached the stalled client before it was cut off, then the end of it
        received = 0
        while (message := await asyncio.wait_for(stalled.read_message(), 30)) is not None:
            received += len(message)
        assert stalled.close_code in (4408, None), stalled.close_code
        assert received < 40_000_000  # it did not get everything: it was cut off (13 MB seen)
    finally:
        close_socket(stalled)
