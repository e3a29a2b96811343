"""Attacks on how a room is named, on a real hub (issue: every write path guarded).

jupyter-collaboration opens the room named by the last segment of the raw
request path; hub_rtc must decide rights about exactly that document.  A room
URL that the two could read differently, or a notebook opened as another
document type, must not carry a change past the guard.

One hub for the module.  olive's server hosts two sessions: "Lab 1" (folder
``lab1``: ed editor, vi viewer; cell ``locked`` locked) and "Lab 2" (folder
``lab2``: eve editor).  ``private.ipynb`` at the server's root is in no session.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pycrdt import Array, Doc, Text, create_sync_message, create_update_message
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from hub_rtc.guard.frames import client_receive_sync
from hub_rtc.localhub import LocalHub
from hub_rtc.singleuser.roomid import FORMAT_OF_TYPE
from tests.integration.conftest import (
    code_notebook,
    dedicated_session,
    host_session,
    saved_notebook,
    start_hub,
    start_server,
    wait_for,
)
from tests.integration.yclient import YClient, close_socket, open_session

pytestmark = pytest.mark.integration

OWNER, EDITOR, VIEWER, OTHER = "olive", "ed", "vi", "eve"
NOTEBOOK, PRIVATE = "lab1/nb.ipynb", "private.ipynb"
CELLS = ("free", "locked")


class World:
    def __init__(self, hub: LocalHub, home: Path) -> None:
        self.hub = hub
        self.home = home
        self.tokens = {name: hub.user_token(name) for name in (OWNER, EDITOR, VIEWER, OTHER)}
        self.session_id = ""
        self.server_session = ""

    def server(self, path: str, method: str = "GET", body: Any = None, user: str = OWNER,
               ) -> tuple[int, Any]:
        return self.hub.api(method, f"/user/{OWNER}/{path}", body, self.tokens[user])

    def rtc(self, method: str, path: str, body: Any = None, user: str = OWNER) -> tuple[int, Any]:
        return self.hub.rtc(method, path, body, self.tokens[user])

    def disk(self, path: str = NOTEBOOK) -> dict[str, Any]:
        return saved_notebook(self.home / OWNER / path)

    def disk_sources(self, path: str = NOTEBOOK) -> dict[str, str]:
        return {c["id"]: "".join(c["source"]) for c in self.disk(path)["cells"]}

    def file_id(self, path: str = NOTEBOOK, fmt: str = "json", kind: str = "notebook") -> str:
        status, reply = self.server(f"api/collaboration/session/{quote(path)}", "PUT",
                                    {"format": fmt, "type": kind})
        assert status in (200, 201), reply
        self.server_session = str(reply["sessionId"])  # the same for every room of the server
        return str(reply["fileId"])


def put_notebook(world: World, path: str, cells: Any) -> None:
    status, _ = world.server(f"api/contents/{path}", "PUT",
                             {"type": "notebook", "format": "json", "content": code_notebook(cells)})
    assert status in (200, 201)


@pytest.fixture
def secret(request: pytest.FixtureRequest) -> str:
    """Text no earlier test wrote: each attack looks for its own."""
    return "SECRET-" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("roomids")
    hub = start_hub(workdir, manage_hub_access=True, extra="c.YDocExtension.document_save_delay = 0.2\n")
    try:
        w = World(hub, workdir / "home")
        start_server(hub, OWNER)
        for folder in ("lab1", "lab2"):
            assert w.server(f"api/contents/{folder}", "PUT", {"type": "directory"})[0] in (200, 201)
        put_notebook(w, NOTEBOOK, CELLS)
        put_notebook(w, "lab2/other.ipynb", ("mine",))
        put_notebook(w, PRIVATE, {"diary": "olive's private notes\n"})
        w.session_id = host_session(w.rtc, {"title": "Lab 1", "host": "owner", "root": "lab1",
                                            "members": [{"user": EDITOR, "role": "editor"},
                                                        {"user": VIEWER, "role": "viewer"}]})
        host_session(w.rtc, {"title": "Lab 2", "host": "owner", "root": "lab2",
                             "members": [{"user": OTHER, "role": "editor"}]})
        assert w.rtc("PUT", f"/sessions/{w.session_id}/cells",
                     {"path": "nb.ipynb", "cell_id": "locked", "rule": "locked"})[0] in (200, 201)
        yield w
    finally:
        hub.stop()


async def raw_room(world: World, room_path: str, user: str, server: str = OWNER
                   ) -> WebSocketClientConnection:
    """A room websocket at ``…/api/collaboration/room/<room_path>``, exactly as written
    (jupyter-collaboration closes a socket without the server's ``sessionId`` at once)."""
    query = "" if "?" in room_path else f"?sessionId={world.server_session}"
    url = (world.hub.url.replace("http", "ws", 1)
           + f"/user/{server}/api/collaboration/room/{room_path}{query}")
    return await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {world.tokens[user]}"}))


class RawClient:
    """A y-sync replica on a socket opened at any room URL (of any document type)."""

    def __init__(self, ws: WebSocketClientConnection) -> None:
        self.ws = ws
        self.doc = Doc()
        self.synced = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while (message := await self.ws.read_message()) is not None:
            if isinstance(message, bytes) and message[:1] == b"\x00":
                reply, synced = client_receive_sync(message, self.doc)
                if reply is not None:
                    await self.ws.write_message(reply, binary=True)
                if synced:
                    self.synced.set()

    async def sync(self) -> None:
        await self.ws.write_message(create_sync_message(self.doc), binary=True)
        await asyncio.wait_for(self.synced.wait(), 15)

    async def change(self, edit: Any) -> None:
        """Apply ``edit(doc)`` locally and send the update it makes."""
        state = self.doc.get_state()
        edit(self.doc)
        await self.ws.write_message(create_update_message(self.doc.get_update(state)), binary=True)

    async def save(self) -> None:
        await self.ws.write_message(b"\x02\x04save\x01", binary=True)

    def close(self) -> None:
        close_socket(self.ws)
        self._reader.cancel()


def write_cell(cell_id: str, text: str) -> Any:
    def edit(doc: Doc) -> None:
        for cell in doc.get("cells", type=Array):
            if cell.get("id") == cell_id:
                cell["source"].insert(0, text)
    return edit


async def opened(world: World, room_path: str, user: str, server: str = OWNER) -> RawClient | int:
    """The synced client at ``room_path``, or the HTTP status that refused it."""
    try:
        ws = await raw_room(world, room_path, user, server)
    except HTTPClientError as e:
        return e.code
    client = RawClient(ws)
    try:
        await client.sync()
    except TimeoutError:
        client.close()
        return 0  # let in, but served nothing: no use to anyone
    return client


def disguises(file_id: str) -> list[str]:
    """Room paths whose last segment is the real room, read otherwise by a careless parser."""
    real = f"json:notebook:{file_id}"
    return [
        f"x/{real}",
        f"a:b:c/{real}",
        f"JupyterLab:globalAwareness/{real}",
        f"json:notebook:{file_id}/{real}",
        f"%2F/{real}",
        f"{quote(real, safe='')}",          # json%3Anotebook%3A<id>
        f"json:notebook:{file_id}%2Fx",
        f"{real}:extra",
        f"/{real}",
        f"json:notebook:{file_id.upper()}",
    ]


async def test_an_exact_room_id_still_opens(world: World) -> None:
    client = await opened(world, f"json:notebook:{world.file_id()}", VIEWER)
    assert isinstance(client, RawClient)
    client.close()


@pytest.mark.parametrize("user", [VIEWER, OTHER])
async def test_a_disguised_room_id_cannot_write_a_locked_notebook(world: World, user: str,
                                                                   secret: str) -> None:
    file_id = world.file_id()
    for disguise in disguises(file_id):
        client = await opened(world, disguise, user)
        if isinstance(client, RawClient):
            try:
                await client.change(write_cell("locked", secret))
                await client.change(write_cell("free", secret))
                await client.save()
                await asyncio.sleep(0.6)
            finally:
                client.close()
        sources = world.disk_sources()
        assert secret not in json.dumps(sources), f"{user} wrote through room {disguise!r}"
        # not even let in: what hub_rtc cannot read exactly is refused
        assert client in (400, 403, 404), (disguise, client)
    owner = await YClient.connect(world.hub.url, OWNER, NOTEBOOK, world.tokens[OWNER])
    try:
        assert secret not in json.dumps(owner.state())
    finally:
        owner.close()


@pytest.mark.parametrize("user", [VIEWER, OTHER, EDITOR])
async def test_a_disguised_room_id_cannot_read_a_private_notebook(world: World, user: str) -> None:
    file_id = world.file_id(PRIVATE)
    for disguise in [f"json:notebook:{file_id}", *disguises(file_id)]:
        client = await opened(world, disguise, user)
        if isinstance(client, RawClient):
            try:
                text = json.dumps(client.doc.get("cells", type=Array).to_py())
                assert "private notes" not in text, f"{user} read {PRIVATE} through {disguise!r}"
            finally:
                client.close()
        assert client in (400, 403, 404), (disguise, client)


async def test_another_sessions_editor_cannot_write_through_any_disguise(world: World) -> None:
    """eve edits lab2; naming lab1's notebook in any form gets her nothing in it."""
    file_id = world.file_id()
    assert await opened(world, f"json:notebook:{file_id}", OTHER) == 403
    before = world.disk_sources()
    for disguise in disguises(file_id):
        client = await opened(world, disguise, OTHER)
        if isinstance(client, RawClient):
            client.close()
        assert client in (400, 403, 404), (disguise, client)
    assert world.disk_sources() == before


async def test_the_owner_is_held_to_the_same_reading(world: World) -> None:
    """Nobody, the owner included, opens a room hub_rtc cannot read exactly; an unknown
    file id is 404; the owner's own fork-style rooms still open."""
    file_id = world.file_id()
    for disguise in disguises(file_id):
        assert await opened(world, disguise, OWNER) in (400, 404), disguise
    assert await opened(world, "json:notebook:00000000-0000-4000-8000-000000000000", OWNER) == 404
    assert await opened(world, "json:notebook:00000000-0000-4000-8000-000000000000", VIEWER) in (
        403, 404)
    close_socket(await raw_room(world, "5f1e0c7e-0d7e-4f7e-9e35-61f5c1a2b3c4", OWNER))
    assert await opened(world, "5f1e0c7e-0d7e-4f7e-9e35-61f5c1a2b3c4", VIEWER) == 403


async def test_a_dedicated_server_reads_room_ids_the_same_way(world: World, secret: str) -> None:
    session = await asyncio.to_thread(dedicated_session, world.rtc, {
        "title": "Group", "members": [{"user": VIEWER, "role": "viewer"}]})
    account = session["server"]["user"]
    try:
        assert world.hub.api("PUT", f"/user/{account}/api/contents/g.ipynb",
                             {"type": "notebook", "format": "json", "content": code_notebook(CELLS)},
                             world.tokens[OWNER])[0] == 201
        _, reply = world.hub.api("PUT", f"/user/{account}/api/collaboration/session/g.ipynb",
                                 {"format": "json", "type": "notebook"}, world.tokens[OWNER])
        world.server_session = reply["sessionId"]
        for disguise in disguises(reply["fileId"]):
            client = await opened(world, disguise, VIEWER, server=account)
            if isinstance(client, RawClient):
                await client.change(write_cell("free", secret))
                await asyncio.sleep(0.6)
                client.close()
            assert client in (400, 403, 404), (disguise, client)
        _, model = world.hub.api("GET", f"/user/{account}/api/contents/g.ipynb", None,
                                 world.tokens[OWNER])
        assert secret not in json.dumps(model["content"])
    finally:
        world.rtc("DELETE", f"/sessions/{session['id']}")


@pytest.mark.parametrize(("fmt", "kind"), [("text", "file"), ("text", "unicode"), ("base64", "blob"),
                                           ("json", "file")])
async def test_a_notebook_opened_as_another_type_keeps_its_locked_cell(
        world: World, fmt: str, kind: str, secret: str) -> None:
    """The editor may not change ``locked``: the notebook as a text file is no way round it."""
    file_id = world.file_id()
    client = await opened(world, f"{fmt}:{kind}:{file_id}", EDITOR)
    # a type in the format it is saved in opens read-only; any other pairing not at all
    assert isinstance(client, RawClient) if FORMAT_OF_TYPE[kind] == fmt else client == 400
    if isinstance(client, RawClient):
        try:
            def rewrite(doc: Doc) -> None:
                source = doc.get("source", type=Text)
                content = str(source)
                patched = content.replace("# locked", f"# {secret}")
                del source[0:len(content)]
                source.insert(0, patched if patched != content else secret)
            await client.change(rewrite)
            await client.save()
            await asyncio.sleep(1.0)
        finally:
            client.close()
    await asyncio.to_thread(wait_for, "the notebook on disk readable", lambda: world.disk(), 5)
    assert secret not in json.dumps(world.disk())
    owner = await YClient.connect(world.hub.url, OWNER, NOTEBOOK, world.tokens[OWNER])
    try:
        assert owner.source("locked") == "# locked\n"
    finally:
        owner.close()


async def test_a_notebook_as_text_is_still_readable_and_writable_without_protected_cells(
        world: World) -> None:
    """Only protected cells make another type read-only: lab2's editor edits her own freely."""
    file_id = world.file_id("lab2/other.ipynb", "text", "file")
    client = await opened(world, f"text:file:{file_id}", OTHER)
    assert isinstance(client, RawClient)
    try:
        assert '"mine"' in str(client.doc.get("source", type=Text))
    finally:
        client.close()


async def test_the_relay_opening_a_notebook_as_a_file_keeps_the_locked_cell(world: World,
                                                                             secret: str) -> None:
    url = (world.hub.url.replace("http", "ws", 1)
           + f"/services/rtc/api/v1/sessions/{world.session_id}/rooms/nb.ipynb?type=file")
    # the relay opens it upstream as a text file, as the editor: readable, not writable
    ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {world.tokens[EDITOR]}"}))
    client = RawClient(ws)
    try:
        await client.sync()
        def rewrite(doc: Doc) -> None:
            source = doc.get("source", type=Text)
            content = str(source)
            del source[0:len(content)]
            source.insert(0, content.replace("# locked", f"# {secret}"))
        await client.change(rewrite)
        await client.save()
        await asyncio.sleep(1.0)
        assert secret not in str(client.doc.get("source", type=Text))  # reverted for the sender
    finally:
        client.close()
    assert secret not in json.dumps(world.disk())


async def test_a_room_path_with_a_session_id_is_read_the_same(world: World, secret: str) -> None:
    """The query string is not part of the room id for either reader."""
    file_id, session_id = await open_session(world.hub.url, OWNER, NOTEBOOK, world.tokens[VIEWER])
    client = await opened(world, f"json:notebook:{file_id}?sessionId={session_id}", VIEWER)
    assert isinstance(client, RawClient)
    try:
        await client.change(write_cell("locked", secret))
        await asyncio.sleep(0.6)
    finally:
        client.close()
    assert secret not in json.dumps(world.disk_sources())
