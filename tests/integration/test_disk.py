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
It also hosts "Runs" (folder ``runs``: ru runner, ed editor), where someone may
run code but not edit: there the file may change only outputs and execution
counts, whoever's kernel wrote it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Map
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from hub_rtc.localhub import LocalHub
from hub_rtc.singleuser.disk import THE_FILE
from tests.integration.conftest import (
    code_notebook,
    dedicated_session,
    host_session,
    saved_notebook,
    start_hub,
    start_server,
    wait_for,
)
from tests.integration.kernels import execute
from tests.integration.yclient import YClient, close_socket

pytestmark = pytest.mark.integration

OWNER, EDITOR, VIEWER, MANAGER, RUNNER = "olive", "ed", "vi", "mo", "ru"
NOTEBOOK = "lab/nb.ipynb"
RUNS_NOTEBOOK = "runs/nb.ipynb"
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
        self.tokens = {name: hub.user_token(name) for name in (OWNER, EDITOR, VIEWER, MANAGER, RUNNER)}
        self.session_id = ""
        self.notebook = NOTEBOOK  # the notebook the helpers below are about
        self.account = OWNER  # and the server it is on

    def at(self, notebook: str, session_id: str, account: str = OWNER) -> World:
        """The same hub, about another session's notebook (on ``account``'s server)."""
        other = copy.copy(self)
        other.notebook, other.session_id, other.account = notebook, session_id, account
        return other

    def server(self, path: str, method: str = "GET", body: Any = None, user: str = OWNER,
               ) -> tuple[int, Any]:
        return self.hub.api(method, f"/user/{self.account}/{path}", body, self.tokens[user])

    def rtc(self, method: str, path: str, body: Any = None, user: str = OWNER) -> tuple[int, Any]:
        return self.hub.rtc(method, path, body, self.tokens[user])

    @property
    def file(self) -> Path:
        return self.home / self.account / self.notebook

    def disk(self) -> dict[str, Any]:
        return saved_notebook(self.file)

    def disk_cells(self) -> list[tuple[str, str]]:
        return [(c["id"], "".join(c["source"])) for c in self.disk()["cells"]]

    async def client(self, user: str = OWNER) -> YClient:
        return await YClient.connect(self.hub.url, self.account, self.notebook, self.tokens[user])

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
    # Kernels as the server's account (no sandbox, where the notebooks would be read-only
    # to them): what the disk guard must hold against whatever writes the file.
    hub = start_hub(workdir, manage_hub_access=True, extra=(
        f"c.Spawner.args = {SERVER_ARGS!r}\nc.RTCPolicy.kernel_isolation = 'none'\n"))
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
        "path": world.notebook, "type": "notebook", "name": "", "kernel": {"name": "python3"}},
        user=user)
    assert status == 201, model
    kernel_id = model["kernel"]["id"]
    url = (world.hub.url.replace("http", "ws", 1)
           + f"/user/{world.account}/api/kernels/{kernel_id}/channels")
    ws = await websocket_connect(HTTPRequest(url, headers={
        "Authorization": f"token {world.tokens[user]}"}))
    return kernel_id, ws


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
    await editors_kernel_rewrites(world)


async def editors_kernel_rewrites(world: World) -> None:
    """ed's real kernel rewrites the locked and the free cell in the file: the free cell's
    change reaches the owner, the locked cell stays as authorized, and so does the file."""
    owner = await world.client(OWNER)
    kernel_id, ws = await kernel_socket(world, EDITOR)
    try:
        printed = await asyncio.wait_for(execute(ws, KERNEL_REWRITE), 60)
        assert "written" in printed, printed
        await owner.until(lambda: owner.source("free") == "# free, from the kernel\n")
        await asyncio.sleep(0.5)
        assert owner.source("locked") == LOCKED
        await asyncio.to_thread(wait_for, "the file saved back",
                                lambda: locked_as_authorized(world.disk_cells()), 10)
    finally:
        close_socket(ws)
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
    await server_stopped(world)
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


