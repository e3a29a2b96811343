"""The server's own token is nobody's browser (issue 11, item 1), with a real hub.

opal's server hosts session "Lab" (folder ``lab1``, moe an editor, cell
``locked`` locked).  The test reads the token JupyterHub gave opal's server
from that process's environment, as kernel code can, and tries it everywhere:
as ``Authorization: token`` and as ``?token=`` against contents, kernels,
terminals and their websockets, the collaboration room, JupyterLab's page;
and against every endpoint of the service that would let it act as opal.
Each is refused.  opal's own token still does everything, and the extension's
own calls with that token (announce, rights, baselines, presence, activity,
events) still arrive.

Two settings make every refusal here this feature's, not an accident:
``JUPYTERHUB_ALLOW_TOKEN_IN_URL`` (HubAuth then takes ``?token=`` on every
request, as a deployment may), and ``c.Spawner.server_token_scopes`` giving
servers' tokens ``custom:rtc:sessions`` and ``custom:rtc:documents:write``
(so no scope is missing: the service must know the token for a server's).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from hub_rtc import __version__, auth
from hub_rtc.decision import Resource
from hub_rtc.localhub import LocalHub
from tests.integration.conftest import (
    code_notebook,
    dedicated_session,
    host_session,
    process_environ,
    start_hub,
    start_server,
    wait_for,
)
from tests.integration.yclient import YClient, close_socket, open_session

pytestmark = pytest.mark.integration

OWNER, MEMBER = "opal", "moe"
NOTEBOOK = "lab1/nb.ipynb"
#: what the shared server answers the server's own token (words HTML escapes in no way)
ON_THE_SERVER = "own API token is not a user"
#: what the service answers it, on every endpoint but a server's own
ON_THE_SERVICE = "never as its user"

EXTRA = """
c.Spawner.environment = {"JUPYTERHUB_ALLOW_TOKEN_IN_URL": "1"}
c.Spawner.server_token_scopes = [
    "users:activity!user", "access:servers!server", "access:services!service=rtc",
    "custom:rtc:authorize!server", "custom:rtc:activity:write!server",
    "custom:rtc:sessions", "custom:rtc:documents:write",
]
c.YDocExtension.document_save_delay = 0.2
"""


class World:
    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub
        self.tokens = {name: hub.user_token(name) for name in (OWNER, MEMBER)}
        self.session_id = ""
        self.server_token = ""

    def server(self, path: str, token: str, method: str = "GET", body: Any = None,
               ) -> tuple[int, Any]:
        return self.hub.api(method, f"/user/{OWNER}/{path}", body, token)

    def rtc(self, method: str, path: str, body: Any = None, token: str | None = None,
            ) -> tuple[int, Any]:
        return self.hub.rtc(method, path, body, token or self.tokens[OWNER])


def server_token(user: str) -> str:
    """``user``'s server's own hub token, read from the server process as kernel code can."""
    env = process_environ(lambda cmdline, e: "jupyterhub.singleuser" in cmdline
                          and e.get("JUPYTERHUB_USER") == user and "JUPYTERHUB_API_TOKEN" in e)
    assert env is not None, f"no readable server process of {user}"
    return env["JUPYTERHUB_API_TOKEN"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    hub = start_hub(tmp_path_factory.mktemp("server-token"), EXTRA, manage_hub_access=True)
    try:
        w = World(hub)
        start_server(hub, OWNER)
        owner = w.tokens[OWNER]
        assert w.server("api/contents/lab1", owner, "PUT", {"type": "directory"})[0] in (200, 201)
        notebook = {"type": "notebook", "format": "json",
                    "content": code_notebook(["free", "locked"])}
        assert w.server(f"api/contents/{NOTEBOOK}", owner, "PUT", notebook)[0] in (200, 201)
        w.session_id = host_session(w.rtc, {"title": "Lab", "host": "owner", "root": "lab1",
                                            "members": [{"user": MEMBER, "role": "editor"}]})
        rule = {"path": "nb.ipynb", "cell_id": "locked", "rule": "locked"}
        assert w.rtc("PUT", f"/sessions/{w.session_id}/cells", rule)[0] in (200, 201)
        w.server_token = server_token(OWNER)
        assert w.server_token not in w.tokens.values()
        yield w
    finally:
        hub.stop()


def refused_on_server(result: tuple[int, Any]) -> bool:
    status, body = result
    return status == 403 and ON_THE_SERVER in json.dumps(body)


def with_token(path: str, token: str) -> str:
    return path + ("&" if "?" in path else "?") + "token=" + quote(token)


# -- on the shared server ----------------------------------------------------------------------

#: (method, path under the server, body): what the owner may do, and the token may not
REQUESTS = [
    ("GET", f"api/contents/{NOTEBOOK}", None),
    ("GET", "api/contents/", None),
    ("PUT", "api/contents/lab1/planted.txt", {"type": "file", "format": "text", "content": "x"}),
    ("GET", "files/lab1/nb.ipynb", None),
    ("GET", "api/kernels", None),
    ("POST", "api/kernels", {"name": "python3"}),
    ("GET", "api/sessions", None),
    ("GET", "api/terminals", None),
    ("POST", "api/terminals", {}),
    ("GET", "api/me", None),
    ("GET", "api/", None),
    ("PUT", f"api/collaboration/session/{NOTEBOOK}", {"format": "json", "type": "notebook"}),
    ("GET", "lab", None),
]


@pytest.mark.parametrize("way", ["header", "query"])
@pytest.mark.parametrize(("method", "path", "body"), REQUESTS, ids=[f"{m} {p}" for m, p, _ in REQUESTS])
def test_the_servers_token_is_refused_on_its_server(world: World, way: str, method: str, path: str,
                                                    body: Any) -> None:
    if way == "header":
        result = world.server(path, world.server_token, method, body)
    else:  # no header at all: the URL is the only credential
        result = no_header(world, method, with_token(f"/user/{OWNER}/{path}", world.server_token), body)
    status, reply = result
    assert status == 403 and ON_THE_SERVER in json.dumps(reply), (status, reply)  # JSON, or a page
    assert world.server("api/contents/lab1/planted.txt", world.tokens[OWNER])[0] == 404


def no_header(world: World, method: str, path: str, body: Any = None,
              headers: dict[str, str] | None = None) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(world.hub.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, _body(r.read())
    except urllib.error.HTTPError as e:
        return e.code, _body(e.read())


def _body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def test_a_token_in_a_page_url_is_not_kept_in_a_cookie(world: World) -> None:
    import urllib.error
    import urllib.request

    url = world.hub.url + with_token(f"/user/{OWNER}/lab", world.server_token)
    request = urllib.request.Request(url, headers={"Sec-Fetch-Mode": "navigate"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403
    assert ON_THE_SERVER in refused.value.read().decode(errors="replace")
    cookies = refused.value.headers.get_all("Set-Cookie") or []
    assert not [c for c in cookies if c.startswith(f"jupyterhub-user-{OWNER}=")], cookies


async def ws(world: World, path: str, token: str, way: str) -> WebSocketClientConnection:
    """A websocket to ``path`` on opal's server, with ``token`` as a browser would send it."""
    url = world.hub.url.replace("http", "ws", 1) + f"/user/{OWNER}/{path}"
    if way == "header":
        return await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    return await websocket_connect(HTTPRequest(with_token(url, token),
                                               headers={"Sec-Fetch-Mode": "websocket"}))


