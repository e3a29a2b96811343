"""The file on disk and the update store are principals too, on a real hub.

An editor may not change the locked cell in the room; code in their kernel
runs as the server and can write the notebook file (and the ystore) directly.
jupyter-collaboration loads such out-of-band changes into the room, and a
room that starts again loads the file.  Each attack here writes the file
(from a real kernel, or as the server's account would) and checks that the
locked cell is what the room last authorized, for every client, for a client
that joins later and on disk, and that the attempt is counted as refused by
the file.

One hub for the module: olive's server hosts "Lab" (folder ``lab``: ed
editor, vi viewer, mo manager); cell ``locked`` of ``lab/nb.ipynb`` is locked.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from hub_rtc.localhub import LocalHub
from hub_rtc.singleuser.disk import THE_FILE

from .conftest import code_notebook, host_session, saved_notebook, start_hub, start_server, wait_for
from .yclient import YClient

pytestmark = pytest.mark.integration

OWNER, EDITOR, VIEWER, MANAGER = "olive", "ed", "vi", "mo"
NOTEBOOK = "lab/nb.ipynb"
CELLS = ("first", "locked", "free")
LOCKED = "# locked\n"

SERVER_ARGS = ["--allow-root", "--HubRTCExtension.flush_seconds=0.5",
               "--YDocExtension.file_poll_interval=0.3", "--YDocExtension.document_save_delay=0.2",
               "--YDocExtension.document_cleanup_delay=0.5"]
#: long enough for a room whose clients all left to be gone
ROOM_GONE = 1.5


class World:
    def __init__(self, hub: LocalHub, home: Path) -> None:
        self.hub = hub
        self.home = home
        self.tokens = {name: hub.user_token(name) for name in (OWNER, EDITOR, VIEWER, MANAGER)}
        self.session_id = ""

    def server(self, path: str, method: str = "GET", body: Any = None, user: str = OWNER,
               ) -> tuple[int, Any]:
        return self.hub.api(method, f"/user/{OWNER}/{path}", body, self.tokens[user])

    def rtc(self, method: str, path: str, body: Any = None, user: str = OWNER) -> tuple[int, Any]:
        return self.hub.rtc(method, path, body, self.tokens[user])

    @property
    def file(self) -> Path:
        return self.home / OWNER / NOTEBOOK

    def disk(self) -> dict[str, Any]:
        return saved_notebook(self.file)

    def disk_cells(self) -> list[tuple[str, str]]:
        return [(c["id"], "".join(c["source"])) for c in self.disk()["cells"]]

    async def client(self, user: str = OWNER) -> YClient:
        return await YClient.connect(self.hub.url, OWNER, NOTEBOOK, self.tokens[user])

    def tamper(self, edit: Any) -> None:
        """Rewrite the notebook file as the server's account can (what a kernel can)."""
        notebook = self.disk()
        edit(notebook["cells"])
        self.file.write_text(json.dumps(notebook))

    def refusals_by_the_file(self) -> int:
        status, reply = self.rtc("GET", f"/sessions/{self.session_id}/activity?kind=refused")
        assert status == 200, reply
        return sum(e["count"] for e in reply["events"] if e["user"] == THE_FILE)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("disk")
    hub = start_hub(workdir, manage_hub_access=True, extra=f"c.Spawner.args = {SERVER_ARGS!r}\n")
    try:
        w = World(hub, workdir / "home")
        start_server(hub, OWNER)
        assert w.server("api/contents/lab", "PUT", {"type": "directory"})[0] in (200, 201)
        w.session_id = host_session(w.rtc, {"title": "Lab", "host": "owner", "root": "lab",
                                            "members": [{"user": EDITOR, "role": "editor"},
                                                        {"user": VIEWER, "role": "viewer"},
                                                        {"user": MANAGER, "role": "manager"}]})
        yield w
    finally:
        hub.stop()


