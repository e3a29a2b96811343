"""Kernels hold no authority (issue 11): attacks from an editor's real kernel, on a real hub.

Code in a session's kernel is whoever may execute there.  Each test here runs
one attack from ed's ipykernel, driven over its websocket as JupyterLab does,
and checks that it fails or is undone where it would land: in the owner's
replica, on disk, in the service.

One hub per kernel-isolation mode (``c.RTCPolicy.kernel_isolation``): ``none``
always, ``sandbox`` where :func:`hub_rtc.singleuser.isolation.probe` says a
sandbox can be made.  olive's own server hosts "Lab 1" (folder ``lab1``: ed
editor, ru runner; cell ``locked`` of ``lab1/nb.ipynb`` is locked) and "Lab 2"
(folder ``lab2``, for mal, whose kernel's connection key is a credential ed
must not find).  A dedicated session server hosts "Group" (ed editor).

Everything runs as root.  In ``none`` mode the kernel is the server's account
with every capability: it can read any ``/proc/<pid>/environ``, so there the
tests hold what cannot be taken from it (the token gives no owner rights, the
disk is put back) and state, as assertions, what ``none`` cannot promise, so
that a change to either shows up.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from hub_rtc.localhub import LocalHub
from hub_rtc.singleuser import isolation
from tests.integration.conftest import (
    code_notebook,
    dedicated_session,
    host_session,
    process_environ,
    processes_in,
    saved_notebook,
    start_hub,
    start_server,
    wait_for,
)
from tests.integration.kernels import V1, execute
from tests.integration.yclient import YClient, close_socket

pytestmark = pytest.mark.integration

OWNER, EDITOR, RUNNER, OTHER = "olive", "ed", "ru", "mal"
USERS = (OWNER, EDITOR, RUNNER, OTHER)
NOTEBOOK = "lab1/nb.ipynb"
OTHER_SECRET = "lab2/secret.txt"
CELLS = ("first", "locked", "free")
LOCKED = "# locked\n"
HACKED = "# HACKED from ed's kernel\n"
FREE_FROM_KERNEL = "# free, from ed's kernel\n"
#: an output ed's kernel writes into the file: Lab 1 has a runner, so outputs are all the
#: file may change, and seeing this one in the room shows that the room reloaded the file
RAN = "ran in ed's kernel"
SERVER_CMD = "jupyterhub.singleuser"

SERVER_ARGS = ["--allow-root", "--HubRTCExtension.flush_seconds=0.5",
               "--YDocExtension.file_poll_interval=0.3", "--YDocExtension.document_save_delay=0.2",
               "--YDocExtension.document_cleanup_delay=0.5",
               f"--HubRTCExtension.kernel_account={isolation.KERNEL_ACCOUNT}"]
#: long enough for a room whose clients all left to be gone
ROOM_GONE = 1.5

MODES = (isolation.NONE, isolation.SANDBOX, isolation.ACCOUNT)
#: the account session kernels run as in the account mode (./dev setup makes it, as root;
#: the servers name it in SERVER_ARGS, and the policy says which mode they use)
KERNEL_ACCOUNT = isolation.KERNEL_ACCOUNT
#: the modes this module ran in (tests/integration/conftest.py says so at the end)
MODES_RUN: set[str] = set()
#: root holds CAP_SYS_PTRACE: it reads a non-dumpable process's environ and memory
ROOT = os.geteuid() == 0


# -- the hub, its sessions and its processes -----------------------------------------


class World:
    """One hub in one isolation mode; the helpers are about ``notebook`` on ``account``'s server."""

    def __init__(self, hub: LocalHub, workdir: Path, mode: str) -> None:
        self.hub = hub
        self.workdir = workdir
        self.mode = mode
        self.tokens = {name: hub.user_token(name) for name in USERS}
        self.session_id = ""
        self.account = OWNER
        self.notebook = NOTEBOOK

    def at(self, notebook: str, session_id: str, account: str) -> World:
        """The same hub, about another session's notebook on ``account``'s server."""
        other = copy.copy(self)
        other.notebook, other.session_id, other.account = notebook, session_id, account
        return other

    @property
    def sandboxed(self) -> bool:
        """In a sandbox: as the server's user id, or as an account of its own."""
        return self.mode in (isolation.SANDBOX, isolation.ACCOUNT)

    @property
    def root(self) -> Path:
        """The server's root folder (its home)."""
        return self.workdir / "home" / self.account

    @property
    def runtime_dir(self) -> Path:
        return self.root / ".local" / "share" / "jupyter" / "runtime"

    @property
    def file(self) -> Path:
        return self.root / self.notebook

    def server(self, path: str, method: str = "GET", body: Any = None, user: str = OWNER,
               token: str | None = None) -> tuple[int, Any]:
        return self.hub.api(method, f"/user/{self.account}/{path}", body,
                            token or self.tokens[user])

    def rtc(self, method: str, path: str, body: Any = None, user: str = OWNER,
            token: str | None = None) -> tuple[int, Any]:
        return self.hub.rtc(method, path, body, token or self.tokens[user])

    async def client(self, user: str = OWNER, token: str | None = None) -> YClient:
        return await YClient.connect(self.hub.url, self.account, self.notebook,
                                     token or self.tokens[user])

    def disk_cells(self) -> dict[str, str]:
        return {c["id"]: "".join(c["source"]) for c in saved_notebook(self.file)["cells"]}

    def locked_on_disk(self) -> bool:
        return self.disk_cells().get("locked") == LOCKED

    def stores(self) -> list[str]:
        """The server's update stores (jupyter-collaboration's SQLite files)."""
        return sorted(str(p) for p in self.root.glob("*ystore*.db"))

    def server_pid(self) -> int:
        pids = processes_in(self.root, SERVER_CMD)
        assert len(pids) == 1, f"{self.account}'s server processes: {pids}"
        return pids[0]

    def server_token(self) -> str:
        """The server's own hub token, as the test (root) reads it from the server process:
        this hub's (the one in its folder), not another hub's server of the same user name."""
        raw = Path(f"/proc/{self.server_pid()}/environ").read_bytes().decode(errors="replace")
        env = dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)
        assert "JUPYTERHUB_API_TOKEN" in env, f"no token in {self.account}'s server"
        return env["JUPYTERHUB_API_TOKEN"]

    def service_token(self) -> str:
        """The hub_rtc service's hub token (this hub's service: its config names the workdir)."""
        env = process_environ(lambda cmd, e: "hub_rtc serve" in cmd
                              and str(self.workdir) in e.get("HUB_RTC_CONFIG", ""))
        assert env is not None, "no hub_rtc service process"
        return env["JUPYTERHUB_API_TOKEN"]

    def shared(self, user: str, folder: str) -> bool:
        return self.server(f"api/contents/{folder}", user=user)[0] == 200

    def lock(self) -> None:
        status, reply = self.rtc("PUT", f"/sessions/{self.session_id}/cells",
                                 {"path": "nb.ipynb", "cell_id": "locked", "rule": "locked"})
        assert status in (200, 201), reply

    def reset_notebook(self) -> None:
        """A fresh notebook, written by the owner (whose write is believed), ``locked`` locked."""
        status, reply = self.server(f"api/contents/{self.notebook}", "PUT", {
            "type": "notebook", "format": "json", "content": code_notebook(CELLS, kernelspec=True)})
        assert status in (200, 201), reply
        self.lock()

    def restart_server(self) -> None:
        assert self.hub.api("DELETE", f"/hub/api/users/{self.account}/server")[0] in (202, 204)
        wait_for("the server stopped", lambda: not (
            self.hub.api("GET", f"/hub/api/users/{self.account}")[1].get("servers") or {}), 60)
        start_server(self.hub, self.account)

        def announced() -> bool:
            _, session = self.rtc("GET", f"/sessions/{self.session_id}")
            return bool(session["hosting"]["state"] == "ready")

        wait_for("the server announced itself again", announced, 90)


