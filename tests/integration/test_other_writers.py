"""Writers inside the shared server, on a real hub: forks and merges, history
restores, other server extensions, another collaboration server.

Every one of them could change a guarded document without passing the guard,
so each is either closed to those the guard would refuse, or the server
refuses to start guarded.

One hub for the module: olive's server hosts "Lab" (folder ``lab``: ed editor,
vi viewer); cell ``locked`` of ``lab/nb.ipynb`` is locked; ``lab/free.ipynb``
has no rule.  olive's server also loads ``zz_live_writer``, a test extension
that writes into documents through ``get_document``.  The servers of ``noydoc``
and ``takeover`` start without jupyter-collaboration and with another room
handler, respectively.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from hub_rtc.localhub import LocalHub
from tests.integration.conftest import (
    code_notebook,
    host_session,
    saved_notebook,
    start_hub,
    start_server,
    wait_for,
)
from tests.integration.yclient import YClient, close_socket

pytestmark = pytest.mark.integration

OWNER, EDITOR, VIEWER = "olive", "ed", "vi"
NOTEBOOK, FREE = "lab/nb.ipynb", "lab/free.ipynb"
EXTENSIONS = Path(__file__).with_name("extensions")
#: the shared servers' bound on one update here (the default is 16 MiB)
MAX_UPDATE = 100_000

# Per user: the extra server arguments, and the test extensions on its path.
HOOK = f"""
def _server_variants(spawner):
    variant = {{
        "olive": "zz_live_writer=True",
        "noydoc": "jupyter_server_ydoc=False",
        "takeover": "aaa_room_takeover=True",
    }}.get(spawner.user.name)
    if variant is not None:
        spawner.args = [*spawner.args, "--ServerApp.jpserver_extensions=" + variant,
                        "--HubRTCExtension.max_update_bytes={MAX_UPDATE}"]
        spawner.environment = {{**spawner.environment, "PYTHONPATH": {str(EXTENSIONS)!r}}}

c.Spawner.pre_spawn_hook = _server_variants
c.Spawner.http_timeout = 20  # a server that refuses to start is given up on sooner
"""


class World:
    def __init__(self, hub: LocalHub, home: Path) -> None:
        self.hub = hub
        self.home = home
        self.tokens = {name: hub.user_token(name) for name in (OWNER, EDITOR, VIEWER)}
        self.session_id = ""

    def server(self, path: str, method: str = "GET", body: Any = None, user: str = OWNER,
               ) -> tuple[int, Any]:
        return self.hub.api(method, f"/user/{OWNER}/{path}", body, self.tokens[user])

    def rtc(self, method: str, path: str, body: Any = None, user: str = OWNER) -> tuple[int, Any]:
        return self.hub.rtc(method, path, body, self.tokens[user])

    def room(self, path: str = NOTEBOOK) -> str:
        status, reply = self.server(f"api/collaboration/session/{quote(path)}", "PUT",
                                    {"format": "json", "type": "notebook"})
        assert status in (200, 201), reply
        return f"json:notebook:{reply['fileId']}"

    def disk_sources(self, path: str = NOTEBOOK) -> dict[str, str]:
        return {c["id"]: "".join(c["source"]) for c in saved_notebook(self.home / OWNER / path)["cells"]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("writers")
    hub = start_hub(workdir, manage_hub_access=True, extra=HOOK)
    try:
        w = World(hub, workdir / "home")
        start_server(hub, OWNER)
        assert w.server("api/contents/lab", "PUT", {"type": "directory"})[0] in (200, 201)
        for path in (NOTEBOOK, FREE):
            assert w.server(f"api/contents/{path}", "PUT", {
                "type": "notebook", "format": "json",
                "content": code_notebook(("free", "locked"))})[0] in (200, 201)
        w.session_id = host_session(w.rtc, {"title": "Lab", "host": "owner", "root": "lab",
                                            "members": [{"user": EDITOR, "role": "editor"},
                                                        {"user": VIEWER, "role": "viewer"}]})
        assert w.rtc("PUT", f"/sessions/{w.session_id}/cells",
                     {"path": "nb.ipynb", "cell_id": "locked", "rule": "locked"})[0] in (200, 201)
        yield w
    finally:
        hub.stop()


# -- forks, merges and history --------------------------------------------------------------


@pytest.mark.parametrize(("user", "path"), [(VIEWER, NOTEBOOK), (EDITOR, NOTEBOOK), (VIEWER, FREE)])
def test_forking_needs_the_right_to_change_every_cell(world: World, user: str, path: str) -> None:
    status, _ = world.server(f"api/collaboration/fork/{world.room(path)}", "PUT",
                             {"title": "mine", "description": "", "synchronize": False}, user=user)
    assert status == 403


async def test_a_collaborators_fork_can_be_neither_edited_nor_merged(world: World) -> None:
    """ed may change every cell of free.ipynb, so she may fork it; but a fork room is
    no document the guard watches, so only the server's owner opens or merges one."""
    opened = await YClient.connect(world.hub.url, OWNER, FREE, world.tokens[OWNER])  # forks need the room
    status, fork = world.server(f"api/collaboration/fork/{world.room(FREE)}", "PUT",
                                {"title": "ed's", "description": "", "synchronize": False}, user=EDITOR)
    assert status == 201, fork
    fork_id = fork["fork_roomid"]
    url = world.hub.url.replace("http", "ws", 1) + f"/user/{OWNER}/api/collaboration/room/{fork_id}"
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {world.tokens[EDITOR]}"}))
    assert refused.value.code == 403
    status, _ = world.server(f"api/collaboration/fork/{fork_id}?merge=true", "DELETE", user=EDITOR)
    assert status == 403
    assert world.server(f"api/collaboration/fork/{fork_id}?merge=false", "DELETE")[0] in (200, 204)
    opened.close()


