"""Session hosting through a real hub, proxy and service, with real servers.

The servers run with the hub_rtc extension switched off (a server without
it is exactly what hosting must guard against), so they never announce
themselves: the tests announce with the server's *own* hub token, read from
its process (exactly what the extension sends), or with the ops token naming
``server_user``.  End-to-end tests with the extension on are in
test_enforcement.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from hub_rtc import __version__
from hub_rtc.localhub import LocalHub
from tests.integration.conftest import Tokens, process_environ, start_hub, wait_for
from tests.integration.conftest import start_server as conftest_start_server
from tests.integration.test_api import conforms, ok, refused

pytestmark = pytest.mark.integration

ANNOUNCE_TIMEOUT = 4
HOSTING = f"""
c.RTCService.announce_timeout = {ANNOUNCE_TIMEOUT}
c.RTCService.sweep_seconds = 0.5
c.RTCService.rights_cache_seconds = 3
# spawned servers read this config dir first: it switches the hub_rtc extension off
import json, pathlib
_no_extension = pathlib.Path("no-hub-rtc-extension").resolve()
_no_extension.mkdir(exist_ok=True)
(_no_extension / "jupyter_server_config.json").write_text(
    json.dumps({{"ServerApp": {{"jpserver_extensions": {{"hub_rtc": False}}}}}}))
c.Spawner.environment = {{"JUPYTER_CONFIG_DIR": str(_no_extension)}}
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    """A hub whose service hosts sessions (shares, collaboration accounts)."""
    hub = start_hub(tmp_path_factory.mktemp("hosting"), HOSTING, manage_hub_access=True)
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def tokens(hub: LocalHub) -> Tokens:
    return Tokens(hub)


def server_env(user: str) -> dict[str, str]:
    """The environment of ``user``'s running single-user server process."""
    env = process_environ(lambda _, e: e.get("JUPYTERHUB_USER") == user and "JUPYTERHUB_API_TOKEN" in e)
    assert env is not None, f"no server process of {user}"
    return env


def start_server(hub: LocalHub, user: str) -> dict[str, str]:
    """Start ``user``'s default server through the hub; returns its environment."""
    conftest_start_server(hub, user)
    return server_env(user)


def _server(hub: LocalHub, user: str) -> dict[str, Any]:
    code, model = hub.api("GET", f"/hub/api/users/{user}")
    return (model.get("servers") or {}).get("", {}) if code == 200 else {}


def hub_shares(hub: LocalHub, user: str) -> set[tuple[str, str]]:
    """Who the hub says may reach ``user``'s default server through a share."""
    items = ok(hub.api("GET", f"/hub/api/shares/{user}/"))["items"]
    return {(s["kind"], (s["user"] or s["group"])["name"]) for s in items}


def session(hub: LocalHub, sid: str) -> dict[str, Any]:
    return ok(hub.rtc("GET", f"/sessions/{sid}"))


def announce(hub: LocalHub, token: str, **extra: str) -> dict[str, Any]:
    body = {"server_name": "", "version": __version__, "base_url": "/user/x/", **extra}
    return ok(hub.rtc("POST", "/servers/announce", body, token))


async def events(url: str, token: str, **query: str) -> WebSocketClientConnection:
    params = "&".join(f"{k}={v}" for k, v in {"server_name": "", **query}.items())
    ws_url = url.replace("http", "ws", 1) + "/servers/events?" + params
    return await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {token}"}))


async def shut(ws: WebSocketClientConnection) -> None:
    """Close and wait for the closing handshake, so no socket outlives the test's loop."""
    ws.close()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            while await ws.read_message() is not None:
                pass


async def next_message(ws: WebSocketClientConnection, timeout: float = 1.0) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.read_message(), timeout)
    assert raw is not None, "the events channel closed"
    message = json.loads(raw)
    conforms("ServerEvent", message)
    return message