# -- kernels ---------------------------------------------------------------------------


@dataclass
class Kernel:
    """A real kernel of a session notebook, as one member's JupyterLab drives it."""

    kernel_id: str
    ws: WebSocketClientConnection

    async def run(self, code: str, cell_id: str | None = None, username: str = "test") -> str:
        return await asyncio.wait_for(execute(self.ws, code, cell_id, username), 60)

    async def report(self, body: str, **args: Any) -> Any:
        """Run ``body`` with ``ARGS`` set to ``args``; the JSON it printed last."""
        printed = await self.run(f"ARGS = {args!r}\n{body}")
        try:
            return json.loads(printed.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise AssertionError(f"the kernel printed: {printed}") from None


async def kernel_socket(world: World, user: str, kernel_id: str, protocol: str | None = None,
                        ) -> WebSocketClientConnection:
    """``user``'s websocket to ``kernel_id``, in ``protocol`` (None: the legacy one)."""
    url = (world.hub.url.replace("http", "ws", 1)
           + f"/user/{world.account}/api/kernels/{kernel_id}/channels")
    return await websocket_connect(HTTPRequest(url, headers={
        "Authorization": f"token {world.tokens[user]}"}), subprotocols=[protocol] if protocol else None)


@contextlib.asynccontextmanager
async def kernel(world: World, user: str, notebook: str | None = None, protocol: str | None = None,
                 ) -> AsyncIterator[Kernel]:
    """``user`` starts a kernel for ``notebook`` (the world's by default); shut down after."""
    status, model = world.server("api/sessions", "POST", {
        "path": notebook or world.notebook, "type": "notebook", "name": "",
        "kernel": {"name": "python3"}}, user=user)
    assert status == 201, model
    ws = await kernel_socket(world, user, model["kernel"]["id"], protocol)
    try:
        yield Kernel(model["kernel"]["id"], ws)
    finally:
        close_socket(ws)
        await asyncio.to_thread(world.server, f"api/sessions/{model['id']}", "DELETE")


def connection_key(world: World, kernel_id: str) -> str:
    """A kernel's HMAC key, from its connection file (anyone holding it may drive the kernel)."""
    path = world.runtime_dir / f"kernel-{kernel_id}.json"
    return str(json.loads(path.read_text())["key"])


# What an attacker's code does.  Each prints one line of JSON; ARGS is set before it.

HARVEST = r"""
import glob, json, os
NAMES = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_OAUTH_CLIENT_SECRET",
         "HUB_RTC_SERVICE_TOKEN")

def environ_of(path):
    try:
        raw = open(path, "rb").read().decode(errors="replace")
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)

def secrets(env):
    return sorted({v for k, v in env.items() if k in NAMES and v})

def strings(value):
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    return [value] if isinstance(value, str) and len(value) >= 16 else []

from ipykernel.connect import get_connection_file
from jupyter_core.paths import jupyter_runtime_dir
seen, found = [], []
for folder in {*ARGS["runtime"], jupyter_runtime_dir()}:
    for path in glob.glob(os.path.join(folder, "*.json")):
        try:
            found += strings(json.load(open(path)))
            seen.append(os.path.realpath(path))
        except (OSError, ValueError):
            pass
print(json.dumps({
    "own_names": sorted(k for k in os.environ if k in NAMES),
    "own": secrets(os.environ),
    "parent": secrets(environ_of(f"/proc/{os.getppid()}/environ")),
    "procs": sorted({s for p in glob.glob("/proc/[0-9]*/environ") for s in secrets(environ_of(p))}),
    "runtime": sorted(set(found)), "runtime_files": sorted(set(seen)),
    "own_file": os.path.realpath(get_connection_file()),
}))
"""

TAMPER = r"""
import json, os, sqlite3

def attempt(action):
    try:
        action()
        return "written"
    except Exception as e:
        return f"{type(e).__name__}: {e}"

with open(ARGS["notebook"]) as f:
    nb = json.load(f)
for cell in nb["cells"]:
    cell["source"] = ARGS["sources"].get(cell["id"], cell["source"])
    cell["outputs"] = ARGS.get("outputs", {}).get(cell["id"], cell.get("outputs"))

def write_file():
    with open(ARGS["notebook"], "w") as f:
        json.dump(nb, f)

def write_store(path):
    from jupyter_ydoc import YNotebook
    from pycrdt import Doc
    if not os.path.exists(path):  # sqlite3 would make an empty one
        raise FileNotFoundError(path)
    doc = Doc()
    YNotebook(doc).set(nb)
    with sqlite3.connect(path, timeout=5) as con:
        for (p,) in list(con.execute("SELECT DISTINCT path FROM yupdates")):
            con.execute("DELETE FROM yupdates WHERE path = ?", (p,))
            con.execute("DELETE FROM ycheckpoints WHERE path = ?", (p,))
            con.execute("INSERT INTO yupdates VALUES (?, ?, ?, ?)", (p, doc.get_update(), b"", 0.0))

print(json.dumps({"notebook": attempt(write_file),
                  "stores": {p: attempt(lambda p=p: write_store(p)) for p in ARGS["stores"]}}))
"""

READ = r"""
import json
try:
    print(json.dumps({"read": open(ARGS["path"]).read()}))
except Exception as e:
    print(json.dumps({"error": type(e).__name__}))
"""

TOUCH_SERVER = r"""
import glob, json, os

def attempt(action):
    try:
        return {"ok": action()}
    except Exception as e:
        return {"error": type(e).__name__}

def environ():
    raw = open(f"/proc/{ARGS['pid']}/environ", "rb").read()
    return b"JUPYTERHUB_API_TOKEN=" in raw

def memory():
    with open(f"/proc/{ARGS['pid']}/maps") as maps:
        start = next(int(line.split("-")[0], 16) for line in maps if line.split()[1].startswith("r"))
    with open(f"/proc/{ARGS['pid']}/mem", "rb") as mem:
        mem.seek(start)
        return len(mem.read(16))

def visible():
    found = []
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            if ARGS["needle"].encode() in open(path, "rb").read():
                found.append(path)
        except OSError:
            pass
    return found

print(json.dumps({"signal": attempt(lambda: os.kill(ARGS["pid"], 0)), "environ": attempt(environ),
                  "mem": attempt(memory), "visible": visible()}))
"""

WRITE = r"""
import json, os
try:
    os.makedirs(os.path.dirname(ARGS["path"]), exist_ok=True)
    with open(ARGS["path"], "w") as f:
        f.write(ARGS["text"])
    print(json.dumps({"written": True}))
except Exception as e:
    print(json.dumps({"written": False, "error": type(e).__name__}))
"""


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module", params=MODES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A hub whose policy runs session kernels in ``request.param``, with olive's two sessions."""
    mode = str(request.param)
    if mode == isolation.SANDBOX and (missing := isolation.probe()) is not None:
        pytest.skip(f"no kernel sandbox on this host: {missing}")
    if mode == isolation.ACCOUNT and (missing := isolation.probe_account(KERNEL_ACCOUNT)):
        pytest.skip(f"no kernel account on this host: {missing}")
    MODES_RUN.add(mode)
    workdir = tmp_path_factory.mktemp(f"kernels-{mode}")
    hub = start_hub(workdir, manage_hub_access=True, extra=(
        f"c.Spawner.args = {SERVER_ARGS!r}\nc.RTCPolicy.kernel_isolation = {mode!r}\n"))
    try:
        w = World(hub, workdir, mode)
        start_server(hub, OWNER)
        for folder in ("lab1", "lab2"):
            assert w.server(f"api/contents/{folder}", "PUT", {"type": "directory"})[0] in (200, 201)
        assert w.server(f"api/contents/{OTHER_SECRET}", "PUT", {
            "type": "file", "format": "text", "content": "mal's work"})[0] in (200, 201)
        assert w.server("api/contents/lab2/b.ipynb", "PUT", {
            "type": "notebook", "format": "json", "content": code_notebook(CELLS)})[0] in (200, 201)
        w.session_id = host_session(w.rtc, {"title": "Lab 1", "host": "owner", "root": "lab1",
                                            "members": [{"user": EDITOR, "role": "editor"},
                                                        {"user": RUNNER, "role": "runner"}]})
        host_session(w.rtc, {"title": "Lab 2", "host": "owner", "root": "lab2",
                             "members": [{"user": OTHER, "role": "editor"}]})
        w.reset_notebook()
        for user, path in [(EDITOR, "lab1"), (RUNNER, "lab1"), (OTHER, "lab2")]:
            # until the hub's share is made, the hub refuses: a refusal test would pass for it
            wait_for(f"{user}'s share", functools.partial(w.shared, user, path))
        yield w
    finally:
        hub.stop()


@dataclass
class Loot:
    """What ed's kernel found, and the secrets it must not have found."""

    found: dict[str, Any]
    server_token: str
    service_token: str
    other_key: str  # mal's kernel's, in Lab 2

    def environs(self) -> set[str]:
        return set(self.found["parent"]) | set(self.found["procs"])

    def usable(self) -> list[str]:
        """Hub tokens the kernel could try; the service's is test 1's business (see there)."""
        return sorted((self.environs() | set(self.found["own"])) - {self.service_token})


async def harvest(world: World, attacker: str, other: tuple[str, str]) -> Loot:
    """``attacker``'s run in Lab 1's kernel reads what it can while another member's kernel
    runs: ``other`` is (user, notebook)."""
    async with kernel(world, *other) as other_kernel:
        key = connection_key(world, other_kernel.kernel_id)
        async with kernel(world, attacker) as k:
            found = await k.report(HARVEST, runtime=[str(world.runtime_dir)])
    return Loot(found, world.server_token(), world.service_token(), key)


@pytest.fixture(scope="module", params=[EDITOR, RUNNER])
def loot(world: World, request: pytest.FixtureRequest) -> Loot:
    """Read once per hub and attacker (an editor, and a runner, who may not edit at all):
    every attack below may use it."""
    return asyncio.run(harvest(world, str(request.param), (OTHER, "lab2/b.ipynb")))


@pytest.fixture
def notebook(world: World) -> World:
    """A fresh Lab 1 notebook, ``locked`` locked, no room open at the start."""
    time.sleep(ROOM_GONE)  # the last test's room is cleaned up after its last client left
    world.reset_notebook()
    return world


def none_cannot_promise(world: World) -> bool:
    """What a kernel running as the server's account, as root, still reaches."""
    return world.mode == isolation.NONE and ROOT


# -- 0. where the kernel runs -------------------------------------------------------------


async def test_the_kernel_runs_as_the_mode_says(world: World) -> None:
    """The account's user id and no groups in ``account``; the server's own otherwise; a
    process namespace of its own wherever it is sandboxed."""
    async with kernel(world, EDITOR) as k:
        seen = await k.report("import json, os\nprint(json.dumps([os.getuid(), os.getgroups(), "
                              "os.path.exists('/proc/1/cmdline') and open('/proc/1/cmdline', "
                              "'rb').read().split(b'\\0')[0].decode()]))")
    uid, groups, init = seen
    if world.mode == isolation.ACCOUNT:
        ids = isolation.account_ids(KERNEL_ACCOUNT)
        assert ids is not None and uid == ids[0] and groups == [], seen
    else:
        assert uid == os.geteuid(), seen
    assert (init == "bwrap") == world.sandboxed, seen  # its pid 1 is the sandbox's, not the host's


# -- 1. the server's credentials -----------------------------------------------------------


def test_the_kernels_own_environment_holds_no_server_credential(world: World, loot: Loot) -> None:
    assert loot.found["own_names"] == [], loot.found["own_names"]
    assert loot.server_token not in loot.found["own"]


def test_no_process_environment_gives_the_server_or_service_token(world: World, loot: Loot) -> None:
    """Every ``/proc/*/environ`` the kernel can read, its parent's among them.

    In ``none`` mode, as root, they are all readable: what ``none`` cannot promise
    (then the token must give nothing: the tests below).
    """
    expected = none_cannot_promise(world)
    assert (loot.server_token in loot.environs()) == expected, (world.mode, loot.found["procs"])
    assert (loot.service_token in loot.environs()) == expected, world.mode
    if world.sandboxed:
        assert loot.found["parent"] == [] and loot.found["procs"] == []


def test_the_runtime_files_give_no_credential(world: World, loot: Loot) -> None:
    """jpserver-*.json and other kernels' connection files (mal's key drives mal's kernel)."""
    assert (loot.other_key in loot.found["runtime"]) == (world.mode == isolation.NONE), world.mode
    if world.sandboxed:  # its own connection file is all it sees of the runtime folder
        assert set(loot.found["runtime_files"]) <= {loot.found["own_file"]}, loot.found


# -- 2. whatever token it found, against the room, the contents API and the service -------


def tokens_to_try(loot: Loot) -> list[str]:
    """What the kernel found, and the server's own token in any case: the server's token
    is nobody's browser however it leaked (that it cannot leak is test 1's claim)."""
    return sorted(set(loot.usable()) | {loot.server_token})


async def test_a_found_token_cannot_change_a_locked_cell_in_the_room(notebook: World,
                                                                     loot: Loot) -> None:
    world = notebook
    owner = await world.client(OWNER)
    try:
        for token in tokens_to_try(loot):
            try:
                thief = await world.client(token=token)
            except HTTPClientError as e:
                assert e.code in (401, 403), e
                continue
            try:
                thief.type_into("locked", "STOLEN ")
                thief.type_into("free", "STOLEN ")
                await asyncio.sleep(1.5)
            finally:
                thief.close()
            assert owner.source("locked") == LOCKED, "the server's token edited a locked cell"
            assert owner.source("free") == "# free\n", "the server's token edits as the owner"
        await asyncio.sleep(0.5)
        assert "STOLEN" not in json.dumps(world.disk_cells())
    finally:
        owner.close()


def test_a_found_token_cannot_write_the_notebook_through_the_contents_api(notebook: World,
                                                                          loot: Loot) -> None:
    world = notebook
    hacked = code_notebook({"first": "# first\n", "locked": HACKED, "free": "# free\n"})
    for token in tokens_to_try(loot):
        status, reply = world.server(f"api/contents/{NOTEBOOK}", "PUT", {
            "type": "notebook", "format": "json", "content": hacked}, token=token)
        assert status in (401, 403), (status, reply)
        status, reply = world.server(f"api/contents/{OTHER_SECRET}", token=token)
        assert status in (401, 403), ("read another session's file", status, reply)
    assert world.locked_on_disk()


def test_a_found_token_gets_no_owner_rights_from_the_service(notebook: World, loot: Loot) -> None:
    """What the owner could do (read the activity, lift the rule, promote ed) is refused;
    what the server itself does (presence) is narrowed to its own server and sessions."""
    world = notebook
    sid = world.session_id
    for token in tokens_to_try(loot):
        attempts = {
            "read activity": world.rtc("GET", f"/sessions/{sid}/activity", token=token),
            "lift the rule": world.rtc(
                "DELETE", f"/sessions/{sid}/cells?path=nb.ipynb&cell_id=locked", token=token),
            "promote ed": world.rtc("PUT", f"/sessions/{sid}/members/user/{EDITOR}",
                                    {"role": "manager"}, token=token),
            "presence for another server": world.rtc("POST", "/servers/presence", {
                "server_name": "", "server_user": OTHER, "sessions": {}}, token=token),
            "presence for a session elsewhere": world.rtc("POST", "/servers/presence", {
                "server_name": "", "sessions": {"no-such-session": {EDITOR: 1}}}, token=token),
        }
        allowed = {what: reply for what, (status, reply) in attempts.items() if status not in (401, 403)}
        assert allowed == {}, allowed
    _, members = world.rtc("GET", f"/sessions/{sid}/members")
    assert {m["name"]: m["role"] for m in members["members"]}.get(EDITOR) == "editor", members
    _, rules = world.rtc("GET", f"/sessions/{sid}/cells")
    assert [r["cell_id"] for r in rules["cells"]] == ["locked"], rules


async def test_a_found_token_cannot_forge_what_the_file_is_held_to(notebook: World,
                                                                    loot: Loot) -> None:
    """The server's own use of its token includes recording a locked cell's baseline, which
    the file is held to when the room loads it.  With the token, a kernel forges one and
    then writes the file to match.

    In ``none`` mode as root the kernel reads the token, and this exact use cannot tell it
    from the server: what ``none`` cannot promise.  Elsewhere it found no token to forge with.
    """
    world = notebook
    if not none_cannot_promise(world):
        assert loot.usable() == [], loot.usable()
        return
    forged: dict[str, Any] = {"id": "locked", "cell_type": "code", "source": HACKED,
                              "metadata": {}, "outputs": [], "execution_count": None}
    status, reply = world.rtc("PUT", "/servers/baselines", {
        "server_name": "", "path": NOTEBOOK, "cells": {"locked": {"cell": forged, "after": "first"}}},
        token=loot.server_token)
    assert status == 200 and reply["recorded"] == ["locked"], (status, reply)
    async with kernel(world, EDITOR) as ed:
        report = await ed.report(TAMPER, notebook=str(world.file), stores=[],
                                 sources={"locked": HACKED})
    assert report["notebook"] == "written", report
    owner = await world.client(OWNER)  # the room loads the file, which matches the forgery
    try:
        assert owner.source("locked") == HACKED, owner.state()
    finally:
        owner.close()


# -- 3. the file and the update store --------------------------------------------------


def tamper_args(world: World) -> dict[str, Any]:
    stores = world.stores()
    assert stores, f"no update store in {world.root}"
    return {"notebook": str(world.file), "stores": stores,
            "sources": {"locked": HACKED, "free": FREE_FROM_KERNEL},
            "outputs": {"free": [{"output_type": "stream", "name": "stdout", "text": [RAN]}]}}


def outputs(client: YClient, cell_id: str) -> str:
    return json.dumps(client.cell(cell_id).get("outputs").to_py())  # type: ignore[union-attr]


def assert_writes_refused_in_a_sandbox(world: World, report: dict[str, Any]) -> None:
    """Inside a sandbox the session's notebooks and the update store are read-only or out of
    view (the undo is checked first, in every mode: the disk stays an untrusted principal)."""
    if world.sandboxed:
        assert report["notebook"] != "written", report
        assert "written" not in report["stores"].values(), report


async def saved_by_the_room(world: World, client: YClient, cell: str, text: str) -> None:
    client.type_into(cell, text)
    await asyncio.to_thread(wait_for, "the room saved", lambda: world.disk_cells()[cell].startswith(text))


async def test_a_kernels_write_to_the_file_and_store_is_put_back_by_the_open_room(
        notebook: World) -> None:
    """The room saved once while the kernel runs (the file the kernel sees is the one the
    server writes), then the kernel writes the notebook and the store: the room reloads,
    the locked cell stays."""
    world = notebook
    owner = await world.client(OWNER)
    try:
        async with kernel(world, EDITOR) as ed:
            await saved_by_the_room(world, owner, "free", "saved ")
            report = await ed.report(TAMPER, **tamper_args(world))
        if report["notebook"] == "written":  # the room reloaded: the output shows it
            await owner.until(lambda: RAN in outputs(owner, "free"))
        await asyncio.sleep(0.5)
        assert owner.source("locked") == LOCKED, report
        assert owner.source("free") == "saved # free\n", report  # a runner's: sources are kept
        await asyncio.to_thread(wait_for, "the file saved back", world.locked_on_disk, 10)
    finally:
        owner.close()
    assert_writes_refused_in_a_sandbox(world, report)


async def test_a_kernels_write_to_the_file_and_store_is_put_back_after_a_restart(
        notebook: World) -> None:
    world = notebook
    owner = await world.client(OWNER)
    await saved_by_the_room(world, owner, "free", "before restart ")
    owner.close()
    await asyncio.sleep(ROOM_GONE)
    async with kernel(world, EDITOR) as ed:
        report = await ed.report(TAMPER, **tamper_args(world))
    await asyncio.to_thread(world.restart_server)
    late = await world.client(EDITOR)
    try:
        assert late.source("locked") == LOCKED, (report, late.state())
        assert late.source("free") == "before restart # free\n", report  # a runner's file
        assert b"HACKED" not in late.doc.get_update()
    finally:
        late.close()
    await asyncio.to_thread(wait_for, "the file saved back", world.locked_on_disk, 10)
    assert_writes_refused_in_a_sandbox(world, report)


# -- 4. another session's folder on the owner's server ------------------------------------


async def test_another_sessions_folder_is_out_of_reach(world: World) -> None:
    async with kernel(world, EDITOR) as ed:
        seen = await ed.report(READ, path=str(world.root / OTHER_SECRET))
    if world.sandboxed:
        assert seen.get("error") in ("FileNotFoundError", "PermissionError"), seen
    else:
        # what "none" cannot promise: the kernel is the server's account
        assert seen == {"read": "mal's work"}, seen


# -- 5. the server process ---------------------------------------------------------------


async def test_the_server_process_cannot_be_signalled_or_read(world: World) -> None:
    pid = world.server_pid()
    async with kernel(world, EDITOR) as ed:
        seen = await ed.report(TOUCH_SERVER, pid=pid, needle=SERVER_CMD)
    if world.sandboxed:  # another process namespace: the server is not even there
        assert seen["visible"] == [], seen
        assert seen["signal"] == {"error": "ProcessLookupError"}, seen
        assert seen["environ"].get("ok") is None and seen["mem"].get("ok") is None, seen
    else:
        # what "none" cannot promise: the same account signals it; as root, reads it too
        assert seen["signal"] == {"ok": None} and seen["visible"], seen
        assert (seen["environ"].get("ok") is True) == ROOT, seen
        assert (seen["mem"].get("ok") == 16) == ROOT, seen


# -- a dedicated session server ---------------------------------------------------------


@pytest.fixture(scope="module")
def group(world: World) -> Iterator[tuple[World, Loot]]:
    """"Group" on its own server (its root is the session folder); what ed's kernel found
    there while the owner's kernel ran (its key drives a kernel ed did not start)."""
    session = dedicated_session(world.rtc, {"title": "Group",
                                            "members": [{"user": EDITOR, "role": "editor"}]})
    g = world.at("nb.ipynb", session["id"], session["server"]["user"])
    try:
        g.reset_notebook()
        yield g, asyncio.run(harvest(g, EDITOR, (OWNER, "other.ipynb")))
    finally:
        world.rtc("DELETE", f"/sessions/{session['id']}")


def test_on_a_dedicated_server_the_kernel_finds_no_credential(
        group: tuple[World, Loot]) -> None:
    """The session folder is the server's root: its runtime files and its configuration
    are in the folder the kernel works in."""
    world, loot = group
    assert loot.found["own_names"] == [], loot.found
    assert (loot.server_token in loot.environs()) == none_cannot_promise(world), world.mode
    assert (loot.other_key in loot.found["runtime"]) == (world.mode == isolation.NONE), world.mode
    if world.sandboxed:
        assert set(loot.found["runtime_files"]) <= {loot.found["own_file"]}, loot.found


#: files of a dedicated server's home (its root, so the session folder) that run code
#: with the server's authority: the configuration at the server's next start; a kernelspec
#: at the next kernel's (it may name jupyter_client's own provisioner, not hub_rtc's); a
#: shell's start-up file in every terminal of the server (where policy lets anyone open one)
PLANTS = {"server configuration": ".jupyter/jupyter_server_config.py",
          "kernelspec": ".local/share/jupyter/kernels/python3/kernel.json",
          "shell start-up": ".bashrc"}
PLANTED_KERNELSPEC = {"argv": ["python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                      "display_name": "Python 3", "language": "python",
                      "metadata": {"kernel_provisioner": {"provisioner_name": "local-provisioner"}}}


@pytest.mark.parametrize("what", list(PLANTS))
async def test_on_a_dedicated_server_the_kernel_cannot_plant_what_the_server_runs(
        group: tuple[World, Loot], what: str) -> None:
    world, _ = group
    planted = world.root / PLANTS[what]
    text = json.dumps(PLANTED_KERNELSPEC) if what == "kernelspec" else "# planted by a kernel\n"
    try:
        async with kernel(world, EDITOR) as ed:
            seen = await ed.report(WRITE, path=str(planted), text=text)
        # "none": the kernel is the server's account, and may write its own configuration
        assert seen["written"] == (world.mode == isolation.NONE), (what, seen)
    finally:
        if planted.exists() and planted.read_text() == text:
            planted.unlink()


async def test_on_a_dedicated_server_a_package_in_the_session_folder_does_not_run_in_the_server(
        group: tuple[World, Loot]) -> None:
    """The session folder is the server's working directory, where the kernel may write
    data files.  ``python -m`` (how this hub starts servers) puts that directory first on
    ``sys.path``: a ``jupyterhub/`` folder there would be what the server imports at its
    next start.  The server's own command line, run again there, shows what it imports:
    a property of how the server starts, so held in every mode."""
    world, _ = group
    marker = world.workdir / f"planted-{world.mode}.txt"
    package = world.root / "jupyterhub"
    try:
        async with kernel(world, EDITOR) as ed:
            seen = await ed.report(WRITE, path=str(package / "__init__.py"),
                                   text=f"open({str(marker)!r}, 'w').write('ran in the server')\n")
        assert seen["written"], seen  # a data file of the session: the kernel may write it
        command = Path(f"/proc/{world.server_pid()}/cmdline").read_bytes().split(b"\0")[:-1]
        await asyncio.to_thread(subprocess.run, [*command, b"--version"], cwd=world.root,
                                capture_output=True, timeout=60, check=False)
        assert not marker.exists(), f"the server's command ran {package}/__init__.py"
    finally:
        shutil.rmtree(package, ignore_errors=True)
        marker.unlink(missing_ok=True)


# -- 6. after all this ----------------------------------------------------------------


def both_edits_in(client: YClient) -> bool:
    return client.source("locked") == "owner's " + LOCKED and client.source("free") == "ed's # free\n"


async def test_the_owner_and_the_editor_still_edit_and_a_runners_output_appears(
        notebook: World) -> None:
    world = notebook
    owner, editor = await world.client(OWNER), await world.client(EDITOR)
    try:
        owner.type_into("locked", "owner's ")
        editor.type_into("free", "ed's ")
        for client in (owner, editor):
            await client.until(functools.partial(both_edits_in, client))
        await asyncio.to_thread(wait_for, "both saved", lambda: world.disk_cells() == {
            "first": "# first\n", "locked": "owner's " + LOCKED, "free": "ed's # free\n"})
    finally:
        owner.close()
        editor.close()
    async with kernel(world, RUNNER) as ru:
        assert (await ru.run("print(1+1)")).strip() == "2"


async def test_a_runaway_cell_is_interrupted_and_the_kernel_lives_on(world: World) -> None:
    """An interrupt reaches the kernel, not only what runs it (in a sandbox, bubblewrap
    stopped by the signal took the kernel with it)."""
    async with kernel(world, EDITOR) as k:
        await k.run("state = 41")
        running = asyncio.ensure_future(k.run("import time\nwhile True: time.sleep(0.05)"))
        await asyncio.sleep(1.5)
        assert not running.done()
        status, _ = await asyncio.to_thread(world.server, f"api/kernels/{k.kernel_id}/interrupt",
                                            "POST", {}, EDITOR)
        assert status == 204
        assert "KeyboardInterrupt" in await asyncio.wait_for(running, 30)
        assert (await k.run("print(state + 1)")).strip() == "42"  # the same kernel, still there


# -- who ran what ---------------------------------------------------------------------------


def runs(world: World) -> dict[tuple[str, str | None], int]:
    """Runs counted for the session so far: (user, cell) -> count."""
    status, reply = world.rtc("GET", f"/sessions/{world.session_id}/activity?kind=execute")
    assert status == 200, reply
    out: dict[tuple[str, str | None], int] = {}
    for event in reply["events"]:
        key = (event["user"], event.get("cell_id"))
        out[key] = out.get(key, 0) + event["count"]
    return out


@pytest.mark.parametrize("protocol", [None, V1], ids=["legacy", "v1"])
async def test_each_run_is_counted_for_whoever_sent_it(notebook: World, protocol: str | None,
                                                       ) -> None:
    """ed's runs, and olive's on the same kernel, each on their own socket, by cell: whatever
    the message itself claims (ed's say they are olive's)."""
    before = runs(notebook)
    async with kernel(notebook, EDITOR, protocol=protocol) as k:
        assert k.ws.selected_subprotocol == protocol
        assert (await k.run("print(6 * 7)", "free", username=OWNER)).strip() == "42"
        await k.run("x = 1", "free", username=OWNER)
        await k.run("y = 2", "locked")  # running a locked cell's code is running, not editing
        owner = await kernel_socket(notebook, OWNER, k.kernel_id, protocol)
        try:
            await asyncio.wait_for(execute(owner, "z = 3", "other"), 60)
        finally:
            close_socket(owner)
    expected = {(EDITOR, "free"): 2, (EDITOR, "locked"): 1, (OWNER, "other"): 1}

    def counted() -> dict[tuple[str, str | None], int] | None:
        now = runs(notebook)
        delta = {k: v - before.get(k, 0) for k, v in now.items() if v != before.get(k, 0)}
        return delta if delta == expected else None

    await asyncio.to_thread(wait_for, "the runs counted", counted, 30)