async def server_stopped(world: World) -> None:
    """Stop the owner's server through the hub and wait until it is gone."""
    assert world.hub.api("DELETE", f"/hub/api/users/{OWNER}/server")[0] in (202, 204)
    await asyncio.to_thread(wait_for, "the server stopped", lambda: not (
        world.hub.api("GET", f"/hub/api/users/{OWNER}")[1].get("servers") or {}), 60)


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


async def test_stored_updates_newer_than_the_file_are_checked_like_the_file(
        world: World, notebook: None) -> None:
    # The room loads the store where it holds edits the file lacks (a crash before the
    # save); a kernel writing the store with a later time must not get a locked cell in.
    owner = await world.client(OWNER)
    await saved_by_the_room(world, owner, "free", "saved ")
    owner.close()
    await server_stopped(world)
    store_ahead(world, {"locked": "# HACKED through the store\n", "free": "from the store "})
    await asyncio.to_thread(start_server, world.hub, OWNER)
    await asyncio.to_thread(wait_for, "the server announced itself again", lambda: world.rtc(
        "GET", f"/sessions/{world.session_id}")[1]["hosting"]["state"] == "ready", 90)
    late = await world.client(VIEWER)
    try:
        assert late.source("locked") == LOCKED
        assert late.source("free").startswith("from the store ")  # newer, and not ruled
    finally:
        late.close()
    await asyncio.to_thread(wait_for, "the file saved with the store's unruled edit",
                            lambda: dict(world.disk_cells())["free"].startswith("from the store "),
                            10)
    assert dict(world.disk_cells())["locked"] == LOCKED


def store_ahead(world: World, prefixes: dict[str, str]) -> None:
    """Append to the stored updates one that puts ``prefixes`` before cells' sources,
    stamped an hour after now: newer than the file, as unsaved edits are."""
    from pycrdt import Array, Doc, Text

    [db] = list((world.home / OWNER).rglob("*ystore*.db"))
    with sqlite3.connect(db) as con:
        [(path,)] = con.execute("SELECT DISTINCT path FROM yupdates WHERE path LIKE '.notebook:%'")
        doc: Doc = Doc()
        for (update,) in con.execute("SELECT yupdate FROM yupdates WHERE path = ? "
                                     "ORDER BY timestamp", (path,)):
            doc.apply_update(update)
        before = doc.get_state()
        for cell in doc.get("cells", type=Array):
            assert isinstance(cell, Map)
            prefix = prefixes.get(str(cell.get("id")))
            source = cell.get("source")
            if prefix and isinstance(source, Text):
                source.insert(0, prefix)
        con.execute("INSERT INTO yupdates VALUES (?, ?, ?, ?)",
                    (path, doc.get_update(before), b"", time.time() + 3600))


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


# -- a restored checkpoint ---------------------------------------------------------


async def test_the_owner_restoring_a_checkpoint_is_believed(world: World, notebook: None) -> None:
    """jupyter_server restores a checkpoint by copying it over the file, past ``save``:
    still a write through the contents manager, which the Authorizer let through (to
    nobody with protected cells)."""
    status, checkpoint = world.server(f"api/contents/{NOTEBOOK}/checkpoints", "POST")
    assert status == 201, checkpoint
    owner = await world.client(OWNER)
    try:
        await saved_by_the_room(world, owner, "locked", "v2 ")  # the baseline is now "v2 …"
        refused = await asyncio.to_thread(world.refusals_by_the_file)
        status, reply = world.server(f"api/contents/{NOTEBOOK}/checkpoints/{checkpoint['id']}", "POST")
        assert status == 204, reply
        await owner.until(lambda: owner.source("locked") == LOCKED)  # the room loaded it
        await asyncio.sleep(1.0)
        assert owner.source("locked") == LOCKED and dict(world.disk_cells())["locked"] == LOCKED
        assert await asyncio.to_thread(world.refusals_by_the_file) == refused
        # what was restored is what the file is now held to
        world.tamper(tampers()["rewrite"])
        await owner.until(lambda: owner.source("free") == "# free, from the file\n")
        await asyncio.sleep(0.5)
        assert owner.source("locked") == LOCKED
    finally:
        owner.close()
    await asyncio.to_thread(wait_for, "the file saved back",
                            lambda: locked_as_authorized(world.disk_cells()), 10)


