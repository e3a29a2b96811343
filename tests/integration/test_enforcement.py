"""End to end on a real hub: the service decides, the shared server enforces.

One hub for the module: olive's own server hosts session "Lab 1" (folder
``lab1``) with ed and ann as editors and vi as a viewer; cell ``locked`` is
locked and cell ``assigned`` is assigned to ann.  Clients are real y-sync
clients (pycrdt here, and a stock Yjs client from npm) through the proxy.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from hub_rtc.localhub import LocalHub
from tests.integration.conftest import (
    code_notebook,
    host_session,
    process_environ,
    processes_in,
    saved_notebook,
    start_hub,
    start_server,
    wait_for,
)
from tests.integration.yclient import YClient, refused_status, yjs_cells

pytestmark = pytest.mark.integration

OWNER, EDITOR, VIEWER, ASSIGNEE, STRANGER, BRIEF = "olive", "ed", "vi", "ann", "non", "tem"
NOTEBOOK = "lab1/nb.ipynb"
CELLS = ("free", "locked", "assigned")


class World:
    def __init__(self, hub: LocalHub, home: Path) -> None:
        self.hub = hub
        self.home = home
        self.tokens = {name: hub.user_token(name) for name in
                       (OWNER, EDITOR, VIEWER, ASSIGNEE, STRANGER, BRIEF)}
        self.session_id = ""

    def server(self, path: str, method: str = "GET", body: Any = None, user: str = OWNER,
               ) -> tuple[int, Any]:
        return self.hub.api(method, f"/user/{OWNER}/{path}", body, self.tokens[user])

    def rtc(self, method: str, path: str, body: Any = None, user: str = OWNER) -> tuple[int, Any]:
        return self.hub.rtc(method, path, body, self.tokens[user])

    async def client(self, user: str) -> YClient:
        return await YClient.connect(self.hub.url, OWNER, NOTEBOOK, self.tokens[user])

    def disk(self) -> dict[str, Any]:
        return saved_notebook(self.home / OWNER / NOTEBOOK)

    def disk_sources(self) -> dict[str, str]:
        return {c["id"]: "".join(c["source"]) for c in self.disk()["cells"]}

    def ystore_bytes(self) -> bytes:
        """Every update the ystore holds, concatenated (it is where history is kept)."""
        found = list((self.home / OWNER).rglob("*ystore*.db"))
        assert found, "no ystore database on the shared server"
        out = b""
        for db in found:
            with sqlite3.connect(db) as con:
                for (update,) in con.execute("SELECT yupdate FROM yupdates"):
                    out += bytes(update)
        return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("enforce")
    home = workdir / "home"
    hub = start_hub(workdir, manage_hub_access=True, extra=(
        "c.YDocExtension.document_save_delay = 0.2\n"
        "c.RTCPolicy.expose_identity_to_kernels = True\n"
    ))
    try:
        w = World(hub, home)
        start_server(hub, OWNER)
        assert w.server("api/contents/lab1", "PUT", {"type": "directory"})[0] in (200, 201)
        status, _ = w.server(f"api/contents/{NOTEBOOK}", "PUT",
                             {"type": "notebook", "format": "json", "content": code_notebook(CELLS)})
        assert status in (200, 201)
        assert w.server("api/contents/private.txt", "PUT",
                        {"type": "file", "format": "text", "content": "olive's"})[0] in (200, 201)
        members = [{"user": EDITOR, "role": "editor"}, {"user": VIEWER, "role": "viewer"},
                   {"user": ASSIGNEE, "role": "editor"}]
        w.session_id = host_session(w.rtc, {"title": "Lab 1", "host": "owner", "root": "lab1",
                                            "members": members})
        assert w.rtc("PUT", f"/sessions/{w.session_id}/cells",
                     {"path": "nb.ipynb", "cell_id": "locked", "rule": "locked"})[0] in (200, 201)
        assert w.rtc("PUT", f"/sessions/{w.session_id}/cells",
                     {"path": "nb.ipynb", "cell_id": "assigned", "rule": "assigned",
                      "writers": [{"user": ASSIGNEE}]})[0] in (200, 201)
        yield w
    finally:
        hub.stop()


@pytest.fixture
async def clients(world: World) -> AsyncIterator[dict[str, YClient]]:
    opened = {user: await world.client(user) for user in (OWNER, EDITOR, VIEWER, ASSIGNEE)}
    yield opened
    for client in opened.values():
        client.close()


def converged(clients: dict[str, YClient]) -> bool:
    states = [json.dumps(c.state(), sort_keys=True) for c in clients.values()]
    return len(set(states)) == 1


async def test_an_editors_edit_reaches_everyone_and_the_disk(world: World, clients: dict[str, YClient]
                                                            ) -> None:
    clients[EDITOR].type_into("free", "ed-was-here ")
    for client in clients.values():
        await client.until(lambda c=client: c.source("free").startswith("ed-was-here "))
    await asyncio.to_thread(wait_for, "the edit saved to disk",
                            lambda: world.disk_sources()["free"].startswith("ed-was-here "))


@pytest.mark.parametrize(("user", "cell"), [(VIEWER, "free"), (EDITOR, "locked"), (EDITOR, "assigned")])
async def test_refused_edits_are_reverted_everywhere(world: World, clients: dict[str, YClient],
                                                     user: str, cell: str) -> None:
    secret = f"SECRET-{user}-{cell}"
    before = clients[OWNER].source(cell)
    clients[user].type_into(cell, secret)
    assert clients[user].source(cell).startswith(secret)  # applied locally first …
    await clients[user].until(lambda: clients[user].source(cell) == before)  # … then reverted
    await asyncio.sleep(0.5)
    for client in clients.values():
        assert client.source(cell) == before
        assert secret not in json.dumps(client.state())
    assert converged(clients)
    await asyncio.sleep(0.5)  # past the save delay
    assert secret not in json.dumps(world.disk())
    assert secret.encode() not in world.ystore_bytes()
    late = await world.client(OWNER)  # a client joining afterwards gets none of it either
    try:
        assert secret.encode() not in late.doc.get_update()
    finally:
        late.close()


async def test_an_assigned_cell_takes_its_assignees_edits(world: World, clients: dict[str, YClient]
                                                          ) -> None:
    clients[ASSIGNEE].type_into("assigned", "ann: ")
    for client in clients.values():
        await client.until(lambda c=client: c.source("assigned").startswith("ann: "))


async def test_a_viewer_cannot_delete_or_move_cells(world: World, clients: dict[str, YClient]) -> None:
    before = clients[OWNER].ids()
    viewer = clients[VIEWER]
    del viewer.cells[0]
    await viewer.until(lambda: viewer.ids() == before)
    await asyncio.sleep(0.3)
    assert converged(clients) and clients[OWNER].ids() == before


async def test_awareness_shows_the_real_identity(world: World, clients: dict[str, YClient]) -> None:
    editor = clients[EDITOR]
    await editor.say({"user": {"name": OWNER, "display_name": "Olive (really)", "username": OWNER}})
    watcher = clients[VIEWER]
    cid = editor.doc.client_id
    await watcher.until(lambda: cid in watcher.peers)
    shown = watcher.peers[cid]["user"]
    assert shown["name"] == EDITOR and shown["display_name"] != "Olive (really)"
    # the server's own identity model says the same: persistent id, service display name
    _, me = world.rtc("GET", "/identity", user=EDITOR)
    status, model = world.server("api/me", user=EDITOR)
    assert status == 200
    assert model["identity"]["username"] == me["id"] and model["identity"]["color"] == me["color"]
    assert shown["username"] == me["id"]
    # … and it cannot speak for another client id at all
    await editor.say({"user": {"name": "ghost"}}, client_id=cid + 1)
    await asyncio.sleep(0.5)
    assert cid + 1 not in watcher.peers


async def test_only_writers_can_force_a_save(world: World, clients: dict[str, YClient]) -> None:
    await clients[VIEWER].save(7)
    await clients[EDITOR].save(8)
    await clients[EDITOR].until(lambda: any(r.get("responseTo") == 8 for r in clients[EDITOR].replies))
    await asyncio.sleep(0.5)
    assert not any(r.get("responseTo") == 7 for r in clients[VIEWER].replies)


async def test_unknown_messages_are_dropped_and_garbage_updates_close(world: World) -> None:
    client = await world.client(EDITOR)
    try:
        await client.ws.write_message(b"\x03", binary=True)  # y-websocket's query-awareness
        client.type_into("free", "still-here ")
        await client.until(lambda: world.disk_sources()["free"].startswith("still-here "))
        await client.ws.write_message(b"\x00\x02\xff\xff", binary=True)  # a truncated update
        code, _ = await asyncio.wait_for(client.closed, 5)
        assert code == 4400
    finally:
        client.close()


async def test_strangers_are_kept_out(world: World) -> None:
    token = world.tokens[STRANGER]
    assert await refused_status(world.hub.url, OWNER, NOTEBOOK, token) == 403
    assert world.server("api/contents/lab1", user=STRANGER)[0] == 403


def test_members_stay_in_the_session_folder(world: World) -> None:
    assert world.server("api/contents/lab1", user=EDITOR)[0] == 200
    assert world.server("api/contents/private.txt", user=EDITOR)[0] == 403
    assert world.server("api/contents/", user=EDITOR)[0] == 403
    assert world.server("files/private.txt", user=EDITOR)[0] == 403
    # a viewer reads but does not write through the contents API either
    assert world.server(f"api/contents/{NOTEBOOK}", user=VIEWER)[0] == 200
    assert world.server("api/contents/lab1/new.txt", "PUT", {"type": "file", "format": "text",
                                                              "content": "x"}, user=VIEWER)[0] == 403
    # side doors into history and forks are closed to non-writers
    status, _ = world.server(f"api/collaboration/timeline/{NOTEBOOK}?format=json&type=notebook",
                             user=VIEWER)
    assert status == 403
    assert world.server("api/collaboration/fork/json:notebook:x", "PUT", {}, user=VIEWER)[0] == 403
    # terminals are closed to collaborators by default policy
    assert world.server("api/terminals", "POST", {}, user=EDITOR)[0] == 403


async def test_a_stock_yjs_client_is_guarded_too(world: World, clients: dict[str, YClient]) -> None:
    def run(user: str, cell: str, text: str) -> Awaitable[list[dict[str, Any]]]:
        return yjs_cells(world.hub.url, OWNER, NOTEBOOK, world.tokens[user], cell, text, 1500)

    viewer_view = await run(VIEWER, "free", "SECRET-yjs ")
    assert "SECRET-yjs" not in json.dumps(viewer_view)  # reverted in the Yjs client itself
    await run(EDITOR, "free", "yjs-ok ")
    await clients[OWNER].until(lambda: clients[OWNER].source("free").startswith("yjs-ok "))
    assert "SECRET-yjs" not in json.dumps(clients[OWNER].state())


async def test_activity_names_editors_cells_and_refusals(world: World, clients: dict[str, YClient]
                                                         ) -> None:
    clients[EDITOR].type_into("free", "counted ")
    clients[VIEWER].type_into("free", "refused ")

    def activity() -> list[dict[str, Any]]:
        status, reply = world.rtc("GET", f"/sessions/{world.session_id}/activity")
        assert status == 200, reply
        return list(reply["events"])

    def shows_both() -> bool:
        events = activity()
        # paths as the session names them (below its root folder), like its cell rules
        return (any(e["user"] == EDITOR and e["kind"] == "edit" and e["cell_id"] == "free"
                    and e["path"] == "nb.ipynb" for e in events)
                and any(e["user"] == VIEWER and e["kind"] == "refused" for e in events))

    await asyncio.to_thread(wait_for, "activity with edits and refusals", shows_both, 20)


async def test_removing_a_member_closes_their_socket_at_once(world: World) -> None:
    client = await world.client(ASSIGNEE)
    try:
        started = time.monotonic()
        status, reply = await asyncio.to_thread(
            world.rtc, "DELETE", f"/sessions/{world.session_id}/members/user/{ASSIGNEE}")
        assert status == 204, reply
        code, _ = await asyncio.wait_for(client.closed, 5)
        assert time.monotonic() - started < 1.0
        assert code == 4403
        assert await refused_status(world.hub.url, OWNER, NOTEBOOK, world.tokens[ASSIGNEE]) == 403
    finally:
        client.close()


async def test_an_expired_grant_closes_the_socket_without_anyone_acting(world: World) -> None:
    until = datetime.now(UTC) + timedelta(seconds=6)
    status, reply = world.rtc("PUT", f"/sessions/{world.session_id}/members/user/{BRIEF}",
                              {"role": "editor", "expires_at": until.isoformat()})
    assert status in (200, 201), reply
    client = await asyncio.wait_for(_connect_when_shared(world, BRIEF), 20)
    try:
        code, _ = await asyncio.wait_for(client.closed, 30)  # the service's sweep notices
        assert code == 4403 and datetime.now(UTC) >= until
        assert await refused_status(world.hub.url, OWNER, NOTEBOOK, world.tokens[BRIEF]) == 403
    finally:
        client.close()


async def _connect_when_shared(world: World, user: str) -> YClient:
    while True:  # the share is made right after the grant; the hub may take a moment
        try:
            return await world.client(user)
        except Exception:
            await asyncio.sleep(0.3)


# -- a dedicated session server ----------------------------------------------------------


def hosted(world: World, session_id: str) -> dict[str, Any]:
    def ready() -> Any:
        _, session = world.rtc("GET", f"/sessions/{session_id}")
        assert session["hosting"]["state"] in ("starting", "waiting", "ready"), session["hosting"]
        return session if session["hosting"]["state"] == "ready" else None

    return dict(wait_for("the dedicated server announced itself", ready, 90))


async def test_a_dedicated_session_server_is_guarded_too(world: World) -> None:
    members = [{"user": EDITOR, "role": "editor"}, {"user": VIEWER, "role": "viewer"}]
    status, session = world.rtc("POST", "/sessions", {"title": "Group work", "host": "account",
                                                      "members": members})
    assert status == 201, session
    session = await asyncio.to_thread(hosted, world, session["id"])
    account = session["server"]["user"]
    assert account.startswith("rtc-")

    def on_account(path: str, method: str = "GET", body: Any = None, user: str = OWNER) -> tuple[int, Any]:
        return world.hub.api(method, f"/user/{account}/{path}", body, world.tokens[user])

    # the session's owner is a member like the others: shared in, with the owner role
    assert on_account("api/contents/nb.ipynb", "PUT", {"type": "notebook", "format": "json",
                                                       "content": code_notebook(CELLS)})[0] == 201
    assert on_account("api/contents/nb.ipynb", user=STRANGER)[0] == 403
    editor = await YClient.connect(world.hub.url, account, "nb.ipynb", world.tokens[EDITOR])
    viewer = await YClient.connect(world.hub.url, account, "nb.ipynb", world.tokens[VIEWER])
    try:
        editor.type_into("locked", "group-edit ")
        await viewer.until(lambda: viewer.source("locked").startswith("group-edit "))
        viewer.type_into("free", "SECRET-dedicated")
        await viewer.until(lambda: "SECRET" not in viewer.source("free"))
        await asyncio.sleep(0.3)
        assert "SECRET" not in editor.source("free")
    finally:
        editor.close()
        viewer.close()
    # kernels: a viewer may not start one; an editor's kernel carries their persistent id
    kernel = {"path": "nb.ipynb", "type": "notebook", "name": "", "kernel": {"name": "python3"}}
    assert on_account("api/sessions", "POST", kernel, user=VIEWER)[0] == 403
    status, started = on_account("api/sessions", "POST", kernel, user=EDITOR)
    assert status == 201, started
    _, me = world.rtc("GET", "/identity", user=EDITOR)
    kernel_id = started["kernel"]["id"]
    env = await asyncio.to_thread(wait_for, "the kernel process", lambda: kernel_env(kernel_id))
    assert env.get("JUPYTER_AUTH_ID") == me["id"]
    assert "JUPYTERHUB_API_TOKEN" not in env  # the server's own credentials stay out
    # demoting the editor to viewer closes their kernel socket at once
    channels = await room_socket_url(world, f"/user/{account}/api/kernels/{kernel_id}/channels", EDITOR)
    started_at = time.monotonic()
    assert world.rtc("PUT", f"/sessions/{session['id']}/members/user/{EDITOR}", {"role": "viewer"})[0] == 200
    try:
        await asyncio.wait_for(_drain(channels), 5)
    finally:
        channels.close()
    assert channels.close_code == 4403 and time.monotonic() - started_at < 2
    # ending the session stops the dedicated server; the records stay
    assert world.rtc("DELETE", f"/sessions/{session['id']}")[0] in (200, 204)

    def stopped() -> bool:
        _, model = world.hub.api("GET", f"/hub/api/users/{account}")
        return not (model.get("servers") or {})

    await asyncio.to_thread(wait_for, "the dedicated server stopped", stopped, 60)
    status, after = world.rtc("GET", f"/sessions/{session['id']}")
    assert status == 200 and after["state"] == "ended"


async def room_socket_url(world: World, path: str, user: str) -> Any:
    url = world.hub.url.replace("http", "ws", 1) + path
    return await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {world.tokens[user]}"}))


async def _drain(ws: Any) -> None:
    """Read a websocket until it is closed (kernel sockets chatter: status, iopub)."""
    while await ws.read_message() is not None:
        pass


def kernel_env(kernel_id: str) -> dict[str, str] | None:
    return process_environ(lambda cmdline, _: kernel_id in cmdline)


# -- restarts ---------------------------------------------------------------------------


async def test_restarting_the_server_and_the_service_loses_nothing(world: World) -> None:
    client = await world.client(EDITOR)
    client.type_into("free", "before-restart ")
    client.close()
    await asyncio.to_thread(wait_for, "the accepted edit saved",
                            lambda: world.disk_sources()["free"].startswith("before-restart "))
    _, before = world.rtc("GET", f"/sessions/{world.session_id}")
    _, activity_before = world.rtc("GET", f"/sessions/{world.session_id}/activity")
    # restart the shared server, and kill the service (JupyterHub restarts it)
    assert world.hub.api("DELETE", f"/hub/api/users/{OWNER}/server")[0] in (202, 204)
    for pid in processes_in(world.hub.workdir, "hub_rtc serve"):
        os.kill(pid, signal.SIGKILL)
    await asyncio.to_thread(start_server, world.hub, OWNER)

    def back() -> Any:
        status, session = world.rtc("GET", f"/sessions/{world.session_id}")
        return session if status == 200 and session["hosting"]["state"] == "ready" else None

    after = await asyncio.to_thread(wait_for, "service back and server announced", back, 90)
    assert after["members"] == before["members"]
    _, activity_after = world.rtc("GET", f"/sessions/{world.session_id}/activity")
    assert len(activity_after["events"]) >= len(activity_before["events"])
    client = await world.client(EDITOR)
    try:
        assert client.source("free").startswith("before-restart ")
        client.type_into("free", "after-restart ")
        await asyncio.to_thread(wait_for, "editing works again",
                                lambda: world.disk_sources()["free"].startswith("after-restart "))
    finally:
        client.close()
