"""PostgreSQL itself restarted under load (issue 15, item 4).

The service's database is a PostgreSQL cluster of this test's own (initdb in a
temporary folder, so that restarting it touches no other test), and it is restarted
with ``pg_ctl restart -m fast`` (which ends every connection) while a stream of API
calls changes grants and an editor types into a notebook.  What must hold: no answer
is a 500, every change answered 2xx is there afterwards, the service recovers without
a restart of its own, every edit reached the room and the file, and the editor's
attributed edits reach the service (the server keeps what the service could not take).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub_rtc.localhub import LocalHub, free_port
from tests.integration.conftest import (
    call_json,
    code_notebook,
    host_session,
    saved_notebook,
    start_hub,
    start_server,
    wait_for,
)
from tests.integration.yclient import YClient

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

OWNER, EDITOR = "pia", "eve"
STUDENTS = [f"s{i:02d}" for i in range(10)]  # the policy allows 12 members
NOTEBOOK = "lab/nb.ipynb"


def _pg_bin() -> Path | None:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").exists():
            return folder
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


class Cluster:
    """A PostgreSQL cluster of the test's own, run as the postgres account when root."""

    def __init__(self, folder: Path, port: int) -> None:
        self.bin = _pg_bin()
        self.folder, self.port = folder, port
        self.data = folder / "data"

    def run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "pg.log"), "-w",
                 "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1", "start")

    def restart(self) -> None:
        # (-l again: else the new server writes into our pipe and run() waits forever)
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "pg.log"), "-m", "fast",
                 "-w", "restart")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if _pg_bin() is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    folder = Path(tempfile.mkdtemp(prefix="hub_rtc_pg_"))
    made = Cluster(folder, free_port())
    made.start()
    yield made
    made.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def hub(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalHub, str]]:
    hub = start_hub(tmp_path_factory.mktemp("pg_restart"), db_url=cluster.url,
                    manage_hub_access=True, extra=(
                        "c.YDocExtension.document_save_delay = 0.2\n"
                        "c.HubRTCExtension.flush_seconds = 0.5\n"))
    try:
        owner = hub.user_token(OWNER)
        assert hub.api("POST", "/hub/api/users", {"usernames": [EDITOR, *STUDENTS]})[0] == 201
        start_server(hub, OWNER)
        status, _ = hub.api("PUT", f"/user/{OWNER}/api/contents/lab", {"type": "directory"}, owner)
        assert status in (200, 201)
        assert hub.api("PUT", f"/user/{OWNER}/api/contents/{NOTEBOOK}", {
            "type": "notebook", "format": "json", "content": code_notebook(["free"])}, owner)[0] in (200, 201)
        session_id = host_session(lambda m, p, body: hub.rtc(m, p, body, owner), {
            "title": "Restart", "host": "owner", "root": "lab",
            "members": [{"user": EDITOR, "role": "editor"}]})
        yield hub, session_id
    finally:
        hub.stop()


async def call(hub: LocalHub, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return await call_json(hub.service_url + path, hub.ops_token, method, body)


async def test_a_postgresql_restart_under_load_loses_nothing_and_is_never_a_500(
        cluster: Cluster, hub: tuple[LocalHub, str]) -> None:
    hub_, sid = hub
    answers: list[tuple[str, int, Any]] = []
    editor = await YClient.connect(hub_.url, OWNER, NOTEBOOK, hub_.user_token(EDITOR))
    watcher = await YClient.connect(hub_.url, OWNER, NOTEBOOK, hub_.user_token(OWNER))
    typed: list[str] = []
    seen: list[tuple[int, Any]] = []

    async def grants() -> None:
        for name in STUDENTS:
            status, body = await call(hub_, "PUT", f"/sessions/{sid}/members/user/{name}",
                                      {"role": "viewer"})
            answers.append((name, status, body))
            await asyncio.sleep(0.3)

    async def reads() -> None:
        for _ in range(40):
            status, body = await call(hub_, "GET", f"/sessions/{sid}")
            seen.append((status, body))
            await asyncio.sleep(0.1)

    async def typing() -> None:
        for i in range(80):
            word = f"w{i} "
            editor.type_into("free", word, at=len(editor.source("free")))
            typed.append(word)
            await asyncio.sleep(0.05)

    async def restart_midway() -> None:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(cluster.restart)

    try:
        await asyncio.gather(grants(), reads(), typing(), restart_midway())
        statuses = {status for _, status, _ in answers}
        assert statuses <= {201, 503}, [a for a in answers if a[1] not in (201, 503)]
        assert {status for status, _ in seen} <= {200, 503}, seen
        assert 503 in statuses | {status for status, _ in seen}  # the restart was felt
        refused = [a for a in answers if a[1] == 503]
        assert all("database cannot be reached right now" in a[2]["message"] for a in refused)
        # the service is back on its own: every later call succeeds
        status, members = await call(hub_, "GET", f"/sessions/{sid}/members")
        assert status == 200, members
        granted = {m["name"] for m in members["members"] if m["kind"] == "user"}
        made = {name for name, status, _ in answers if status == 201}
        assert made <= granted, made - granted  # every change answered as made is there
        await watcher.until(lambda: all(w in watcher.source("free") for w in typed), timeout=10)
        await asyncio.to_thread(wait_for, "the edits saved", lambda: all(
            w in "".join(saved_notebook(hub_.workdir / "home" / OWNER / NOTEBOOK)["cells"][0]["source"])
            for w in typed), 15)

        async def attributed() -> int:
            status, summary = await call(hub_, "GET", f"/sessions/{sid}/activity/summary")
            assert status == 200, summary
            return sum(m["edit"] for m in summary["members"] if m["user"] == EDITOR)

        for _ in range(60):  # the server sends what it counted every 0.5 s, and keeps the rest
            if await attributed() >= len(typed):
                break
            await asyncio.sleep(0.5)
        assert await attributed() == len(typed)
    finally:
        editor.close()
        watcher.close()
    log = (hub_.workdir / "hub.log").read_text()
    assert not re.search(r"\b500 (GET|POST|PUT|PATCH|DELETE) ", log)
