"""A change of rights is in force on the shared server before the API answers.

Attacks on a real hub (issue 13, items 10 and 12): an edit sent the moment a
lock, a downgrade or a removal has been answered must already be refused, on
the owner's server and on a dedicated session server; when a server did not
confirm in time the answer says so; and a cell rule that protects nothing is
refused rather than stored.

One hub for the module: pia's own server hosts "Rights" (folder ``lab1``) with
eve as editor and rex as runner.  Clients are real y-sync clients through the
proxy; the requests that change rights are made from the same event loop, and
the edit follows the answer with no sleep in between.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Map, Text
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from hub_rtc.localhub import LocalHub
from tests.integration.conftest import (
    code_notebook,
    host_session,
    process_environ,
    saved_notebook,
    start_hub,
    start_server,
    wait_for,
)
from tests.integration.test_api import conforms
from tests.integration.yclient import YClient, close_socket, refused_status

pytestmark = pytest.mark.integration

OWNER, EDITOR, RUNNER, GONE = "pia", "eve", "rex", "gus"
ROOT = "lab1"
NOTEBOOK = f"{ROOT}/nb.ipynb"
CELLS = ("free", "target", "out")
ROUNDS = 20
#: c.RTCService.push_ack_seconds on this hub: how long a change waits for servers
ACK_SECONDS = 1.5


class World:
    def __init__(self, hub: LocalHub, home: Path) -> None:
        self.hub = hub
        self.home = home
        self.tokens = {name: hub.user_token(name) for name in (OWNER, EDITOR, RUNNER, GONE)}
        self.session_id = ""

    def server(self, path: str, method: str = "GET", body: Any = None, user: str = OWNER,
               server: str = OWNER) -> tuple[int, Any]:
        return self.hub.api(method, f"/user/{server}/{path}", body, self.tokens[user])

    def rtc(self, method: str, path: str, body: Any = None, user: str = OWNER) -> tuple[int, Any]:
        return self.hub.rtc(method, path, body, self.tokens[user])

    async def artc(self, method: str, path: str, body: Any = None, user: str = OWNER
                   ) -> tuple[int, Any]:
        """The same call without blocking the loop the clients run on."""
        request = HTTPRequest(self.hub.url + "/services/rtc/api/v1" + path, method=method,
                              body=json.dumps(body) if body is not None else None,
                              headers={"Authorization": f"token {self.tokens[user]}",
                                       "Content-Type": "application/json"},
                              allow_nonstandard_methods=True, request_timeout=60)
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        return response.code, json.loads(response.body) if response.body else None

    async def client(self, user: str, server: str = OWNER, path: str = NOTEBOOK) -> YClient:
        return await YClient.connect(self.hub.url, server, path, self.tokens[user])

    def disk(self, server: str = OWNER, path: str = NOTEBOOK) -> str:
        return json.dumps(saved_notebook(self.home / server / path))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("in_force")
    hub = start_hub(workdir, manage_hub_access=True, extra=(
        "c.YDocExtension.document_save_delay = 0.2\n"
        f"c.RTCService.push_ack_seconds = {ACK_SECONDS}\n"
    ))
    try:
        w = World(hub, workdir / "home")
        start_server(hub, OWNER)
        assert w.server(f"api/contents/{ROOT}", "PUT", {"type": "directory"})[0] in (200, 201)
        status, _ = w.server(f"api/contents/{NOTEBOOK}", "PUT",
                             {"type": "notebook", "format": "json", "content": code_notebook(CELLS)})
        assert status in (200, 201)
        members = [{"user": EDITOR, "role": "editor"}, {"user": RUNNER, "role": "runner"}]
        w.session_id = host_session(w.rtc, {"title": "Rights", "host": "owner", "root": ROOT,
                                            "members": members})
        yield w
    finally:
        hub.stop()


@pytest.fixture
async def watcher(world: World) -> AsyncIterator[YClient]:
    """The owner's replica: sees whatever the room accepted."""
    client = await world.client(OWNER)
    yield client
    client.close()


def attempt(edit: Any) -> None:
    """Make a local edit; a socket the server closed already refuses it by failing to send."""
    try:
        edit()
    except Exception as e:  # noqa: BLE001 - the observer's write to a closed socket
        assert "closed" in str(e).lower() or "Closed" in type(e).__name__, e


async def refused_everywhere(sender: YClient, watcher: YClient, cell: str, secret: str) -> None:
    """``secret`` was reverted in the sender's replica and reached nobody else."""
    await sender.until(lambda: secret not in json.dumps(sender.state()), timeout=5)
    await asyncio.sleep(0.2)
    assert secret not in json.dumps(watcher.state()), f"{secret!r} was accepted into {cell!r}"


# -- the owner's server -----------------------------------------------------------------