async def test_a_checkpoint_restored_while_the_room_is_closed_is_believed(world: World,
                                                                          notebook: None) -> None:
    status, checkpoint = world.server(f"api/contents/{NOTEBOOK}/checkpoints", "POST")
    assert status == 201, checkpoint
    owner = await world.client(OWNER)
    await saved_by_the_room(world, owner, "locked", "v2 ")
    owner.close()
    await room_closed(world)
    status, reply = world.server(f"api/contents/{NOTEBOOK}/checkpoints/{checkpoint['id']}", "POST")
    assert status == 204, reply
    late = await world.client(VIEWER)
    try:
        assert late.source("locked") == LOCKED
    finally:
        late.close()
    await room_closed(world)
    world.tamper(tampers()["rewrite"])
    again = await world.client(VIEWER)
    try:
        assert again.source("locked") == LOCKED
    finally:
        again.close()


async def test_a_checkpoint_a_kernel_rewrote_is_checked_like_the_file(world: World,
                                                                       notebook: None) -> None:
    """Checkpoints are files in the kernels' reach too: restoring one that is not what
    the server saved when it was made must not launder a kernel's rewrite."""
    (await world.client(OWNER)).close()  # opened once since the rule was made: a baseline
    await room_closed(world)
    status, checkpoint = world.server(f"api/contents/{NOTEBOOK}/checkpoints", "POST")
    assert status == 201, checkpoint
    saved = world.file.parent / ".ipynb_checkpoints" / f"nb-{checkpoint['id']}.ipynb"
    rewritten = json.loads(saved.read_text())
    for cell in rewritten["cells"]:
        if cell["id"] == "locked":
            cell["source"] = "# HACKED in the checkpoint\n"
        if cell["id"] == "free":
            cell["source"] = "# free, from the checkpoint\n"
    saved.write_text(json.dumps(rewritten))
    refused = await asyncio.to_thread(world.refusals_by_the_file)
    status, reply = world.server(f"api/contents/{NOTEBOOK}/checkpoints/{checkpoint['id']}", "POST")
    assert status == 204, reply
    late = await world.client(VIEWER)
    try:
        assert late.source("locked") == LOCKED and b"HACKED" not in late.doc.get_update()
        assert late.source("free") == "# free, from the checkpoint\n"  # unruled: the file's
    finally:
        late.close()
    await asyncio.to_thread(wait_for, "the file saved back", lambda: dict(
        world.disk_cells())["locked"] == LOCKED, 10)
    await asyncio.to_thread(wait_for, "the refusal counted",
                            lambda: world.refusals_by_the_file() > refused, 15)


# -- where someone may run code but not edit -------------------------------------------

#: what a runner's kernel writes into the file: a source it may not change, an output it may
RAN = "ran in ru's kernel"


@pytest.fixture(scope="module")
def runs_world(world: World) -> World:
    """olive's "Runs" session: ru may run code, not edit; ed edits."""
    assert world.server("api/contents/runs", "PUT", {"type": "directory"})[0] in (200, 201)
    session_id = host_session(world.rtc, {"title": "Runs", "host": "owner", "root": "runs",
                                          "members": [{"user": RUNNER, "role": "runner"},
                                                      {"user": EDITOR, "role": "editor"}]})
    return world.at(RUNS_NOTEBOOK, session_id)


@pytest.fixture
def runs(runs_world: World) -> Iterator[World]:
    """A fresh notebook in "Runs" with ``locked`` locked, and no room open at the start."""
    time.sleep(ROOM_GONE)
    w = runs_world
    status, _ = w.server(f"api/contents/{RUNS_NOTEBOOK}", "PUT", {
        "type": "notebook", "format": "json", "content": code_notebook(CELLS, kernelspec=True)})
    assert status in (200, 201)
    assert w.rtc("PUT", f"/sessions/{w.session_id}/cells",
                 {"path": "nb.ipynb", "cell_id": "locked", "rule": "locked"})[0] in (200, 201)
    yield w
    w.rtc("DELETE", f"/sessions/{w.session_id}/cells?path=nb.ipynb&cell_id=locked")