@pytest.fixture
def notebook(world: World) -> Iterator[None]:
    """A fresh notebook with ``locked`` locked, and no room open at the start."""
    # The last test's room is cleaned up 0.5 s after its last client left; a client
    # joining a room being cleaned up is served by a room that is going away.
    time.sleep(ROOM_GONE)
    status, _ = world.server(f"api/contents/{NOTEBOOK}", "PUT",
                             {"type": "notebook", "format": "json", "content": code_notebook(CELLS)})
    assert status in (200, 201)
    assert world.rtc("PUT", f"/sessions/{world.session_id}/cells",
                     {"path": "nb.ipynb", "cell_id": "locked", "rule": "locked"})[0] in (200, 201)
    yield
    world.rtc("DELETE", f"/sessions/{world.session_id}/cells?path=nb.ipynb&cell_id=locked")


async def saved_by_the_room(world: World, client: YClient, cell: str, text: str) -> None:
    """Type ``text`` into ``cell`` and wait until the room saved it."""
    client.type_into(cell, text)
    await asyncio.to_thread(wait_for, "the room saved", lambda: any(
        cid == cell and src.startswith(text) for cid, src in world.disk_cells()))


async def room_closed(world: World) -> None:
    """Wait out the room's clean-up once the last client left."""
    await asyncio.sleep(ROOM_GONE)


def tampers() -> dict[str, Any]:
    def rewrite(cells: list[dict[str, Any]]) -> None:
        for cell in cells:
            if cell["id"] == "locked":
                cell["source"] = "# HACKED by the file\n"
            if cell["id"] == "free":
                cell["source"] = "# free, from the file\n"

    def impostor(cells: list[dict[str, Any]]) -> None:
        fake = {**next(c for c in cells if c["id"] == "locked"), "source": "# HACKED impostor\n"}
        cells.insert(0, fake)
        next(c for c in cells if c["id"] == "free")["source"] = "# free, from the file\n"

    def delete(cells: list[dict[str, Any]]) -> None:
        cells[:] = [c for c in cells if c["id"] != "locked"]
        next(c for c in cells if c["id"] == "free")["source"] = "# free, from the file\n"

    def move(cells: list[dict[str, Any]]) -> None:
        locked = next(c for c in cells if c["id"] == "locked")
        cells.remove(locked)
        cells.append(locked)
        next(c for c in cells if c["id"] == "free")["source"] = "# free, from the file\n"

    def retype(cells: list[dict[str, Any]]) -> None:
        locked = next(c for c in cells if c["id"] == "locked")
        locked.update(cell_type="markdown", source="# HACKED as markdown\n")
        locked.pop("outputs"), locked.pop("execution_count")
        next(c for c in cells if c["id"] == "free")["source"] = "# free, from the file\n"

    return {"rewrite": rewrite, "impostor": impostor, "delete": delete, "move": move, "retype": retype}


def locked_as_authorized(cells: list[tuple[str, str]], text: str = LOCKED) -> bool:
    return [cid for cid, _ in cells] == list(CELLS) and dict(cells)["locked"] == text


@pytest.mark.parametrize("how", list(tampers()))
async def test_an_out_of_band_change_to_a_locked_cell_is_put_back(world: World, notebook: None,
                                                                  how: str) -> None:
    owner, viewer = await world.client(OWNER), await world.client(VIEWER)
    try:
        refused = await asyncio.to_thread(world.refusals_by_the_file)
        world.tamper(tampers()[how])
        # the reload happened: the free cell's change reached everyone
        for client in (owner, viewer):
            await client.until(lambda c=client: c.source("free") == "# free, from the file\n")
        await asyncio.sleep(0.5)
        for client in (owner, viewer):
            assert client.ids() == list(CELLS), (how, client.state())
            assert client.source("locked") == LOCKED, how
            assert "HACKED" not in json.dumps(client.state())
        # put back on disk too, and counted against the file
        await asyncio.to_thread(wait_for, "the file saved back", lambda: locked_as_authorized(
            world.disk_cells()), 10)
        await asyncio.to_thread(wait_for, "the refusal counted",
                                lambda: world.refusals_by_the_file() > refused, 15)
    finally:
        owner.close()
        viewer.close()
    late = await world.client(EDITOR)
    try:
        assert late.source("locked") == LOCKED and b"HACKED" not in late.doc.get_update()
    finally:
        late.close()