async def test_owner_host_lets_members_in_only_through_an_announced_server(hub, tokens) -> None:
    alice, bob = tokens["alice"], tokens["bob"]
    body = {"title": "Owner", "host": "owner", "root": "lab1",
            "members": [{"user": "bob", "role": "editor"}]}
    refused(hub.rtc("POST", "/sessions", body, alice), 409, "start alice's server first")
    env = start_server(hub, "alice")
    refused(hub.rtc("POST", "/sessions", body, alice), 409, "has not announced the hub_rtc extension")
    server = env["JUPYTERHUB_API_TOKEN"]  # what the extension will announce with
    assert env["HUB_RTC_API_URL"].endswith("/services/rtc/api/v1")
    conforms("Announced", announce(hub, server))
    s = ok(hub.rtc("POST", "/sessions", body, alice), 201)
    conforms("Session", s)
    assert s["hosting"]["state"] == "ready" and hub_shares(hub, "alice") == {("user", "bob")}

    # the server asks about people with its own token, and sees only its own sessions
    rights = ok(hub.rtc("POST", "/servers/rights", {"user": "bob", "server_name": "",
                                                   "path": "lab1/nb.ipynb"}, server))
    conforms("Rights", rights)
    assert rights["session"]["id"] == s["id"] and rights["role"] == "editor"
    assert (rights["write"], rights["terminal"], rights["cache_seconds"]) == (True, False, 3)
    outside = ok(hub.rtc("POST", "/servers/rights", {"user": "bob", "server_name": "",
                                                    "path": "private/x.ipynb"}, server))
    assert outside["session"] is None and not outside["read"]
    refused(hub.rtc("POST", "/servers/rights", {"user": "bob", "server_name": "other"}, server),
            403, "belongs to alice's server")
    no_scope = hub.user_token("alice", scopes=["access:services!service=rtc", "custom:rtc:sessions"])
    refused(hub.rtc("POST", "/servers/rights", {"user": "bob", "server_name": ""}, no_scope),
            403, "custom:rtc:authorize")
    # bob's own token speaks for bob's servers only
    refused(hub.rtc("POST", "/servers/rights", {"user": "bob", "server_name": "",
                                               "server_user": "alice"}, bob), 403, "custom:rtc:admin")

    ws = await events(hub.service_url, server)
    assert await next_message(ws) == {"type": "hello", "sessions": [s["id"]]}
    # a new member is pushed too (a new runner changes what the files may change)
    adding = asyncio.ensure_future(asyncio.to_thread(
        hub.rtc, "PUT", f"/sessions/{s['id']}/members/group/empty", {"role": "viewer"}, alice))
    added = await next_message(ws, 5)
    assert (added["type"], added["session_id"], added["reason"]) == ("invalidate", s["id"], "member added")
    await ws.write_message(json.dumps({"type": "ack", "id": added["id"]}))
    ok(await adding, 201)
    assert hub_shares(hub, "alice") == {("user", "bob"), ("group", "empty")}
    started = time.monotonic()
    removing = asyncio.ensure_future(asyncio.to_thread(
        hub.rtc, "DELETE", f"/sessions/{s['id']}/members/user/bob", None, alice))
    message = await next_message(ws, 5)
    assert time.monotonic() - started < 1.0
    assert message == {"type": "invalidate", "id": message["id"], "session_id": s["id"],
                       "users": ["bob"], "reason": "member removed"}
    await ws.write_message(json.dumps({"type": "ack", "id": message["id"]}))  # in force here
    ok(await removing, 204)  # answered only once the server confirmed
    assert hub_shares(hub, "alice") == {("group", "empty")}
    refused(hub.rtc("GET", f"/sessions/{s['id']}", token=bob), 403)

    # activity comes from the hosting server (or an admin), nobody else
    batch = {"events": [{"ts": "2026-11-21T10:00:00Z", "user": "bob", "kind": "edit"}]}
    assert ok(hub.rtc("POST", f"/sessions/{s['id']}/activity", batch, server))["recorded"] == 1

    # alice stops her server: the sweep withdraws the shares at once
    hub.api("DELETE", "/hub/api/users/alice/server")
    wait_for("shares withdrawn", lambda: session(hub, s["id"])["hosting"]["state"] == "waiting", 10)
    assert hub_shares(hub, "alice") == set()
    await shut(ws)