RUNNER_REWRITE = f"""
import json, os
path = "nb.ipynb" if os.path.exists("nb.ipynb") else "runs/nb.ipynb"
nb = json.load(open(path))
for cell in nb["cells"]:
    if cell["id"] == "free":
        cell["source"] = "# HACKED from ru's kernel\\n"
        cell["outputs"] = [{{"output_type": "stream", "name": "stdout", "text": ["{RAN}\\n"]}}]
        cell["execution_count"] = 7
json.dump(nb, open(path, "w"))
print("written", path)
"""


def outputs(client: YClient, cell_id: str) -> str:
    return json.dumps(client.cell(cell_id).get("outputs").to_py())  # type: ignore[union-attr]


def disk_cell(world: World, cell_id: str) -> dict[str, Any]:
    return next(c for c in world.disk()["cells"] if c["id"] == cell_id)


def free_as_authorized(world: World, source: str = "# free\n") -> bool:
    """On disk: the free cell's source put back, the kernel's output kept."""
    free = disk_cell(world, "free")
    return "".join(free["source"]) == source and RAN in json.dumps(free["outputs"])


async def runner_rewrites(world: World) -> None:
    """ru's real kernel rewrites the free cell's source and output in the file."""
    kernel_id, ws = await kernel_socket(world, RUNNER)
    try:
        printed = await asyncio.wait_for(execute(ws, RUNNER_REWRITE), 60)
        assert "written" in printed, printed
    finally:
        close_socket(ws)
        world.server(f"api/kernels/{kernel_id}", "DELETE")


async def test_a_runners_kernel_may_change_outputs_but_not_sources(runs: World) -> None:
    owner, editor = await runs.client(OWNER), await runs.client(EDITOR)
    try:
        refused = await asyncio.to_thread(runs.refusals_by_the_file)
        await runner_rewrites(runs)
        for client in (owner, editor):  # the reload happened: the output reached everyone
            await client.until(lambda c=client: RAN in outputs(c, "free"))
        await asyncio.sleep(0.5)
        for client in (owner, editor):
            assert client.source("free") == "# free\n", client.state()
            assert RAN in outputs(client, "free") and "HACKED" not in json.dumps(client.state())
        await asyncio.to_thread(wait_for, "the file saved back", lambda: free_as_authorized(runs), 10)
        await asyncio.to_thread(wait_for, "the refusal counted",
                                lambda: runs.refusals_by_the_file() > refused, 15)
    finally:
        owner.close()
        editor.close()
    late = await runs.client(RUNNER)
    try:
        assert late.source("free") == "# free\n" and b"HACKED" not in late.doc.get_update()
    finally:
        late.close()


async def test_a_runners_kernel_writing_while_the_room_is_closed_changes_no_source(
        runs: World) -> None:
    owner = await runs.client(OWNER)
    await saved_by_the_room(runs, owner, "free", "saved ")  # the baseline of every cell is kept
    owner.close()
    await room_closed(runs)
    await runner_rewrites(runs)
    late = await runs.client(EDITOR)
    try:
        assert late.ids() == list(CELLS) and late.source("free") == "saved # free\n", late.state()
        assert RAN in outputs(late, "free") and "HACKED" not in json.dumps(late.state())
    finally:
        late.close()
    await asyncio.to_thread(wait_for, "the file saved back",
                            lambda: free_as_authorized(runs, "saved # free\n"), 10)