async def test_an_edit_right_after_the_lock_answered_is_refused(world: World, watcher: YClient
                                                                ) -> None:
    cells = f"/sessions/{world.session_id}/cells"
    editor = await world.client(EDITOR)
    try:
        for i in range(ROUNDS):
            status, rule = await world.artc("PUT", cells, {"path": "nb.ipynb", "cell_id": "target",
                                                           "rule": "locked"})
            secret = f"SECRET-lock-{i}-"
            editor.type_into("target", secret)  # the very next thing the loop does
            assert status in (200, 201), rule
            await refused_everywhere(editor, watcher, "target", secret)
            assert rule["enforced"] is True and rule["pending_servers"] == [], rule
            status, lifted = await world.artc("DELETE", cells + "?path=nb.ipynb&cell_id=target")
            assert status == 204, lifted
            allowed = f"ok-{i}-"
            editor.type_into("target", allowed)  # unlocked before the answer, too
            await watcher.until(lambda a=allowed: a in watcher.source("target"), timeout=5)
    finally:
        editor.close()
    last = f"ok-{ROUNDS - 1}-"
    await asyncio.to_thread(wait_for, "the accepted edits saved", lambda: last in world.disk(), 15)
    assert "SECRET-lock" not in await asyncio.to_thread(world.disk)


