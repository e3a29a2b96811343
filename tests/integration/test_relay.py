"""The relay end to end: a real hub, olive's shared server with the hub_rtc
extension, and clients reaching its room through the service's
``/sessions/{id}/rooms/{path}`` websocket, which connects upstream as them.

Session "Lab 1" (folder ``lab1``) on olive's server: ed and ann are editors, vi
is a viewer, ``non`` is no member.  Direct clients go through the proxy to the
server's room as JupyterLab does; relayed ones through the service.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pycrdt import create_sync_message
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from hub_rtc.localhub import REPO, LocalHub
from tests.integration.conftest import (
    code_notebook,
    host_session,
    processes_in,
    saved_notebook,
    start_hub,
    start_server,
    wait_for,
)
from tests.integration.yclient import YClient

pytestmark = pytest.mark.integration

OWNER, EDITOR, VIEWER, ASSIGNEE, STRANGER, BRIEF = "olive", "ed", "vi", "ann", "non", "tem"
NOTEBOOK = "lab1/nb.ipynb"
CELLS = ("free", "locked", "other")
ON_BEHALF = "X-HubRTC-On-Behalf-Of"


class World:
    def __init__(self, hub: LocalHub, home: Path) -> None:
        self.hub = hub
        self.home = home
        self.tokens = {name: hub.user_token(name)
                       for name in (OWNER, EDITOR, VIEWER, ASSIGNEE, STRANGER, BRIEF)}
        self.session_id = ""

    def server(self, path: str, method: str = "GET", body: Any = None, user: str = OWNER,
               token: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return http(self.hub.url + f"/user/{OWNER}/{path}", method, body,
                    token or self.tokens[user], headers)

    def rtc(self, method: str, path: str, body: Any = None, user: str = OWNER) -> tuple[int, Any]:
        return self.hub.rtc(method, path, body, self.tokens[user])

    def relay_base(self, session_id: str | None = None) -> str:
        return (self.hub.url.replace("http", "ws", 1)
                + f"/services/rtc/api/v1/sessions/{session_id or self.session_id}/rooms")

    async def relayed(self, user: str, path: str = "nb.ipynb", token: str | None = None,
                      timeout: float = 15) -> YClient:
        """A pycrdt client of ``path`` through the relay, synced."""
        ws = await websocket_connect(HTTPRequest(
            f"{self.relay_base()}/{quote(path)}",
            headers={"Authorization": f"token {token or self.tokens[user]}"}))
        client = YClient(ws)
        await client.ws.write_message(create_sync_message(client.doc), binary=True)
        await asyncio.wait_for(client.synced.wait(), timeout)
        return client

    async def direct(self, user: str = OWNER) -> YClient:
        return await YClient.connect(self.hub.url, OWNER, NOTEBOOK, self.tokens[user])

    def disk(self) -> dict[str, Any]:
        return saved_notebook(self.home / OWNER / NOTEBOOK)

    def disk_sources(self) -> dict[str, str]:
        return {c["id"]: "".join(c["source"]) for c in self.disk()["cells"]}

    def service_token(self) -> str:
        """The hub_rtc service's own hub token, read from its process."""
        pids = processes_in(self.hub.workdir, "hub_rtc serve")
        assert pids, "the service's process was not found"
        raw = Path(f"/proc/{pids[0]}/environ").read_bytes().decode(errors="replace")
        env = dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)
        return env["JUPYTERHUB_API_TOKEN"]


def http(url: str, method: str = "GET", body: Any = None, token: str = "",
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw) if raw else None
        except ValueError:
            return e.code, raw.decode(errors="replace")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from make_world(tmp_path_factory.mktemp("relay"))