async def ws_status(world: World, path: str, token: str, way: str) -> int:
    try:
        conn = await ws(world, path, token, way)
    except HTTPClientError as e:
        return e.code
    close_socket(conn)
    return 101


@pytest.fixture(scope="module")
def kernel(world: World) -> Iterator[str]:
    status, model = world.server("api/kernels", world.tokens[OWNER], "POST", {"name": "python3"})
    assert status == 201, model
    yield model["id"]
    world.server(f"api/kernels/{model['id']}", world.tokens[OWNER], "DELETE")


@pytest.fixture(scope="module")
def terminal(world: World) -> Iterator[str]:
    status, model = world.server("api/terminals", world.tokens[OWNER], "POST", {})
    assert status == 200, model
    yield model["name"]
    world.server(f"api/terminals/{model['name']}", world.tokens[OWNER], "DELETE")


@pytest.mark.parametrize("way", ["header", "query"])
async def test_websockets_refuse_it_and_take_the_owner(world: World, kernel: str, terminal: str,
                                                      way: str) -> None:
    file_id, session = await open_session(world.hub.url, OWNER, NOTEBOOK, world.tokens[OWNER])
    sockets = [f"api/kernels/{kernel}/channels",
               f"terminals/websocket/{terminal}",
               f"api/collaboration/room/json:notebook:{file_id}?sessionId={session}",
               "api/events/subscribe"]
    for path in sockets:
        assert await ws_status(world, path, world.server_token, way) == 403, path
        assert await ws_status(world, path, world.tokens[OWNER], way) == 101, path