async def test_the_owners_fork_and_merge_still_work(world: World) -> None:
    opened = await YClient.connect(world.hub.url, OWNER, FREE, world.tokens[OWNER])
    room = world.room(FREE)
    status, fork = world.server(f"api/collaboration/fork/{room}", "PUT",
                                {"title": "owner's", "description": "", "synchronize": False})
    assert status == 201, fork
    url = (world.hub.url.replace("http", "ws", 1)
           + f"/user/{OWNER}/api/collaboration/room/{fork['fork_roomid']}")
    close_socket(await websocket_connect(HTTPRequest(url, headers={
        "Authorization": f"token {world.tokens[OWNER]}"})))
    assert world.server(f"api/collaboration/fork/{fork['fork_roomid']}?merge=true", "DELETE")[0] in (
        200, 204)
    opened.close()


def test_history_and_restores_need_the_right_to_change_every_cell(world: World) -> None:
    room = world.room(NOTEBOOK)
    for user in (EDITOR, VIEWER):
        assert world.server(f"api/collaboration/timeline/{NOTEBOOK}?format=json&type=notebook",
                            user=user)[0] == 403
        status, _ = world.server(f"api/collaboration/undo_redo/{room}?action=restore&steps=1"
                                 "&forkRoom=x", "PUT", {}, user=user)
        assert status == 403


# -- the bounds admins set ------------------------------------------------------------


async def test_the_update_size_bound_is_the_admins_and_holds_for_the_owner(world: World) -> None:
    owner = await YClient.connect(world.hub.url, OWNER, FREE, world.tokens[OWNER])
    try:
        owner.type_into("free", "x" * (MAX_UPDATE // 2))  # within the bound: taken
        await asyncio.sleep(0.5)
        assert not owner.closed.done()
        owner.type_into("free", "y" * (MAX_UPDATE + 1))
        code, reason = await asyncio.wait_for(owner.closed, 10)
        assert code == 4413 and "update" in (reason or ""), reason
    finally:
        owner.close()
    await asyncio.to_thread(wait_for, "the first paste saved",
                            lambda: world.disk_sources(FREE)["free"].startswith("x"))
    assert "y" * 100 not in world.disk_sources(FREE)["free"]


# -- other server extensions ------------------------------------------------------------


def live_write(world: World, copy: bool, text: str) -> dict[str, Any]:
    status, reply = world.server("api/zz-live-writer", "POST",
                                 {"path": NOTEBOOK, "copy": copy, "text": text})
    assert status == 200, reply
    return dict(reply)


async def test_another_extension_gets_copies_never_the_live_document(world: World) -> None:
    client = await YClient.connect(world.hub.url, OWNER, NOTEBOOK, world.tokens[VIEWER])
    try:
        refused = live_write(world, copy=False, text="SECRET-live ")
        assert not refused["written"] and "copy=True" in refused["error"]
        assert live_write(world, copy=True, text="SECRET-copy ")["written"]  # its own fork
        await asyncio.sleep(0.8)
        assert "SECRET" not in json.dumps(client.state())
    finally:
        client.close()
    assert "SECRET" not in json.dumps(world.disk_sources())


# -- another collaboration server --------------------------------------------------------


def refused_to_start(world: World, user: str) -> str:
    """Start ``user``'s server and wait until the hub gives up on it; its log lines."""
    world.hub.api("POST", f"/hub/api/users/{user}")
    world.hub.api("POST", f"/hub/api/users/{user}/server")

    def gone() -> bool:
        _, model = world.hub.api("GET", f"/hub/api/users/{user}")
        server = (model.get("servers") or {}).get("")
        assert not (server and server.get("ready")), f"{user}'s server started unguarded"
        return not server and model.get("pending") is None

    wait_for(f"the hub to give up on {user}'s server", gone, 90)
    return (world.hub.workdir / "hub.log").read_text()


def test_a_server_without_jupyter_collaboration_refuses_to_start(world: World) -> None:
    """jupyter-server-documents' own config turns jupyter_server_ydoc off like this."""
    log = refused_to_start(world, "noydoc")
    assert "hub_rtc: jupyter_server_ydoc is not loaded: no collaboration rooms; refusing to start" in log


def test_a_server_whose_room_route_is_taken_over_refuses_to_start(world: World) -> None:
    log = refused_to_start(world, "takeover")
    assert "document rooms are served by OpenRoom, not the guarded room; refusing to start" in log