async def kernel_socket(world: World, user: str) -> tuple[str, WebSocketClientConnection]:
    status, model = world.server("api/sessions", "POST", {
        "path": NOTEBOOK, "type": "notebook", "name": "", "kernel": {"name": "python3"}}, user=user)
    assert status == 201, model
    kernel_id = model["kernel"]["id"]
    url = world.hub.url.replace("http", "ws", 1) + f"/user/{OWNER}/api/kernels/{kernel_id}/channels"
    ws = await websocket_connect(HTTPRequest(url, headers={
        "Authorization": f"token {world.tokens[user]}"}))
    return kernel_id, ws


async def run(ws: WebSocketClientConnection, code: str) -> str:
    """Execute ``code`` in the kernel; what it printed."""
    msg_id = uuid.uuid4().hex
    await ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "", "version": "5.3",
                   "session": uuid.uuid4().hex},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    out = []
    while (raw := await ws.read_message()) is not None:
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["header"]["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["header"]["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))
        elif msg["header"]["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return "".join(out)


KERNEL_REWRITE = """
import json, os
path = os.path.join(os.getcwd(), "nb.ipynb") if os.path.exists("nb.ipynb") else "lab/nb.ipynb"
nb = json.load(open(path))
for cell in nb["cells"]:
    if cell["id"] == "locked":
        cell["source"] = "# HACKED from ed's kernel\\n"
    if cell["id"] == "free":
        cell["source"] = "# free, from the kernel\\n"
json.dump(nb, open(path, "w"))
print("written", path)
"""


async def test_an_editors_kernel_rewriting_the_file_changes_nothing_locked(world: World,
                                                                           notebook: None) -> None:
    owner = await world.client(OWNER)
    kernel_id, ws = await kernel_socket(world, EDITOR)
    try:
        printed = await asyncio.wait_for(run(ws, KERNEL_REWRITE), 60)
        assert "written" in printed, printed
        await owner.until(lambda: owner.source("free") == "# free, from the kernel\n")
        await asyncio.sleep(0.5)
        assert owner.source("locked") == LOCKED
        await asyncio.to_thread(wait_for, "the file saved back",
                                lambda: locked_as_authorized(world.disk_cells()), 10)
    finally:
        ws.close()
        owner.close()
        world.server(f"api/kernels/{kernel_id}", "DELETE")


async def test_a_room_that_starts_again_loads_the_baseline_not_the_file(world: World,
                                                                        notebook: None) -> None:
    """The room is gone (everyone left): the file alone says what the notebook is."""
    owner = await world.client(OWNER)
    await saved_by_the_room(world, owner, "free", "saved ")  # the room saved: baseline kept
    owner.close()
    await room_closed(world)
    world.tamper(tampers()["impostor"])
    late = await world.client(VIEWER)
    try:
        assert late.ids() == list(CELLS) and late.source("locked") == LOCKED
        assert "HACKED" not in json.dumps(late.state())
    finally:
        late.close()
    await asyncio.to_thread(wait_for, "the file saved back",
                            lambda: locked_as_authorized(world.disk_cells()), 10)


async def test_a_managers_edit_is_the_new_baseline(world: World, notebook: None) -> None:
    """Those allowed to change the locked cell still do; what they wrote is what comes back."""
    manager = await world.client(MANAGER)
    await saved_by_the_room(world, manager, "locked", "manager's ")
    manager.close()
    await room_closed(world)
    world.tamper(tampers()["rewrite"])
    late = await world.client(OWNER)
    try:
        assert late.source("locked") == "manager's " + LOCKED
    finally:
        late.close()


async def test_a_cell_locked_while_open_is_protected_before_any_save(world: World) -> None:
    """The rule is made while the notebook is open; the kernel writes at once."""
    await room_closed(world)
    status, _ = world.server(f"api/contents/{NOTEBOOK}", "PUT",
                             {"type": "notebook", "format": "json", "content": code_notebook(CELLS)})
    assert status in (200, 201)
    owner = await world.client(OWNER)
    try:
        assert world.rtc("PUT", f"/sessions/{world.session_id}/cells",
                         {"path": "nb.ipynb", "cell_id": "free", "rule": "locked"})[0] in (200, 201)
        world.tamper(tampers()["rewrite"])
        await owner.until(lambda: "HACKED" in owner.source("locked"))  # not ruled: accepted
        await asyncio.sleep(1.0)
        assert owner.source("free") == "# free\n"  # ruled: put back from the open room
    finally:
        owner.close()
        world.rtc("DELETE", f"/sessions/{world.session_id}/cells?path=nb.ipynb&cell_id=free")


async def test_a_restarted_server_loads_the_baseline_over_a_rewritten_file_and_ystore(
        world: World, notebook: None) -> None:
    owner = await world.client(OWNER)
    await saved_by_the_room(world, owner, "free", "before restart ")
    owner.close()
    assert world.hub.api("DELETE", f"/hub/api/users/{OWNER}/server")[0] in (202, 204)
    await asyncio.to_thread(wait_for, "the server stopped", lambda: not (
        world.hub.api("GET", f"/hub/api/users/{OWNER}")[1].get("servers") or {}), 60)
    world.tamper(tampers()["rewrite"])
    tamper_ystore(world)
    await asyncio.to_thread(start_server, world.hub, OWNER)

    def back() -> bool:
        _, session = world.rtc("GET", f"/sessions/{world.session_id}")
        return session["hosting"]["state"] == "ready"

    await asyncio.to_thread(wait_for, "the server announced itself again", back, 90)
    late = await world.client(VIEWER)
    try:
        assert late.source("locked") == LOCKED
        assert late.source("free") == "# free, from the file\n"  # unruled: the file's
    finally:
        late.close()
    await asyncio.to_thread(wait_for, "the file saved back",
                            lambda: dict(world.disk_cells())["locked"] == LOCKED, 10)


def tamper_ystore(world: World) -> None:
    """Make the stored updates say what the tampered file says, so the room would
    otherwise trust them: replace every stored update of the notebook with it."""
    from jupyter_ydoc import YNotebook
    from pycrdt import Doc

    doc = Doc()
    notebook = YNotebook(doc)
    notebook.set(world.disk())
    for db in (world.home / OWNER).rglob("*ystore*.db"):
        with sqlite3.connect(db) as con:
            paths = [p for (p,) in con.execute("SELECT DISTINCT path FROM yupdates")]
            for path in paths:
                con.execute("DELETE FROM yupdates WHERE path = ?", (path,))
                con.execute("DELETE FROM ycheckpoints WHERE path = ?", (path,))
                con.execute("INSERT INTO yupdates VALUES (?, ?, ?, ?)",
                            (path, doc.get_update(), b"", 0.0))


async def test_the_owner_replacing_the_notebook_through_the_contents_api_is_believed(
        world: World, notebook: None) -> None:
    """A write the Authorizer let through is authorized: open room or not, it stays."""
    owner = await world.client(OWNER)
    try:
        await saved_by_the_room(world, owner, "free", "open ")
        new = code_notebook({"first": "# first\n", "locked": "# locked, v2\n", "free": "# free\n"})
        assert world.server(f"api/contents/{NOTEBOOK}", "PUT",
                            {"type": "notebook", "format": "json", "content": new})[0] == 200
        await owner.until(lambda: owner.source("locked") == "# locked, v2\n")
    finally:
        owner.close()
    await room_closed(world)
    world.tamper(tampers()["rewrite"])  # and v2 is now what the file is held to
    late = await world.client(VIEWER)
    try:
        assert late.source("locked") == "# locked, v2\n"
    finally:
        late.close()