async def test_the_room_refuses_it_and_nothing_reaches_the_document(world: World) -> None:
    # the route kernel code would take: the server's token, as the owner, on a locked cell
    with pytest.raises(HTTPClientError) as refused:
        await YClient.connect(world.hub.url, OWNER, NOTEBOOK, world.server_token)
    assert refused.value.code == 403
    owner = await YClient.connect(world.hub.url, OWNER, NOTEBOOK, world.tokens[OWNER])
    try:
        assert "SECRET" not in json.dumps(owner.state())
    finally:
        owner.close()


def test_the_owners_own_token_still_does_everything(world: World) -> None:
    owner = world.tokens[OWNER]
    for method, path, body in REQUESTS:
        if method == "POST":
            continue  # (a kernel and a terminal are started by the fixtures above)
        status, reply = world.server(path, owner, method, body)
        assert status in (200, 201), (method, path, status, reply)
        status, reply = no_header(world, method, with_token(f"/user/{OWNER}/{path}", owner), body)
        assert status in (200, 201), ("?token=", method, path, status, reply)
    assert world.server("api/contents/lab1/planted.txt", owner, "DELETE")[0] == 204


# -- what the extension does with the token still arrives ----------------------------------------

def session(world: World) -> dict[str, Any]:
    status, found = world.rtc("GET", f"/sessions/{world.session_id}")
    assert status == 200, found
    return dict(found)


def activity(world: World, kind: str) -> list[dict[str, Any]]:
    status, found = world.rtc("GET", f"/sessions/{world.session_id}/activity?kind={kind}")
    assert status == 200, found
    return list(found["events"])


async def test_presence_activity_and_rights_still_arrive(world: World) -> None:
    owner = await YClient.connect(world.hub.url, OWNER, NOTEBOOK, world.tokens[OWNER])
    member = await YClient.connect(world.hub.url, OWNER, NOTEBOOK, world.tokens[MEMBER])
    try:
        # presence: the server reports who has the session's documents open
        await asyncio.to_thread(wait_for, "presence from the server",
                                lambda: {OWNER, MEMBER} <= set(session(world)["online"]), 20)
        # rights: the member's role came from /servers/rights (the server's token)
        member.type_into("free", "moe: ")
        await owner.until(lambda: owner.source("free").startswith("moe: "))
        before = owner.source("locked")
        member.type_into("locked", "SECRET")
        await member.until(lambda: member.source("locked") == before)
        # activity: counted edits and refusals, sent with the server's token
        await asyncio.to_thread(wait_for, "the member's edit in the activity",
                                lambda: [e for e in activity(world, "edit") if e["user"] == MEMBER], 30)
        await asyncio.to_thread(wait_for, "the refusal in the activity",
                                lambda: [e for e in activity(world, "refused")
                                         if e["user"] == MEMBER], 30)
    finally:
        owner.close()
        member.close()


