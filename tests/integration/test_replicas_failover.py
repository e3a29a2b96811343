"""Two external service replicas behind a balancer, one killed (issue 15, items 1 and 4).

The topology of a Kubernetes deployment, on one machine: the hub knows one external
service ``rtc`` (a URL and a token, as zero-to-jupyterhub's ``hub.services.rtc``
makes), whose URL is a TCP balancer (``tests.tcpcut.Balancer``, a Service's part) in
front of two ``hub-rtc serve`` processes started here with one settings file
(``c.RTCService.config_file``) on one PostgreSQL database.  The proxy, the shared
server's events channel and relayed clients all reach the service through the
balancer.  Then a replica is SIGKILLed, each in turn: the events channel and the
relayed clients reconnect to the other, a member removed afterwards loses the room
within a second, and no relayed edit is lost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pycrdt import Doc
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from hub_rtc.localhub import LocalHub, free_port
from tests.conftest import _postgres_url
from tests.integration.conftest import answers, call_json, code_notebook, host_session, start_server, wait_for
from tests.integration.test_replicas_service import listening_replicas
from tests.integration.yclient import YClient, create_sync_message
from tests.tcpcut import Balancer

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

OWNER, EDITOR, GONE = "pia", "eve", "gus"
NOTEBOOK = "lab/nb.ipynb"


@dataclass
class Deployment:
    hub: LocalHub
    db_url: str
    balancer: Balancer
    session_id: str
    tokens: dict[str, str]
    start: Any  # (index) -> a running replica
    replicas: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def api(self) -> str:
        return self.hub.url + "/services/rtc/api/v1"

    async def call(self, method: str, path: str, body: Any = None, user: str = OWNER
                   ) -> tuple[int, Any]:
        return await call_json(self.api + path, self.tokens[user], method, body)

    async def direct(self, user: str) -> YClient:
        while True:  # the share follows the grant; the hub may take a moment
            try:
                return await YClient.connect(self.hub.url, OWNER, NOTEBOOK, self.tokens[user])
            except Exception:  # noqa: BLE001 - 403/404 until the share is there
                await asyncio.sleep(0.3)

    async def relayed(self, user: str, doc: Doc | None = None) -> YClient:
        """A client of the notebook through the service's relay, synced; with ``doc``, the
        replica of a client whose connection dropped, as y-websocket reconnects one."""
        url = (self.api.replace("http", "ws", 1)
               + f"/sessions/{self.session_id}/rooms/{quote('nb.ipynb')}")
        ws = await websocket_connect(HTTPRequest(
            url, headers={"Authorization": f"token {self.tokens[user]}"}))
        client = YClient(ws)
        if doc is not None:
            client.doc.apply_update(doc.get_update())  # sent on as an update: what it missed
        await client.ws.write_message(create_sync_message(client.doc), binary=True)
        await asyncio.wait_for(client.synced.wait(), 15)
        return client


def settings_file(workdir: Path, db_url: str, hub: LocalHub) -> Path:
    path = workdir / "hub_rtc_config.py"
    path.write_text("c = get_config()  # noqa\n"
                    f"c.RTCService.db_url = {db_url!r}\n"
                    "c.RTCService.manage_hub_access = True\n"
                    "c.RTCService.push_ack_seconds = 1.5\n"
                    f"c.RTCService.upstream_url = {hub.url!r}\n")
    return path


def replica_env(hub_port: int, token: str) -> dict[str, str]:
    """What a replica's container is given (the how-to's Deployment)."""
    return {**os.environ, "JUPYTERHUB_API_TOKEN": token,
            "JUPYTERHUB_API_URL": f"http://127.0.0.1:{hub_port}/hub/api",
            "JUPYTERHUB_SERVICE_NAME": "rtc", "JUPYTERHUB_SERVICE_PREFIX": "/services/rtc/",
            "JUPYTERHUB_BASE_URL": "/", "JUPYTERHUB_CLIENT_ID": "service-rtc",
            "HUB_RTC_COOKIE_SECRET": "5e" * 32}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    urls = _postgres_url()
    db_url = next(urls)
    workdir = tmp_path_factory.mktemp("failover")
    ports = [free_port(), free_port()]
    balancer = Balancer([("127.0.0.1", port) for port in ports])
    balancer.start()
    token, hub_port = os.urandom(24).hex(), free_port()
    env = replica_env(hub_port, token)
    hub = LocalHub(workdir, manage_hub_access=True, db_url=db_url, extra_config=(
        f"c.JupyterHub.hub_port = {hub_port}\n"
        f'c.RTCService.bind_url = "http://127.0.0.1:{balancer.port}"\n'
        f'c.JupyterHub.services.append({{"name": "rtc", "url": "http://127.0.0.1:{balancer.port}",'
        f' "api_token": {token!r}}})\n'))
    settings = settings_file(workdir, db_url, hub)
    running: list[subprocess.Popen[bytes]] = [None, None]  # type: ignore[list-item]

    def start(index: int) -> subprocess.Popen[bytes]:
        with open(workdir / f"replica-{index}.log", "ab") as log:
            running[index] = subprocess.Popen(
                [sys.executable, "-m", "hub_rtc", "serve", f"--RTCService.config_file={settings}",
                 f"--RTCService.bind_url=http://127.0.0.1:{ports[index]}"],
                cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(f"replica {index}", lambda: answers(
            f"http://127.0.0.1:{ports[index]}/services/rtc/api/v1/"), 30)
        return running[index]

    try:
        start(0)
        start(1)
        hub.start()
        tokens = {name: hub.user_token(name) for name in (OWNER, EDITOR, GONE)}
        start_server(hub, OWNER)
        assert hub.api("PUT", f"/user/{OWNER}/api/contents/lab", {"type": "directory"},
                       tokens[OWNER])[0] in (200, 201)
        assert hub.api("PUT", f"/user/{OWNER}/api/contents/{NOTEBOOK}",
                       {"type": "notebook", "format": "json",
                        "content": code_notebook(["free", "target"])}, tokens[OWNER])[0] in (200, 201)
        session_id = host_session(lambda m, p, body: hub.rtc(m, p, body, tokens[OWNER]), {
            "title": "Failover", "host": "owner", "root": "lab",
            "members": [{"user": EDITOR, "role": "editor"}]})
        wait_for("both replicas listening", lambda: listening_replicas(db_url) == 2, 30)
        yield Deployment(hub, db_url, balancer, session_id, tokens, start, running)
    finally:
        for process in running:
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)
        hub.stop()
        next(urls, None)


async def in_force_again(d: Deployment) -> None:
    """Until a change is confirmed by the server: its events channel is connected again."""
    member = f"/sessions/{d.session_id}/members/user/{EDITOR}"
    for _ in range(60):
        status, body = await d.call("PUT", member, {"role": "editor"})
        if status == 200 and body["enforced"]:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("no change was confirmed in force after the replica died")


async def removed_within_a_second(d: Deployment, member: str, rounds: int) -> None:
    for _ in range(rounds):
        status, body = await d.call("PUT", member, {"role": "editor"})
        assert status == 201, body
        gone = await d.direct(GONE)
        try:
            status, body = await d.call("DELETE", member)
            assert status == 204, body
            code, _ = await asyncio.wait_for(gone.closed, 1.0)
            assert code == 4403
        finally:
            gone.close()


async def test_a_killed_replica_loses_no_push_and_no_relayed_edit(deployment: Deployment) -> None:
    d = deployment
    member = f"/sessions/{d.session_id}/members/user/{GONE}"
    watcher = await d.direct(OWNER)
    try:
        for victim in (0, 1):  # one of them holds the events channel, and so on
            editor = await d.relayed(EDITOR)
            editor.type_into("free", f"before-{victim} ")
            await watcher.until(lambda v=victim: f"before-{v} " in watcher.source("free"))
            d.replicas[victim].send_signal(signal.SIGKILL)
            d.replicas[victim].wait(10)
            editor.type_into("free", f"during-{victim} ")  # sent into a dying connection, or kept
            await in_force_again(d)
            editor.close()
            again = await d.relayed(EDITOR, editor.doc)  # reconnects through the survivor
            await watcher.until(lambda v=victim: f"during-{v} " in watcher.source("free"))
            again.close()
            await removed_within_a_second(d, member, rounds=1)  # the survivor alone
            d.start(victim)  # back, as Kubernetes restarts it
            await asyncio.to_thread(wait_for, "both listening again",
                                    lambda: listening_replicas(d.db_url) == 2, 30)
            # each call is a new connection, so the balancer takes turns: about half
            # of these go through the replica that does not hold the events channel
            await removed_within_a_second(d, member, rounds=4)
        text = watcher.source("free")
        assert all(f"{word}-{v} " in text for word in ("before", "during") for v in (0, 1)), text
        assert all(text.count(f"{word}-{v} ") == 1 for word in ("before", "during") for v in (0, 1))
    finally:
        watcher.close()
    assert all(n > 0 for n in d.balancer.given.values()) and len(d.balancer.given) == 2