@pytest.fixture(scope="module")
def direct_route_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The same, with the relay reaching servers at their own address (not through the proxy)."""
    yield from make_world(tmp_path_factory.mktemp("relay-direct"),
                          'c.RTCService.relay_route = "direct"\n')


def make_world(workdir: Path, extra: str = "") -> Iterator[World]:
    hub = start_hub(workdir, manage_hub_access=True, extra=(
        "c.YDocExtension.document_save_delay = 0.2\n"
        "c.Spawner.poll_interval = 1\n"  # a killed server is noticed at once
        "c.RTCService.relay_reconnect_seconds = 90\n" + extra
    ))
    try:
        w = World(hub, workdir / "home")
        start_server(hub, OWNER)
        assert w.server("api/contents/lab1", "PUT", {"type": "directory"})[0] in (200, 201)
        content = code_notebook(CELLS)
        assert w.server(f"api/contents/{NOTEBOOK}", "PUT",
                        {"type": "notebook", "format": "json", "content": content})[0] in (200, 201)
        assert w.server("api/contents/private.txt", "PUT",
                        {"type": "file", "format": "text", "content": "olive's"})[0] in (200, 201)
        members = [{"user": EDITOR, "role": "editor"}, {"user": VIEWER, "role": "viewer"},
                   {"user": ASSIGNEE, "role": "editor"}]
        w.session_id = host_session(w.rtc, {"title": "Lab 1", "host": "owner", "root": "lab1",
                                            "members": members})
        assert w.rtc("PUT", f"/sessions/{w.session_id}/cells",
                     {"path": "nb.ipynb", "cell_id": "locked", "rule": "locked"})[0] in (200, 201)
        yield w
    finally:
        hub.stop()


@pytest.fixture
async def direct(world: World) -> AsyncIterator[YClient]:
    client = await world.direct()
    yield client
    client.close()


def converged(*clients: YClient) -> bool:
    return len({json.dumps(c.state(), sort_keys=True) for c in clients}) == 1


def run_yjs(world: World, user: str, cell: str, text: str, wait_ms: int = 1500) -> list[dict[str, Any]]:
    """A stock Yjs WebsocketProvider through the relay: types ``text`` into ``cell``."""
    node = shutil.which("node")
    assert node, "node is needed for the Yjs interoperability test (./dev setup installs the rest)"
    script = REPO / ".node" / "yjs_client.mjs"
    shutil.copy(Path(__file__).with_name("yjs_client.mjs"), script)
    # the relay needs no sessionId: the Yjs client's extra parameter is ignored
    out = subprocess.run([node, str(script), world.relay_base(), "nb.ipynb", "-",
                          world.tokens[user], cell, text, str(wait_ms)],
                         capture_output=True, text=True, timeout=60, check=True)
    return list(json.loads(out.stdout))


# -- editing through the relay --------------------------------------------------------


async def test_relayed_and_direct_clients_edit_together_and_converge(world: World, direct: YClient
                                                                     ) -> None:
    relayed = await world.relayed(EDITOR)
    try:
        assert converged(relayed, direct)
        relayed.type_into("free", "relayed ")
        await direct.until(lambda: direct.source("free").startswith("relayed "))
        direct.type_into("other", "direct ")
        await relayed.until(lambda: relayed.source("other").startswith("direct "))
        yjs_view = await asyncio.to_thread(run_yjs, world, ASSIGNEE, "free", "yjs ")
        yjs_free = next(c for c in yjs_view if c["id"] == "free")["source"]
        assert yjs_free.startswith("yjs relayed ")
        for client in (relayed, direct):
            await client.until(lambda c=client: c.source("free").startswith("yjs relayed "))
        await relayed.until(lambda: converged(relayed, direct))
        await asyncio.to_thread(wait_for, "the edits saved",
                                lambda: world.disk_sources()["free"].startswith("yjs relayed "))
    finally:
        relayed.close()


async def test_a_viewers_relayed_edit_is_reverted_and_never_saved(world: World, direct: YClient
                                                                  ) -> None:
    viewer = await world.relayed(VIEWER)
    try:
        before = direct.source("free")
        viewer.type_into("free", "SECRET-relayed ")
        await viewer.until(lambda: viewer.source("free") == before)  # reverted in the sender
        await asyncio.sleep(0.6)  # past the save delay
        assert "SECRET" not in json.dumps(direct.state()) and converged(viewer, direct)
        assert "SECRET" not in json.dumps(world.disk())
        yjs_view = await asyncio.to_thread(run_yjs, world, VIEWER, "free", "SECRET-yjs ")
        assert "SECRET" not in json.dumps(yjs_view)
        await asyncio.sleep(0.6)
        assert "SECRET" not in json.dumps(direct.state()) + json.dumps(world.disk())
    finally:
        viewer.close()


async def test_a_read_only_token_cannot_edit_through_the_relay(world: World, direct: YClient) -> None:
    token = world.hub.user_token(EDITOR, scopes=["access:services!service=rtc",
                                                 "custom:rtc:documents:read"])
    reader = await world.relayed(EDITOR, token=token)
    try:
        before = direct.source("free")
        reader.type_into("free", "SECRET-read-only ")
        await reader.until(lambda: reader.source("free") == before)
        assert "SECRET" not in direct.source("free")
    finally:
        reader.close()


async def refused(world: World, url: str, token: str) -> tuple[int, str]:
    try:
        ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    except HTTPClientError as e:
        body = e.response.body.decode() if e.response is not None and e.response.body else ""
        return e.code, body
    ws.close()
    return 101, ""


async def test_the_relay_refuses_before_connecting_upstream(world: World) -> None:
    base = world.relay_base()
    status, body = await refused(world, f"{base}/nb.ipynb", world.tokens[STRANGER])
    assert status == 403 and "not shared with" in body
    assert (await refused(world, world.relay_base("nosuch") + "/nb.ipynb", world.tokens[EDITOR]))[0] == 404
    assert (await refused(world, f"{base}/missing.ipynb", world.tokens[EDITOR]))[0] == 404
    assert (await refused(world, f"{base}/..%2Fprivate.txt", world.tokens[EDITOR]))[0] == 422
    no_scope = world.hub.user_token(EDITOR, scopes=["access:services!service=rtc"])
    status, body = await refused(world, f"{base}/nb.ipynb", no_scope)
    assert status == 403 and "custom:rtc:documents:read" in body
    assert (await refused(world, f"{base}/nb.ipynb", "not-a-token"))[0] == 403


def api_md_example(language: str) -> str:
    """The relay example in docs/api.md for ``language``, aimed at this session's notebook."""
    text = (REPO / "docs" / "api.md").read_text().split("## Relay", 1)[1]
    code = text.split(f"```{language}\n", 1)[1].split("```", 1)[0]
    return code.replace("'lab1.ipynb'", "'nb.ipynb'").replace("/lab1.ipynb", "/nb.ipynb")