async def test_collaboration_account_is_created_started_shared_and_stopped(hub, tokens) -> None:
    alice = tokens["alice"]
    s = ok(hub.rtc("POST", "/sessions", {"title": "Account", "members": [
        {"user": "carol", "role": "runner"}]}, alice), 201)
    account = s["server"]["user"]
    assert s["hosting"]["state"] == "starting" and account == f"rtc-{s['id']}"
    failed = wait_for("the announcement to time out",
                      lambda: (h := session(hub, s["id"])["hosting"])["state"] == "failed" and h,
                      60 + ANNOUNCE_TIMEOUT)
    assert f"did not announce itself within {ANNOUNCE_TIMEOUT} s" in failed["message"]
    assert _server(hub, account).get("ready")  # the hub user exists and its server runs
    assert hub_shares(hub, account) == set()  # but nobody was let in

    # the extension, late: announce with the account server's own token, straight to the
    # service at $HUB_RTC_API_URL as the extension will
    env = server_env(account)
    server, direct = env["JUPYTERHUB_API_TOKEN"], env["HUB_RTC_API_URL"]
    ws = await events(direct, server)
    assert await next_message(ws) == {"type": "hello", "sessions": [s["id"]]}
    assert announce(hub, server)["sessions"] == [s["id"]]
    assert session(hub, s["id"])["hosting"]["state"] == "ready"
    assert hub_shares(hub, account) == {("user", "alice"), ("user", "carol")}
    alice_session = next(x for x in ok(hub.rtc("GET", "/sessions?which=mine", token=alice))["sessions"]
                         if x["host"] == "owner")
    batch = {"events": [{"ts": "2026-11-21T10:00:00Z", "user": "carol", "kind": "edit"}]}
    refused(hub.rtc("POST", f"/sessions/{alice_session['id']}/activity", batch, server), 403,
            "only the server hosting")

    ending = asyncio.ensure_future(asyncio.to_thread(
        hub.rtc, "DELETE", f"/sessions/{s['id']}", None, alice))
    message = await next_message(ws, 5)
    assert message == {"type": "invalidate", "id": message["id"], "session_id": s["id"],
                       "users": None, "reason": "session ended"}
    await ws.write_message(json.dumps({"type": "ack", "id": message["id"]}))
    ok(await ending, 204)
    assert session(hub, s["id"])["hosting"]["state"] == "stopped"
    assert hub_shares(hub, account) == set()
    wait_for(f"{account}'s server to stop", lambda: not _server(hub, account), 30)
    assert hub.api("GET", f"/hub/api/users/{account}")[0] == 200  # the account stays
    await shut(ws)


async def test_admins_list_servers_and_speak_for_one(hub, tokens) -> None:
    bob = tokens["bob"]
    announce(hub, hub.ops_token, server_user="dave")  # ops holds custom:rtc:admin
    servers = ok(hub.rtc("GET", "/servers"))["servers"]
    for server in servers:
        conforms("Server", server)
    assert ("dave", "") in {(x["user"], x["name"]) for x in servers}
    refused(hub.rtc("GET", "/servers", token=bob), 403, "custom:rtc:admin")
    answer = ok(hub.rtc("POST", "/servers/rights", {"user": "bob", "server_name": "", "path": None,
                                                   "server_user": "dave"}))
    assert answer["session"] is None and not answer["read"]
    ws = await events(hub.service_url, hub.ops_token, server_user="dave")
    assert (await next_message(ws))["type"] == "hello"
    await shut(ws)
    ws = await events(hub.service_url, bob)  # bob's own token: his own (empty) server
    assert await next_message(ws) == {"type": "hello", "sessions": []}
    await shut(ws)
    no_scope = hub.user_token("bob", scopes=["access:services!service=rtc", "custom:rtc:sessions"])
    for token, query in ((no_scope, {}), (bob, {"server_user": "dave"}), ("not-a-token", {})):
        with pytest.raises(HTTPClientError) as refusal:
            await events(hub.service_url, token, **query)
        assert refusal.value.code == 403