def runner_tampers() -> dict[str, Any]:
    """Rewrites of the whole notebook a runner's kernel may not make; each also writes an
    output into ``free``, which it may (and which shows the room reloaded)."""
    out = [{"output_type": "stream", "name": "stdout", "text": [f"{RAN}\n"]}]

    def insert(nb: dict[str, Any]) -> None:
        nb["cells"].insert(1, {"id": "intruder", "cell_type": "code", "source": "# HACKED new\n",
                               "metadata": {}, "outputs": [], "execution_count": None})

    def delete(nb: dict[str, Any]) -> None:
        nb["cells"] = [c for c in nb["cells"] if c["id"] != "first"]

    def move(nb: dict[str, Any]) -> None:
        nb["cells"] = [*nb["cells"][1:], nb["cells"][0]]

    def retype(nb: dict[str, Any]) -> None:
        first = nb["cells"][0]
        first.update(cell_type="markdown", source="# HACKED as markdown\n")
        first.pop("outputs"), first.pop("execution_count")

    def cell_metadata(nb: dict[str, Any]) -> None:
        nb["cells"][0]["metadata"] = {"tags": ["HACKED"], "editable": True}

    def notebook_metadata(nb: dict[str, Any]) -> None:
        nb["metadata"]["HACKED"] = True
        nb["metadata"]["kernelspec"]["display_name"] = "HACKED"

    def with_output(edit: Any) -> Any:
        def both(nb: dict[str, Any]) -> None:
            edit(nb)
            next(c for c in nb["cells"] if c["id"] == "free")["outputs"] = out
        return both

    return {name: with_output(edit) for name, edit in [
        ("insert", insert), ("delete", delete), ("move", move), ("retype", retype),
        ("cell metadata", cell_metadata), ("notebook metadata", notebook_metadata)]}


def tamper_notebook(world: World, edit: Any) -> None:
    notebook = world.disk()
    edit(notebook)
    world.file.write_text(json.dumps(notebook))


def untouched(client: YClient) -> bool:
    first = client.cell("first").to_py()
    return (client.ids() == list(CELLS) and first["cell_type"] == "code"
            and first["source"] == "# first\n" and set(first["metadata"]) <= {"trusted"}
            and "HACKED" not in json.dumps(client.doc.get("meta", type=Map).to_py())
            and "HACKED" not in json.dumps(client.state()))


@pytest.mark.parametrize("how", list(runner_tampers()))
async def test_what_a_runner_may_not_change_is_put_back_from_the_open_room(runs: World,
                                                                           how: str) -> None:
    owner = await runs.client(OWNER)
    try:
        tamper_notebook(runs, runner_tampers()[how])
        await owner.until(lambda: RAN in outputs(owner, "free"))
        await asyncio.sleep(0.5)
        assert untouched(owner), (how, owner.state(), owner.doc.get("meta", type=Map).to_py())

        def on_disk() -> bool:
            nb = runs.disk()
            return ([c["id"] for c in nb["cells"]] == list(CELLS) and "HACKED" not in json.dumps(nb)
                    and RAN in json.dumps(disk_cell(runs, "free")["outputs"]))

        await asyncio.to_thread(wait_for, "the file saved back", on_disk, 10)
    finally:
        owner.close()


@pytest.mark.parametrize("how", ["insert", "delete", "notebook metadata"])
async def test_what_a_runner_may_not_change_is_put_back_in_a_closed_room(runs: World,
                                                                         how: str) -> None:
    owner = await runs.client(OWNER)
    await saved_by_the_room(runs, owner, "free", "saved ")
    owner.close()
    await room_closed(runs)
    tamper_notebook(runs, runner_tampers()[how])
    late = await runs.client(EDITOR)
    try:
        assert untouched(late), (how, late.state())
        assert late.source("free") == "saved # free\n" and RAN in outputs(late, "free")
    finally:
        late.close()


async def test_a_restarted_server_holds_the_file_to_what_a_runner_may_change(runs: World) -> None:
    owner = await runs.client(OWNER)
    await saved_by_the_room(runs, owner, "free", "before restart ")
    owner.close()
    await server_stopped(runs)

    def rewrite(cells: list[dict[str, Any]]) -> None:
        free = next(c for c in cells if c["id"] == "free")
        free.update(source="# HACKED while stopped\n", execution_count=3, outputs=[
            {"output_type": "stream", "name": "stdout", "text": [f"{RAN}\n"]}])

    runs.tamper(rewrite)
    tamper_ystore(runs)
    await asyncio.to_thread(start_server, runs.hub, OWNER)

    def back() -> bool:
        _, session = runs.rtc("GET", f"/sessions/{runs.session_id}")
        return session["hosting"]["state"] == "ready"

    await asyncio.to_thread(wait_for, "the server announced itself again", back, 90)
    late = await runs.client(EDITOR)
    try:
        assert late.source("free") == "before restart # free\n", late.state()
        assert RAN in outputs(late, "free") and "HACKED" not in json.dumps(late.state())
    finally:
        late.close()
    await asyncio.to_thread(wait_for, "the file saved back",
                            lambda: free_as_authorized(runs, "before restart # free\n"), 10)