def test_the_servers_own_endpoints_take_its_token(world: World) -> None:
    token = world.server_token
    status, answer = world.rtc("POST", "/servers/rights", {"user": MEMBER, "server_name": "",
                                                           "path": NOTEBOOK}, token)
    assert status == 200 and answer["role"] == "editor" and answer["write"], answer
    status, answer = world.rtc("POST", "/servers/baselines", {"server_name": "", "path": NOTEBOOK},
                               token)
    assert status == 200, answer
    status, answer = world.rtc("POST", "/servers/announce", {
        "server_name": "", "version": __version__, "base_url": f"/user/{OWNER}/"}, token)
    assert status == 200 and answer["sessions"] == [world.session_id], answer


async def test_the_events_channel_takes_its_token(world: World) -> None:
    url = world.hub.service_url.replace("http", "ws", 1) + "/servers/events?server_name="
    conn = await websocket_connect(HTTPRequest(
        url, headers={"Authorization": f"token {world.server_token}"}))
    try:
        hello = json.loads(await asyncio.wait_for(conn.read_message(), 5) or "{}")
        assert hello == {"type": "hello", "sessions": [world.session_id]}
    finally:
        close_socket(conn)


# -- on the service: never its owner ---------------------------------------------------------------

def service_requests(sid: str) -> list[tuple[str, str, Any]]:
    """Every endpoint that would let the token act as opal, with a body that would do it."""
    doc = f"/sessions/{sid}/documents/nb.ipynb"
    return [
        ("GET", "/me", None), ("GET", "/identity", None), ("GET", "/policy", None),
        ("GET", "/status", None), ("GET", "/servers", None),
        ("POST", "/authorize", {"action": "write", "resource": {"session_id": sid}}),
        ("GET", "/sessions", None),
        ("POST", "/sessions", {"title": "planted", "host": "owner", "root": "lab2"}),
        ("GET", f"/sessions/{sid}", None),
        ("PATCH", f"/sessions/{sid}", {"title": "renamed"}),
        ("GET", f"/sessions/{sid}/members", None),
        ("PUT", f"/sessions/{sid}/members/user/eve", {"role": "manager"}),
        ("DELETE", f"/sessions/{sid}/members/user/{MEMBER}", None),
        ("POST", f"/sessions/{sid}/watch", None),
        ("GET", f"/sessions/{sid}/cells", None),
        ("PUT", f"/sessions/{sid}/cells", {"path": "nb.ipynb", "cell_id": "free", "rule": "locked"}),
        ("DELETE", f"/sessions/{sid}/cells?path=nb.ipynb&cell_id=locked", None),
        ("GET", f"/sessions/{sid}/activity", None),
        ("GET", f"/sessions/{sid}/activity/summary", None),
        ("GET", doc, None),
        ("POST", doc + "/cells", {"source": "planted"}),
        ("PUT", doc + "/cells/locked", {"source": "SECRET"}),
        ("POST", doc + "/cells/locked/append", {"source": "SECRET"}),
        ("DELETE", doc + "/cells/locked", None),
        ("GET", "/teams", None), ("POST", "/teams", {"name": "planted", "members": []}),
        ("DELETE", f"/sessions/{sid}", None),  # last: on its own it would end all of the above
    ]