async def test_the_documented_examples_work(world: World, direct: YClient) -> None:
    env = {**os.environ, "HUB": world.hub.url.replace("http", "ws", 1),
           "SESSION": world.session_id, "JUPYTERHUB_API_TOKEN": world.tokens[ASSIGNEE]}
    out = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", api_md_example("python")],
                                  env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    await direct.until(lambda: direct.source("free").startswith("# edited by a script\n"))
    node = shutil.which("node")
    assert node, "node is needed for the Yjs example"
    script = REPO / ".node" / "api_md_example.mjs"
    script.write_text(api_md_example("js"))
    out = await asyncio.to_thread(subprocess.run, [node, str(script)], env=env,
                                  capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    await direct.until(lambda: direct.source("free").startswith("# edited from Node\n"))


# -- the on-behalf assertion -----------------------------------------------------------


def hub_log(world: World) -> str:
    return (world.hub.workdir / "hub.log").read_text(errors="replace")


def test_the_assertion_is_ignored_from_a_users_token(world: World) -> None:
    as_owner = {ON_BEHALF: OWNER}
    # ed asserting olive is still ed: kept out of olive's private file and terminals
    assert world.server("api/contents/private.txt", user=EDITOR, headers=as_owner)[0] == 403
    assert world.server("api/terminals", "POST", {}, user=EDITOR, headers=as_owner)[0] == 403
    # a stranger asserting a member is still a stranger
    assert world.server(f"api/contents/{NOTEBOOK}", user=STRANGER, headers={ON_BEHALF: EDITOR}
                        )[0] == 403
    # a viewer asserting an editor still cannot write
    assert world.server("api/contents/lab1/new.txt", "PUT",
                        {"type": "file", "format": "text", "content": "x"},
                        user=VIEWER, headers={ON_BEHALF: EDITOR})[0] == 403
    wait_for("the ignored header logged", lambda: f"ignored {ON_BEHALF} from user ed" in hub_log(world))


def test_the_assertion_is_ignored_from_another_service(world: World) -> None:
    # ops holds access:servers (and admin), but is not the hub_rtc service
    status, _ = world.server(f"api/contents/{NOTEBOOK}", token=world.hub.ops_token,
                             headers={ON_BEHALF: OWNER})
    assert status == 403
    wait_for("the ignored header logged",
             lambda: f"ignored {ON_BEHALF} from service ops" in hub_log(world))


def test_the_service_acting_for_a_user_gets_what_their_sessions_give(world: World) -> None:
    token = world.service_token()
    # for ed: ed's rights, inside the session folder only
    as_ed = {ON_BEHALF: EDITOR}
    assert world.server(f"api/contents/{NOTEBOOK}", token=token, headers=as_ed)[0] == 200
    assert world.server("api/contents/private.txt", token=token, headers=as_ed)[0] == 403
    # for the server's owner: no more than the owner's sessions give — not the rest of
    # olive's files, no terminal
    as_owner = {ON_BEHALF: OWNER}
    assert world.server(f"api/contents/{NOTEBOOK}", token=token, headers=as_owner)[0] == 200
    assert world.server("api/contents/private.txt", token=token, headers=as_owner)[0] == 403
    assert world.server("api/terminals", "POST", {}, token=token, headers=as_owner)[0] == 403
    # read-only narrows an editor to reading
    read_only = {ON_BEHALF: EDITOR, "X-HubRTC-Read-Only": "1"}
    assert world.server(f"api/contents/{NOTEBOOK}", token=token, headers=read_only)[0] == 200
    assert world.server("api/contents/lab1/new.txt", "PUT",
                        {"type": "file", "format": "text", "content": "x"},
                        token=token, headers=read_only)[0] == 403
    # without the header the service is itself, and no member of anything
    assert world.server(f"api/contents/{NOTEBOOK}", token=token)[0] == 403
    # and who the server says is calling
    status, me = world.server("api/me", token=token, headers=as_ed)
    assert status == 200 and me["identity"]["name"] == EDITOR


# -- attribution and revocation -----------------------------------------------------------


async def test_activity_attributes_relayed_edits_to_the_real_user(world: World) -> None:
    relayed = await world.relayed(ASSIGNEE)
    try:
        relayed.type_into("other", "ann-relayed ")

        def shows_ann() -> bool:
            status, reply = world.rtc("GET", f"/sessions/{world.session_id}/activity")
            assert status == 200, reply
            return any(e["user"] == ASSIGNEE and e["kind"] == "edit" and e["cell_id"] == "other"
                       and e["path"] == "nb.ipynb" for e in reply["events"])

        await asyncio.to_thread(wait_for, "ann's relayed edit in the activity", shows_ann, 20)
        status, reply = world.rtc("GET", f"/sessions/{world.session_id}/activity")
        assert not any(e["user"] == "rtc" for e in reply["events"])
    finally:
        relayed.close()


async def test_a_refused_relayed_edit_counts_one_refusal(world: World) -> None:
    """One update refused is one refused attempt, from a pycrdt client and a stock Yjs one."""

    def refusals() -> int:
        status, reply = world.rtc("GET", f"/sessions/{world.session_id}/activity?kind=refused"
                                         f"&user={EDITOR}")
        assert status == 200, reply
        return sum(e["count"] for e in reply["events"] if e["cell_id"] == "locked")

    await asyncio.sleep(6)  # past the server's next batch (5 s): earlier tests' counts are in
    before = refusals()
    relayed = await world.relayed(EDITOR)
    try:
        locked = relayed.source("locked")
        relayed.type_into("locked", "SECRET-once ")  # one update
        await relayed.until(lambda: relayed.source("locked") == locked)
    finally:
        relayed.close()
    await asyncio.to_thread(run_yjs, world, EDITOR, "locked", "SECRET-yjs-once ")
    await asyncio.to_thread(wait_for, "the refusals in the activity", lambda: refusals() > before, 20)
    await asyncio.sleep(6)  # a second count of either would come with the next batch
    assert refusals() - before == 2


async def test_awareness_through_the_relay_names_the_real_user(world: World, direct: YClient) -> None:
    relayed = await world.relayed(EDITOR)
    try:
        await relayed.say({"user": {"name": OWNER, "display_name": "Olive (really)"}})
        cid = relayed.doc.client_id
        await direct.until(lambda: cid in direct.peers)
        assert direct.peers[cid]["user"]["name"] == EDITOR
    finally:
        relayed.close()


async def test_removing_a_member_closes_their_relayed_socket(world: World) -> None:
    status, reply = world.rtc("PUT", f"/sessions/{world.session_id}/members/user/{BRIEF}",
                              {"role": "editor"})
    assert status in (200, 201), reply
    relayed = await world.relayed(BRIEF)
    try:
        started = time.monotonic()
        status, reply = await asyncio.to_thread(
            world.rtc, "DELETE", f"/sessions/{world.session_id}/members/user/{BRIEF}")
        assert status == 204, reply
        code, _ = await asyncio.wait_for(relayed.closed, 5)
        assert code == 4403 and time.monotonic() - started < 2.0
        base = world.relay_base()
        assert (await refused(world, f"{base}/nb.ipynb", world.tokens[BRIEF]))[0] == 403
    finally:
        relayed.close()


async def test_a_garbled_update_closes_the_relayed_client_with_4400(world: World) -> None:
    relayed = await world.relayed(EDITOR)
    try:
        await relayed.ws.write_message(b"\x00\x02\xff\xff", binary=True)  # a truncated update
        code, _ = await asyncio.wait_for(relayed.closed, 5)
        assert code == 4400  # the room's own code, passed on: no reconnect behind its back
    finally:
        relayed.close()


# -- a shared server killed and started again -----------------------------------------------


def server_pids(world: World) -> list[int]:
    return processes_in(world.home / OWNER, "jupyterhub.singleuser")


async def test_a_killed_server_comes_back_and_no_accepted_edit_is_lost(world: World) -> None:
    await killed_and_restarted(world)


async def test_the_direct_route_relays_and_follows_a_restarted_server(direct_route_world: World
                                                                      ) -> None:
    world = direct_route_world
    direct = await world.direct()
    try:
        relayed = await world.relayed(EDITOR)
        relayed.type_into("free", "by-the-direct-route ")
        await direct.until(lambda: direct.source("free").startswith("by-the-direct-route "))
        relayed.close()
    finally:
        direct.close()
    # the service read where the proxy sends olive's server, with its `proxy` scope
    assert re.search(r"200 GET /hub/api/proxy\S* \(rtc@", hub_log(world))
    await killed_and_restarted(world)  # the server comes back on another port


async def killed_and_restarted(world: World) -> None:
    editor = await world.relayed(EDITOR)
    assignee = await world.relayed(ASSIGNEE)
    try:
        editor.type_into("free", "before-kill ")
        await assignee.until(lambda: assignee.source("free").startswith("before-kill "))
        # jupyter-collaboration's durable point: a room restarted from a file that lacks
        # an edit resets to the file (see docs/security.md); the relay adds no such window
        await asyncio.to_thread(wait_for, "the accepted edit saved",
                                lambda: "before-kill " in world.disk_sources()["free"])
        pids = server_pids(world)
        assert pids, "olive's server process was not found"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        # typed while the server is down: held by the clients (and the relay)
        await asyncio.sleep(0.5)
        editor.type_into("other", "during-outage ")
        assignee.type_into("free", "ann-during ")
        await asyncio.to_thread(wait_for, "the hub noticed the server died", lambda: not (
            world.hub.api("GET", f"/hub/api/users/{OWNER}")[1].get("servers") or {}), 30)
        await asyncio.to_thread(start_server, world.hub, OWNER, 90)
        direct = await _direct_when_back(world)
        try:
            for client in (direct, editor, assignee):
                await client.until(lambda c=client: "during-outage " in c.source("other")
                                   and "ann-during " in c.source("free")
                                   and "before-kill " in c.source("free"), timeout=60)
            await editor.until(lambda: converged(direct, editor, assignee), timeout=10)
            assert direct.source("free").count("before-kill ") == 1  # nothing doubled
            assert not editor.closed.done() and not assignee.closed.done()
            await asyncio.to_thread(wait_for, "the edits saved by the new server", lambda: (
                "during-outage " in world.disk_sources()["other"]
                and "ann-during " in world.disk_sources()["free"]), 30)
        finally:
            direct.close()
    finally:
        editor.close()
        assignee.close()


async def _direct_when_back(world: World) -> YClient:
    deadline = time.monotonic() + 90
    while True:
        try:
            return await world.direct()
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
