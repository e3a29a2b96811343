"""Two service replicas on one PostgreSQL database behind a real hub (issue 15, item 1).

Replica A is the service the hub manages (its URL is where the shared servers' events
channels go, through $HUB_RTC_API_URL).  Replica B is a second ``hub-rtc serve`` started
here with A's environment (the same service token, database and settings) and its own
port: what a Kubernetes Deployment with two replicas is, minus the balancer, which only
picks A or B for each connection.  Changes of rights are made through B, so the only way
they reach the owner's server is across the replicas.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from hub_rtc.adapters.replicas import NAME_PREFIX
from hub_rtc.localhub import LocalHub, free_port
from tests.conftest import _postgres_url
from tests.integration.conftest import (
    answers,
    call_json,
    code_notebook,
    host_session,
    process_environ,
    start_hub,
    start_server,
    wait_for,
)
from tests.integration.yclient import YClient

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

OWNER, EDITOR, GONE = "pia", "eve", "gus"
NOTEBOOK = "lab/nb.ipynb"


@dataclass
class Pair:
    hub: LocalHub
    db_url: str
    b_url: str  # replica B's API
    b: subprocess.Popen[bytes]
    session_id: str
    tokens: dict[str, str]

    async def call(self, method: str, path: str, body: Any = None, user: str = OWNER,
                   base: str | None = None) -> tuple[int, Any]:
        return await call_json((base or self.b_url) + path, self.tokens[user], method, body)

    async def client(self, user: str) -> YClient:
        while True:  # the share follows the grant; the hub may take a moment
            try:
                return await YClient.connect(self.hub.url, OWNER, NOTEBOOK, self.tokens[user])
            except Exception:  # noqa: BLE001 - 403/404 until the share is there
                await asyncio.sleep(0.3)


def listening_replicas(db_url: str) -> int:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND left(application_name, :n) = :p"), {"n": len(NAME_PREFIX), "p": NAME_PREFIX}
            ).scalar_one())
    finally:
        engine.dispose()


def start_replica(workdir: Path, db_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """Replica B: A's own environment, another port."""
    env = wait_for("the managed service (replica A)", lambda: process_environ(
        lambda cmd, env: "hub_rtc serve" in cmd and db_url in env.get("HUB_RTC_CONFIG", "")))
    port = free_port()
    with open(workdir / "replica-b.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub_rtc", "serve", f"--RTCService.bind_url=http://127.0.0.1:{port}"],
            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/services/rtc/api/v1"
    wait_for("replica B", lambda: process.poll() is None and answers(url + "/"), 30)
    return process, url


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    urls = _postgres_url()
    db_url = next(urls)
    workdir = tmp_path_factory.mktemp("replicas")
    hub = start_hub(workdir, "c.RTCService.push_ack_seconds = 1.5\n", db_url=db_url,
                    manage_hub_access=True)
    b: subprocess.Popen[bytes] | None = None
    try:
        tokens = {name: hub.user_token(name) for name in (OWNER, EDITOR, GONE)}
        start_server(hub, OWNER)
        assert hub.api("PUT", f"/user/{OWNER}/api/contents/lab", {"type": "directory"},
                       tokens[OWNER])[0] in (200, 201)
        assert hub.api("PUT", f"/user/{OWNER}/api/contents/{NOTEBOOK}",
                       {"type": "notebook", "format": "json",
                        "content": code_notebook(["free", "target"])}, tokens[OWNER])[0] in (200, 201)
        session_id = host_session(lambda m, p, body: hub.rtc(m, p, body, tokens[OWNER]), {
            "title": "Two replicas", "host": "owner", "root": "lab",
            "members": [{"user": EDITOR, "role": "editor"}]})
        b, b_url = start_replica(workdir, db_url)
        wait_for("both replicas listening", lambda: listening_replicas(db_url) == 2, 30)
        yield Pair(hub, db_url, b_url, b, session_id, tokens)
    finally:
        if b is not None:
            b.terminate()
            b.wait(10)
        hub.stop()
        next(urls, None)


async def test_a_member_removed_through_one_replica_loses_the_room_within_a_second(
        pair: Pair) -> None:
    member = f"/sessions/{pair.session_id}/members/user/{GONE}"
    for _ in range(3):
        status, body = await pair.call("PUT", member, {"role": "editor"})
        assert status == 201, body
        gone = await pair.client(GONE)
        try:
            status, body = await pair.call("DELETE", member)
            answered = asyncio.get_running_loop().time()
            # 204: every server confirmed, and only A holds the owner's server's channel
            assert status == 204, body
            code, _ = await asyncio.wait_for(gone.closed, 1.0)
            assert code == 4403
            assert asyncio.get_running_loop().time() - answered < 1.0
        finally:
            gone.close()


async def test_an_edit_right_after_a_lock_made_through_the_other_replica_is_refused(
        pair: Pair) -> None:
    cells = f"/sessions/{pair.session_id}/cells"
    editor, watcher = await pair.client(EDITOR), await pair.client(OWNER)
    try:
        for i in range(5):
            status, rule = await pair.call("PUT", cells, {"path": "nb.ipynb", "cell_id": "target",
                                                          "rule": "locked"})
            secret = f"SECRET-{i}-"
            editor.type_into("target", secret)  # the very next thing the loop does
            assert status in (200, 201), rule
            assert rule["enforced"] is True and rule["pending_servers"] == [], rule
            await editor.until(lambda s=secret: s not in editor.source("target"), timeout=5)
            await asyncio.sleep(0.2)
            assert secret not in json.dumps(watcher.state())
            status, _ = await pair.call("DELETE", cells + "?path=nb.ipynb&cell_id=target")
            assert status == 204
    finally:
        editor.close()
        watcher.close()


async def test_the_replica_that_holds_the_channel_answers_the_same(pair: Pair) -> None:
    """The way through A (the hub's own route, the channel's replica) still confirms."""
    via_a = pair.hub.url + "/services/rtc/api/v1"
    status, body = await pair.call("PUT", f"/sessions/{pair.session_id}/members/user/{EDITOR}",
                                   {"role": "viewer"}, base=via_a)
    assert status == 200 and body["enforced"] is True, body
    status, body = await pair.call("PUT", f"/sessions/{pair.session_id}/members/user/{EDITOR}",
                                   {"role": "editor"})
    assert status == 200 and body["enforced"] is True, body