def test_the_service_gives_the_servers_token_none_of_its_owners_powers(world: World) -> None:
    before = session(world), world.rtc("GET", f"/sessions/{world.session_id}/cells")[1]
    wrong = []
    for method, path, body in service_requests(world.session_id):
        status, reply = world.rtc(method, path, body, world.server_token)
        if status != 403 or ON_THE_SERVICE not in json.dumps(reply):
            wrong.append((method, path, status, reply))
    assert wrong == []
    after = session(world), world.rtc("GET", f"/sessions/{world.session_id}/cells")[1]
    assert after[1] == before[1]
    assert (after[0]["title"], after[0]["state"], after[0]["members"]) == (
        before[0]["title"], before[0]["state"], before[0]["members"])
    # the owner's own token does all of this as ever
    for method, path in (("GET", "/me"), ("GET", f"/sessions/{world.session_id}"),
                         ("GET", f"/sessions/{world.session_id}/documents/nb.ipynb")):
        status, reply = world.rtc(method, path)
        assert status == 200, (method, path, reply)


def test_the_services_pages_refuse_it(world: World) -> None:
    for path in ("/", f"/sessions/{world.session_id}", "/teams", "/dashboard", "/admin"):
        status, reply = world.hub.api("GET", f"/services/rtc{path}", token=world.server_token)
        assert status == 403 and ON_THE_SERVICE in json.dumps(reply), (path, status)
    for path in ("/", f"/sessions/{world.session_id}", "/teams"):
        assert world.hub.api("GET", f"/services/rtc{path}", token=world.tokens[OWNER])[0] == 200
    status, _ = world.hub.api("POST", f"/services/rtc/sessions/{world.session_id}/end",
                              token=world.server_token)
    assert status == 403 and session(world)["state"] != "ended"


async def test_the_relay_refuses_it(world: World) -> None:
    url = (world.hub.url.replace("http", "ws", 1)
           + f"/services/rtc/api/v1/sessions/{world.session_id}/rooms/nb.ipynb")
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(HTTPRequest(url, headers={
            "Authorization": f"token {world.server_token}"}))
    assert refused.value.code == 403
    conn = await websocket_connect(HTTPRequest(url, headers={
        "Authorization": f"token {world.tokens[OWNER]}"}))
    close_socket(conn)


def test_no_decision_is_made_for_it(world: World) -> None:
    resource = {"session_id": world.session_id, "path": "nb.ipynb", "cell_id": "locked"}
    status, reply = world.rtc("POST", "/authorize", {"token": world.server_token,
                                                     "action": "write", "resource": resource},
                              world.hub.ops_token)
    assert status == 422 and "own hub token" in reply["message"], reply
    # the Python hook, as kernel code on the server would call it with $JUPYTERHUB_API_TOKEN
    with pytest.raises(auth.ServiceError) as refused:
        auth.allowed(world.server_token, "write", Resource(world.session_id, "nb.ipynb", "locked"),
                     api_url=world.hub.service_url, caller_token=world.server_token)
    assert refused.value.status == 403
    by_name = {"user": OWNER, "action": "write", "resource": resource}
    assert world.rtc("POST", "/authorize", by_name, world.hub.ops_token)[1]["allowed"] is True


# -- a dedicated session server: its token is nobody's either ------------------------------------

async def test_a_dedicated_servers_token_is_refused_there_too(world: World) -> None:
    found = await asyncio.to_thread(dedicated_session, world.rtc, {
        "title": "Dedicated", "members": [{"user": MEMBER, "role": "editor"}]})
    account = found["server"]["user"]
    token = server_token(account)
    try:
        status, reply = world.hub.api("GET", f"/user/{account}/api/contents/", token=token)
        assert status == 403 and ON_THE_SERVER in json.dumps(reply), reply
        status, reply = world.hub.api("POST", f"/user/{account}/api/kernels", {"name": "python3"},
                                      token=token)
        assert status == 403, reply
        assert world.rtc("GET", f"/sessions/{found['id']}", token=token)[0] == 403
        status, _ = world.hub.api("GET", f"/user/{account}/api/contents/", token=world.tokens[MEMBER])
        assert status == 200
    finally:
        world.rtc("DELETE", f"/sessions/{found['id']}")

