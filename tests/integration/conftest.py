"""Integration fixtures: a real JupyterHub, configurable-http-proxy and the service."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from hub_rtc.localhub import LocalHub
from tests import decision_cases as W

GROUPS = {
    "cs101": ["alice", "bob", "carol", "dave", W.OWNER],
    "cs101-staff": ["ida"],
    W.GROUP[0]: list(W.GROUP[1]),
    W.WATCHER[1]: [W.WATCHER[0]],
    "empty": [],
}

BASE_CONFIG = f"""
c.JupyterHub.load_groups = {{k: {{"users": v}} for k, v in {GROUPS!r}.items()}}
c.RTCPolicy.instructor_groups = {{"cs101-staff": ["cs101"]}}
c.RTCPolicy.max_members_per_session = 12
c.RTCPolicy.max_sessions_per_user = 5
"""


def processes_in(folder: Path, needle: str = "") -> list[int]:
    """Pids of processes working in ``folder`` (a hub's) whose command line holds ``needle``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if os.readlink(f"/proc/{pid}/cwd") == str(folder) and needle in cmdline:
                found.append(int(pid))
        except OSError:
            continue
    return found


KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def code_notebook(cells: Mapping[str, str] | Sequence[str], *, kernelspec: bool = False,
                  markdown: Collection[str] = ()) -> dict[str, Any]:
    """An nbformat 4.5 notebook of ``cells`` (id -> source, or ids whose source is ``# {id}``).

    Cells are code cells unless their id is in ``markdown``; ``kernelspec`` adds the
    metadata every notebook JupyterLab saves carries.
    """
    sources = cells if isinstance(cells, Mapping) else {cid: f"# {cid}\n" for cid in cells}
    built: list[dict[str, Any]] = []
    for cid, source in sources.items():
        cell: dict[str, Any] = {"id": cid, "cell_type": "markdown" if cid in markdown else "code",
                                "source": source, "metadata": {}}
        if cell["cell_type"] == "code":
            cell.update(outputs=[], execution_count=None)
        built.append(cell)
    metadata = {"kernelspec": dict(KERNELSPEC)} if kernelspec else {}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": built}


def host_session(rtc: Callable[[str, str, Any], tuple[int, Any]], body: dict[str, Any]) -> str:
    """Create the session ``body`` describes on its owner's server; its id.

    The service answers 409 until the server has announced itself, so creation is retried.
    """

    def created() -> Any:
        status, reply = rtc("POST", "/sessions", body)
        assert status in (201, 409), reply
        return reply if status == 201 else None

    return str(wait_for("the session could be hosted on the owner's server", created)["id"])


def dedicated_session(rtc: Callable[..., tuple[int, Any]], body: dict[str, Any],
                      timeout: float = 90) -> dict[str, Any]:
    """Create a session on a dedicated server (``host: account``); it once that server
    has announced itself."""
    status, session = rtc("POST", "/sessions", {**body, "host": "account"})
    assert status == 201, session

    def ready() -> Any:
        _, found = rtc("GET", f"/sessions/{session['id']}")
        return found if found["hosting"]["state"] == "ready" else None

    return dict(wait_for("the dedicated server announced itself", ready, timeout))


def start_hub(workdir: Path, extra: str = "", db_url: str | None = None,
              manage_hub_access: bool = False) -> LocalHub:
    hub = LocalHub(workdir, extra_config=BASE_CONFIG + extra, db_url=db_url,
                   manage_hub_access=manage_hub_access)
    try:
        hub.start()
    except Exception:
        hub.stop()
        print((workdir / "hub.log").read_text()[-5000:])
        raise
    return hub


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 30) -> Any:
    """Poll ``predicate`` until it returns something true; that value, or TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"waited {timeout} s for {what}")


def start_server(hub: LocalHub, user: str, timeout: float = 60) -> None:
    """Start ``user``'s default server through the hub, waiting out a stop still in progress."""

    def ready() -> bool:
        _, model = hub.api("GET", f"/hub/api/users/{user}")
        server = (model.get("servers") or {}).get("")
        if not server:
            hub.api("POST", f"/hub/api/users/{user}/server")  # 400 while a stop is pending
        return bool(server and server.get("ready"))

    wait_for(f"{user}'s server", ready, timeout)


async def call_json(url: str, token: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    """One call to a JSON API without blocking the event loop the clients run on: the
    status and the decoded answer (its first bytes, if it is not JSON)."""
    from tornado.httpclient import AsyncHTTPClient, HTTPRequest

    request = HTTPRequest(url, method=method, body=json.dumps(body) if body is not None else None,
                          headers={"Authorization": f"token {token}",
                                   "Content-Type": "application/json"},
                          allow_nonstandard_methods=True, request_timeout=60)
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    try:
        return response.code, json.loads(response.body) if response.body else None
    except ValueError:
        return response.code, response.body[:200]


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def process_environ(match: Callable[[str, dict[str, str]], bool]) -> dict[str, str] | None:
    """The environment of the first process whose (command line, environment) ``match``."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        env = dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)
        if match(cmdline, env):
            return env
    return None


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    """One hub (default policy, SQLite) for the whole session; torn down after."""
    hub = start_hub(tmp_path_factory.mktemp("hub"))
    yield hub
    hub.stop()


class Tokens:
    """Hub API tokens per user, created on first use."""

    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub
        self._tokens: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        if name not in self._tokens:
            self._tokens[name] = self.hub.user_token(name)
        return self._tokens[name]


@pytest.fixture(scope="session")
def tokens(hub: LocalHub) -> Tokens:
    return Tokens(hub)


def saved_notebook(path: Path, timeout: float = 5) -> dict[str, Any]:
    """A notebook file as the server saved it, read again while a save is half-written
    (the server truncates the file before writing it: an empty or cut-off read)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return json.loads(path.read_text())
        except ValueError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say which kernel-isolation modes test_kernel_authority.py ran in (issue 11)."""
    import sys

    module = sys.modules.get("tests.integration.test_kernel_authority")
    modes = getattr(module, "MODES_RUN", None)
    if modes is not None:
        terminalreporter.write_line(
            f"kernel isolation modes run: {', '.join(sorted(modes)) or '(no mode ran)'}")