async def test_an_editors_edit_in_the_room_is_what_the_file_is_held_to(runs: World) -> None:
    """The positive control: what a writer changed in the room is the new baseline."""
    editor = await runs.client(EDITOR)
    await saved_by_the_room(runs, editor, "first", "ed's ")
    editor.close()
    await room_closed(runs)
    await runner_rewrites(runs)
    late = await runs.client(OWNER)
    try:
        assert late.source("first") == "ed's # first\n" and late.source("free") == "# free\n"
    finally:
        late.close()


async def runner_rewrite_seen_later(runs: World, source: str) -> None:
    """With the room closed, ru's kernel rewrites the file; a client joining later sees the
    free cell's source as ``source`` (as authorized) and the kernel's output."""
    await runner_rewrites(runs)
    late = await runs.client(EDITOR)
    try:
        assert late.source("free") == source, late.state()
        assert RAN in outputs(late, "free")
    finally:
        late.close()


async def test_who_runs_code_is_counted_when_it_changes(runs: World) -> None:
    """Without a runner an unruled cell is the file's; someone made a runner while the
    notebook is open counts at once: what the room had then is what the file is held to
    (the room closes without saving again)."""
    member = f"/sessions/{runs.session_id}/members/user/{RUNNER}"
    assert runs.rtc("PUT", member, {"role": "editor"})[0] == 200
    try:
        def from_the_file(cells: list[dict[str, Any]]) -> None:
            next(c for c in cells if c["id"] == "free")["source"] = "# free, no runner\n"

        runs.tamper(from_the_file)
        owner = await runs.client(OWNER)
        try:
            assert owner.source("free") == "# free, no runner\n"  # everyone who runs code edits
            assert runs.rtc("PUT", member, {"role": "runner"})[0] == 200
            await asyncio.sleep(1.0)  # the push reaches the open room, which keeps its baseline
        finally:
            owner.close()
        await room_closed(runs)
        await runner_rewrite_seen_later(runs, "# free, no runner\n")
    finally:
        runs.rtc("PUT", member, {"role": "runner"})


async def test_a_runner_added_while_the_notebook_is_open_is_counted_at_once(runs: World) -> None:
    """A new member is pushed to the server like a changed role: the open room keeps the
    whole notebook's baseline before it closes (it may not save again)."""
    member = f"/sessions/{runs.session_id}/members/user/{RUNNER}"
    assert runs.rtc("DELETE", member)[0] in (200, 204)
    try:
        owner = await runs.client(OWNER)
        try:
            status, reply = runs.rtc("PUT", member, {"role": "runner"})
            assert status == 201 and reply["enforced"], reply  # the push was confirmed
            await asyncio.sleep(1.0)
        finally:
            owner.close()
        await room_closed(runs)
        await asyncio.to_thread(wait_for, "the runner shared in again",
                                lambda: runs.server("api/contents/runs", user=RUNNER)[0] == 200, 30)
        await runner_rewrite_seen_later(runs, "# free\n")
    finally:
        runs.rtc("PUT", member, {"role": "runner"})


async def test_on_a_dedicated_server_an_editors_kernel_changes_nothing_locked(world: World) -> None:
    """The same attack on a session's own server (the default for student groups)."""
    session = await asyncio.to_thread(dedicated_session, world.rtc, {
        "title": "Group", "members": [{"user": EDITOR, "role": "editor"}]})
    group = world.at("nb.ipynb", session["id"], session["server"]["user"])
    try:
        assert group.server("api/contents/nb.ipynb", "PUT", {
            "type": "notebook", "format": "json", "content": code_notebook(CELLS)})[0] == 201
        assert group.rtc("PUT", f"/sessions/{group.session_id}/cells",
                         {"path": "nb.ipynb", "cell_id": "locked", "rule": "locked"})[0] in (200, 201)
        await editors_kernel_rewrites(group)
    finally:
        world.rtc("DELETE", f"/sessions/{session['id']}")
