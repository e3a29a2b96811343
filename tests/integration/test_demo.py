"""`hub-rtc demo` as a newcomer runs it: it answers at the printed URL, its
session is really hosted (a collaboration account's server with the hub_rtc
extension, shared with the members), and Ctrl-C stops the hub, the proxy and
everything else it started."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from hub_rtc.demo import LOCKED_CELL, NOTEBOOK, ROOT
from hub_rtc.localhub import LocalHub, free_port
from hub_rtc.singleuser.isolation import KERNEL_ACCOUNT, probe, probe_account
from tests.integration.yclient import YClient, refused_status

pytestmark = pytest.mark.integration


def processes_below(folder: Path) -> list[int]:
    """Pids of processes working in ``folder`` or below (the hub's, and the servers' in their homes)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            continue
        if cwd == folder or folder in cwd.parents:
            found.append(int(pid))
    return found


def ops_token(workdir: Path) -> str:
    """The demo hub's admin service token, from the config it wrote."""
    config = (workdir / "jupyterhub_config.py").read_text()
    found = re.search(r'"name": "ops", "api_token": \'(\w+)\'', config)
    assert found, "no ops service token in the demo's jupyterhub_config.py"
    return found.group(1)


def check_the_session(workdir: Path, port: int, session_id: str, banner: str) -> None:
    hub = LocalHub(workdir, port=port, ops_token=ops_token(workdir))  # a client of the running hub
    status, session = hub.rtc("GET", f"/sessions/{session_id}")
    assert status == 200, session
    server = f"rtc-{session_id}"
    assert session["host"] == "account" and session["server"]["user"] == server
    assert session["hosting"]["state"] == "ready", session["hosting"]
    assert f"{hub.url}{session['url']}/{NOTEBOOK}" in banner
    assert (workdir / "home" / server / ROOT / NOTEBOOK).is_file()  # homes stay in the workdir

    # cai: team bees, editor; the demo made cai, not eve
    member, stranger = hub.user_token("cai", create=False), hub.user_token("eve")
    notebook = f"/user/{server}/api/contents/{ROOT}/{NOTEBOOK}"
    status, model = hub.api("GET", notebook, token=member)
    assert status == 200, model
    assert [c["id"] for c in model["content"]["cells"]][0] == LOCKED_CELL
    assert hub.api("GET", notebook, token=stranger)[0] == 403
    # the locked cell keeps members to the collaborative editor: no wholesale writes
    assert hub.api("PUT", notebook, {"type": "notebook", "format": "json",
                                     "content": model["content"]}, member)[0] == 403

    async def rooms() -> None:
        client = await YClient.connect(hub.url, server, f"{ROOT}/{NOTEBOOK}", member)
        try:
            before = client.source(LOCKED_CELL)
            assert before.startswith("# Lab 1")
            client.type_into(LOCKED_CELL, "cai was here ")
            await client.until(lambda: client.source(LOCKED_CELL) == before)  # reverted
        finally:
            client.close()
        assert await refused_status(hub.url, server, f"{ROOT}/{NOTEBOOK}", stranger) == 403

    asyncio.run(rooms())
    refusals_by_design_are_not_warnings(hub, server)


#: what a collaborator's JupyterLab asks the session server for all day, refused on
#: purpose: a viewer runs no code; workspaces, terminals, the event stream and the
#: server's root folder are nobody's but the server owner's
BY_DESIGN = [("dev", "GET", "api/kernels", None), ("dev", "GET", "api/kernelspecs", None),
             ("dev", "GET", "api/sessions", None), ("cai", "GET", "api/terminals", None),
             ("cai", "GET", "lab/api/workspaces", None), ("cai", "GET", "api/contents", None),
             ("cai", "PUT", "lab/api/workspaces/default", {"data": {}, "metadata": {"id": "default"}})]


def refusals_by_design_are_not_warnings(hub: LocalHub, server: str) -> None:
    """Issue 12: the demo's log has no WARNING for what the demo's people do on purpose."""
    log = hub.workdir / "hub.log"
    since = log.stat().st_size
    tokens = {name: hub.user_token(name, create=False) for name in ("cai", "dev")}
    for user, method, path, body in BY_DESIGN:
        status, _ = hub.api(method, f"/user/{server}/{path}", body, tokens[user])
        assert status == 403, (user, method, path, status)
    asyncio.run(events_refused(hub, server, tokens["dev"]))
    time.sleep(1)  # the server's log lines reach the file
    window = log.read_bytes()[since:].decode(errors="replace").splitlines()
    refused = [line for line in window if "hub_rtc: refused" in line]
    assert len(refused) == len(BY_DESIGN) + 1, "\n".join(window)  # each refused by the rules, at INFO
    assert [line for line in window if line.startswith("[W ")] == []


async def events_refused(hub: LocalHub, server: str, token: str) -> None:
    """JupyterLab's event stream socket, which it opens again and again when refused."""
    url = hub.url.replace("http", "ws", 1) + f"/user/{server}/api/events/subscribe"
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    assert refused.value.code == 403


def test_demo_runs_hosts_its_session_and_stops_cleanly(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "hub_rtc", "demo", "--port", str(port), "--workdir", str(workdir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        banner = "".join(lines)
        url = re.search(r"Log in at\s+(\S+)", banner)
        assert url, banner
        assert "students" in banner and "session" in banner
        # how session kernels run here is said, and matches what the host can do
        expected = ("account" if probe_account(KERNEL_ACCOUNT) is None
                    else "none" if probe() else "sandbox")
        assert re.search(rf"kernels\s+{expected}: ", banner), banner
        # progress of the hosting, as the service reports it, up to ready
        states = re.findall(r"hosting: (\w+)", banner)
        assert states[0] == "starting" and states[-1] == "ready", banner
        session_id = re.search(r"\(id (\w+)\)", banner)
        assert session_id, banner
        with urllib.request.urlopen(url.group(1)) as page:
            assert page.status == 200 and b"Sign in" in page.read()
        check_the_session(workdir, port, session_id.group(1), banner)
        assert processes_below(workdir)
    finally:
        demo.send_signal(signal.SIGINT)
        rest = demo.communicate(timeout=30)[0]  # drains and closes the pipe
    assert "Stopping the hub" in rest
    deadline = time.monotonic() + 10
    while processes_below(workdir) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in processes_below(workdir)}
    assert left == {}, "the demo left processes running"
    assert demo.returncode == 0
    # its own set-up on purpose: users the hub made already, polls before the hub is up
    log = (workdir / "hub.log").read_text(errors="replace")
    assert "already exists" not in log and "404 GET /hub/api/" not in log


def test_the_demo_notebook_is_valid_and_has_its_locked_cell() -> None:
    from hub_rtc.demo import notebook

    nb = notebook()
    ids = [c["id"] for c in nb["cells"]]
    assert LOCKED_CELL in ids and len(set(ids)) == len(ids)
    assert json.loads(json.dumps(nb)) == nb