async def test_output_writes_stop_the_moment_a_runner_is_a_viewer(world: World, watcher: YClient
                                                                  ) -> None:
    member = f"/sessions/{world.session_id}/members/user/{RUNNER}"
    runner = await world.client(RUNNER)
    try:
        for i in range(ROUNDS // 2):
            write_output(runner, "out", f"run-{i}")  # a runner's own output: kept
            await watcher.until(lambda i=i: f"run-{i}" in json.dumps(watcher.state()), timeout=5)
            status, body = await world.artc("PUT", member, {"role": "viewer"})
            secret = f"SECRET-output-{i}"
            write_output(runner, "out", secret)
            assert status == 200, body
            await refused_everywhere(runner, watcher, "out", secret)
            assert body["enforced"] is True, body
            status, body = await world.artc("PUT", member, {"role": "runner"})
            assert status == 200, body
    finally:
        runner.close()
    await asyncio.sleep(0.5)
    assert "SECRET-output" not in await asyncio.to_thread(world.disk)


def write_output(client: YClient, cell_id: str, text: str) -> None:
    """What running a cell writes into the shared document: an output and a count."""
    cell = client.cell(cell_id)
    outputs = cell["outputs"]
    assert isinstance(outputs, Array)
    with client.doc.transaction():
        outputs.append(Map({"output_type": "stream", "name": "stdout", "text": Text(text + "\n")}))
        cell["execution_count"] = len(outputs)


async def test_an_edit_right_after_removal_answered_is_refused(world: World, watcher: YClient
                                                               ) -> None:
    member = f"/sessions/{world.session_id}/members/user/{GONE}"
    for i in range(3):
        status, body = await world.artc("PUT", member, {"role": "editor"})
        assert status == 201, body
        gone = await asyncio.wait_for(connect_when_shared(world, GONE), 30)
        try:
            status, body = await world.artc("DELETE", member)
            assert status == 204, body
            secret = f"SECRET-removed-{i}"
            attempt(lambda s=secret, g=gone: g.type_into("free", s))
            code, _ = await asyncio.wait_for(gone.closed, 5)
            assert code == 4403
            await asyncio.sleep(0.3)
            assert secret not in json.dumps(watcher.state())
        finally:
            gone.close()
    assert await refused_status(world.hub.url, OWNER, NOTEBOOK, world.tokens[GONE]) == 403
    await asyncio.sleep(0.5)
    assert "SECRET-removed" not in await asyncio.to_thread(world.disk)


async def connect_when_shared(world: World, user: str, server: str = OWNER,
                              path: str = NOTEBOOK) -> YClient:
    while True:  # the share follows the grant; the hub may take a moment
        try:
            return await world.client(user, server, path)
        except Exception:  # noqa: BLE001 - 403/404 until the share is there
            await asyncio.sleep(0.3)


# -- a dedicated session server ----------------------------------------------------------


async def test_a_dedicated_server_has_the_change_in_force_before_the_answer(world: World) -> None:
    members = [{"user": EDITOR, "role": "editor"}, {"user": RUNNER, "role": "runner"}]
    status, session = await world.artc("POST", "/sessions", {"title": "Group", "host": "account",
                                                             "members": members})
    assert status == 201, session
    sid = session["id"]

    def ready() -> Any:
        _, s = world.rtc("GET", f"/sessions/{sid}")
        assert s["hosting"]["state"] in ("starting", "waiting", "ready"), s["hosting"]
        return s if s["hosting"]["state"] == "ready" else None

    account = (await asyncio.to_thread(wait_for, "the dedicated server", ready, 90))["server"]["user"]
    assert (await asyncio.to_thread(world.server, "api/contents/nb.ipynb", "PUT", {
        "type": "notebook", "format": "json", "content": code_notebook(CELLS)}, OWNER, account))[0] == 201
    editor = await connect_when_shared(world, EDITOR, account, "nb.ipynb")
    runner = await connect_when_shared(world, RUNNER, account, "nb.ipynb")
    watcher = await connect_when_shared(world, OWNER, account, "nb.ipynb")
    cells = f"/sessions/{sid}/cells"
    try:
        for i in range(ROUNDS // 2):
            status, rule = await world.artc("PUT", cells, {"path": "nb.ipynb", "cell_id": "target",
                                                           "rule": "locked"})
            secret = f"SECRET-dedicated-{i}-"
            editor.type_into("target", secret)
            assert status in (200, 201), rule
            await refused_everywhere(editor, watcher, "target", secret)
            assert rule["enforced"] is True, rule
            status, _ = await world.artc("DELETE", cells + "?path=nb.ipynb&cell_id=target")
            assert status == 204
        status, body = await world.artc("PUT", f"/sessions/{sid}/members/user/{RUNNER}",
                                        {"role": "viewer"})
        write_output(runner, "out", "SECRET-dedicated-output")
        assert status == 200, body
        await refused_everywhere(runner, watcher, "out", "SECRET-dedicated-output")
        assert body["enforced"] is True, body
        status, body = await world.artc("DELETE", f"/sessions/{sid}/members/user/{EDITOR}")
        assert status == 204, body
        attempt(lambda: editor.type_into("free", "SECRET-dedicated-removed"))
        code, _ = await asyncio.wait_for(editor.closed, 5)
        assert code == 4403
        await asyncio.sleep(0.3)
        assert "SECRET-dedicated-removed" not in json.dumps(watcher.state())
    finally:
        for client in (editor, runner, watcher):
            client.close()
    await asyncio.sleep(0.5)
    assert "SECRET-dedicated" not in await asyncio.to_thread(world.disk, account, "nb.ipynb")
    assert world.rtc("DELETE", f"/sessions/{sid}")[0] == 204


# -- a server that does not confirm in time -----------------------------------------------


async def test_an_unconfirmed_change_says_so_and_the_page_shows_it(world: World) -> None:
    # A second events channel for pia's server that never confirms: the service
    # cannot tell which channel is the live one, so it waits for both.
    env = process_environ(lambda _, e: e.get("JUPYTERHUB_USER") == OWNER
                          and "JUPYTERHUB_API_TOKEN" in e)
    assert env is not None, "no server process of pia"
    silent = await events_channel(env["HUB_RTC_API_URL"], env["JUPYTERHUB_API_TOKEN"])
    try:
        assert (await next_event(silent))["type"] == "hello"
        member = f"/sessions/{world.session_id}/members/user/{RUNNER}"
        started = asyncio.get_running_loop().time()
        status, body = await world.artc("PUT", member, {"role": "viewer"})
        waited = asyncio.get_running_loop().time() - started
        assert status == 200, body
        conforms("Member", body)
        assert body["enforced"] is False and ACK_SECONDS - 0.2 <= waited < ACK_SECONDS + 3, (body, waited)
        assert [(p["user"], p["name"]) for p in body["pending_servers"]] == [(OWNER, "")]
        assert "did not confirm" in body["pending_servers"][0]["why"]
        pushed = await next_event(silent)
        assert pushed["type"] == "invalidate" and pushed["reason"] == "role changed" and pushed["id"]
        # a DELETE that is not yet in force answers 202 with the same account
        status, body = await world.artc("DELETE", f"/sessions/{world.session_id}/cells"
                                                  "?path=nb.ipynb&cell_id=nothing-here")
        assert status == 404, body  # (nothing to lift: refused before anything is pushed)
        status, rule = await world.artc("PUT", f"/sessions/{world.session_id}/cells",
                                        {"path": "nb.ipynb", "cell_id": "free", "rule": "locked"})
        assert status in (200, 201) and rule["enforced"] is False, rule
        cell_push = await next_event(silent)
        status, body = await world.artc("DELETE", f"/sessions/{world.session_id}/cells"
                                                  "?path=nb.ipynb&cell_id=free")
        assert status == 202, body
        conforms("Enforcement", body)
        assert body["enforced"] is False and body["pending_servers"][0]["user"] == OWNER
        lift_push = await next_event(silent)
        page = await asyncio.to_thread(session_page, world)
        assert "not yet in force on the server" in page
        # the late confirmations clear it
        for message in (pushed, cell_push, lift_push):
            await silent.write_message(json.dumps({"type": "ack", "id": message["id"]}))

        def cleared() -> bool:
            return "not yet in force on the server" not in session_page(world)

        await asyncio.to_thread(wait_for, "the page to show the change in force", cleared, 10)
    finally:
        close_socket(silent)
        world.rtc("PUT", f"/sessions/{world.session_id}/members/user/{RUNNER}", {"role": "runner"})


async def events_channel(url: str, token: str) -> WebSocketClientConnection:
    ws_url = url.replace("http", "ws", 1) + "/servers/events?server_name="
    return await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {token}"}))


async def next_event(ws: WebSocketClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.read_message(), timeout)
    assert raw is not None, "the events channel closed"
    message = json.loads(raw)
    conforms("ServerEvent", message)
    return dict(message)


def session_page(world: World) -> str:
    """The session page as its owner sees it (HTML)."""
    import urllib.request

    request = urllib.request.Request(world.hub.url + f"/services/rtc/sessions/{world.session_id}")
    request.add_header("Authorization", f"token {world.tokens[OWNER]}")
    with urllib.request.urlopen(request, timeout=60) as r:
        return r.read().decode()


# -- cell rules that would protect nothing (item 12) -----------------------------------------


def test_a_rule_that_repeats_the_session_folder_is_refused(world: World) -> None:
    cells = f"/sessions/{world.session_id}/cells"
    status, body = world.rtc("PUT", cells, {"path": NOTEBOOK, "cell_id": "target", "rule": "locked"})
    assert status == 422, body
    assert "relative to the session folder 'lab1'" in body["message"]
    assert "did you mean 'nb.ipynb'?" in body["message"]
    status, body = world.rtc("PUT", cells, {"path": "notes.txt", "cell_id": "x", "rule": "locked"})
    assert status == 422 and "not a notebook" in body["message"], body
    status, body = world.rtc("PUT", cells, {"path": ".", "cell_id": "x", "rule": "locked"})
    assert status == 422, body
    assert all(r["path"] != NOTEBOOK for r in world.rtc("GET", cells)[1]["cells"])


def test_a_rule_set_ahead_of_its_notebook_or_cell_says_so(world: World) -> None:
    cells = f"/sessions/{world.session_id}/cells"
    status, rule = world.rtc("PUT", cells, {"path": "nb.ipynb", "cell_id": "free", "rule": "locked"})
    assert status in (200, 201), rule
    conforms("CellRule", rule)
    assert rule["applied"] is True, rule
    status, rule = world.rtc("PUT", cells, {"path": "nb.ipynb", "cell_id": "later", "rule": "locked"})
    assert status == 201 and rule["applied"] is False, rule
    assert "no cell 'later'" in rule["why"]
    status, rule = world.rtc("PUT", cells, {"path": "week2/lab.ipynb", "cell_id": "c1",
                                            "rule": "locked"})
    assert status == 201 and rule["applied"] is False, rule
    assert "does not exist yet" in rule["why"] and "'lab1'" in rule["why"]
    page = session_page(world)
    assert page.count("not yet applied") >= 2 and "week2/lab.ipynb" in page
    for path, cell in (("nb.ipynb", "free"), ("nb.ipynb", "later"), ("week2/lab.ipynb", "c1")):
        assert world.rtc("DELETE", f"{cells}?path={path}&cell_id={cell}")[0] == 204


def test_a_rule_on_a_stopped_server_is_not_verified(world: World) -> None:
    """Last in the module: it stops pia's server."""
    assert world.hub.api("DELETE", f"/hub/api/users/{OWNER}/server")[0] in (202, 204)

    def stopped() -> bool:
        _, model = world.hub.api("GET", f"/hub/api/users/{OWNER}")
        return not (model.get("servers") or {})

    wait_for("pia's server to stop", stopped, 60)
    cells = f"/sessions/{world.session_id}/cells"
    status, rule = world.rtc("PUT", cells, {"path": "nb.ipynb", "cell_id": "target", "rule": "locked"})
    assert status in (200, 201), rule
    assert rule["applied"] is None and rule["why"].startswith("not verified"), rule
    assert rule["enforced"] is True  # nothing runs that could still use older rights
    # a path repeating the folder is only a hint when nothing can be checked
    status, rule = world.rtc("PUT", cells, {"path": NOTEBOOK, "cell_id": "target", "rule": "locked"})
    assert status in (200, 201) and rule["applied"] is None, rule
    assert "did you mean 'nb.ipynb'?" in rule["why"]
    assert world.rtc("DELETE", f"{cells}?path={NOTEBOOK}&cell_id=target")[0] == 204
    page = session_page(world)
    assert "not verified" in page
