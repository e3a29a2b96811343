"""What the end-to-end benchmarks share: a local hub with stock or guarded rooms,
the 50-cell notebook, processes and their CPU and memory, timed edits, medians.

``bench_room.py`` and ``bench_relay.py`` keep only their scenarios and reports.
A benchmark puts the repository root on ``sys.path`` before importing this.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from pycrdt import Text
from tornado.httpclient import HTTPClientError

from hub_rtc.localhub import LocalHub, processes_under
from tests.integration.yclient import YClient

T = TypeVar("T")

EDITOR = "ed"
ROOT = "lab1"
NOTEBOOK = f"{ROOT}/nb.ipynb"
CELLS = 50
KEYS = "abcdefghij"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the command line --------------------------------------------------------


def options(parser: argparse.ArgumentParser, full: dict[str, int], quick: dict[str, int],
            ) -> argparse.Namespace:
    """Add ``--quick``, parse, and fill each option left unset from the quick or the full set."""
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: " + ", ".join(f"{k} {v}" for k, v in quick.items()))
    args = parser.parse_args()
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


# -- the notebook and the hub ------------------------------------------------


def notebook_json() -> dict[str, Any]:
    """50 code cells of three short lines repeated three times, ids ``cell-<i>``."""
    cells: list[dict[str, Any]] = [{"id": f"cell-{i}", "cell_type": "code", "metadata": {}, "outputs": [],
              "execution_count": None,
              "source": f"# cell {i}\nvalue_{i} = compute({i})\nprint(value_{i})\n" * 3}
             for i in range(CELLS)]
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}


def hub_config(workdir: Path, stock: Sequence[str] = ()) -> str:
    """Extra hub config: homes under ``workdir``; hub_rtc off for the ``stock`` users' servers.

    jupyter_server takes an extension's on/off from the first config dir that
    names it.  In a virtualenv the environment's etc/jupyter (where the
    installed hub_rtc.json switches it on) comes first, unless
    $JUPYTER_PREFER_ENV_PATH is 0: then $JUPYTER_CONFIG_DIR does.
    """
    config = (f"c.SimpleLocalProcessSpawner.home_dir_template = {str(workdir / 'home')!r}"
              " + '/{username}'\n")
    if not stock:
        return config
    off = workdir / "stock-jupyter-config"
    (off / "jupyter_server_config.d").mkdir(parents=True)
    (off / "jupyter_server_config.d" / "hub_rtc.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"hub_rtc": False}}}))
    return config + (
        "def _stock_room_for(spawner):\n"
        f"    if spawner.user.name in {tuple(stock)!r}:\n"
        "        spawner.environment = {**spawner.environment,\n"
        f"                               'JUPYTER_CONFIG_DIR': {str(off)!r},\n"
        "                               'JUPYTER_PREFER_ENV_PATH': '0'}\n"
        "c.Spawner.pre_spawn_hook = _stock_room_for\n"
    )


@contextmanager
def local_hub(prefix: str, extra_config: Callable[[Path], str], servers: Sequence[str],
              ) -> Iterator[LocalHub]:
    """A started hub in a fresh folder; on the way out ``servers`` are stopped, the hub too,
    and anything of ours still working in its folder; on an error, the hub log's end is shown."""
    # SIGTERM too must stop the hub and its servers: make it unwind like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    hub = LocalHub(workdir, extra_config=extra_config(workdir), manage_hub_access=True)
    started = False
    try:
        hub.start()
        started = True
        yield hub
    except Exception:
        log = workdir / "hub.log"
        if log.exists():
            print(f"--- last lines of {log}:\n{log.read_text(errors='replace')[-4000:]}", file=sys.stderr)
        raise
    finally:
        shutdown(hub, servers if started else ())
        shutil.rmtree(workdir, ignore_errors=True)


def start_servers(hub: LocalHub, names: Sequence[str], timeout: float = 90) -> dict[str, int]:
    """Start the users' default servers and wait until all are ready; their pids."""
    for name in names:
        hub.api("POST", f"/hub/api/users/{name}/server")
    deadline = time.monotonic() + timeout
    waiting = set(names)
    while waiting and time.monotonic() < deadline:
        for name in list(waiting):
            _, model = hub.api("GET", f"/hub/api/users/{name}")
            if ((model or {}).get("servers") or {}).get("", {}).get("ready"):
                waiting.discard(name)
        time.sleep(0.3)
    if waiting:
        raise TimeoutError(f"servers not ready in {timeout}s: {sorted(waiting)}")
    home = hub.workdir / "home"
    return {name: one(processes(home / name, "jupyterhub.singleuser"), f"{name}'s server")
            for name in names}


def create_notebooks(hub: LocalHub, server: str, token: str, paths: Sequence[str]) -> None:
    """The folder ``ROOT`` and the 50-cell notebook at each of ``paths`` on ``server``."""
    content = notebook_json()
    status, reply = hub.api("PUT", f"/user/{server}/api/contents/{ROOT}", {"type": "directory"}, token)
    assert status in (200, 201), (status, reply)
    for path in paths:
        status, reply = hub.api("PUT", f"/user/{server}/api/contents/{quote(path)}",
                                {"type": "notebook", "format": "json", "content": content}, token)
        assert status in (200, 201), (status, reply)


def host_session(hub: LocalHub, owner_token: str, deadline: float) -> str:
    """Session "bench" on the token's owner's ``lab1`` with ed as editor; its id."""
    body = {"title": "bench", "host": "owner", "root": ROOT,
            "members": [{"user": EDITOR, "role": "editor"}]}
    while True:  # 409 until the owner's server has announced itself to the service
        status, reply = hub.rtc("POST", "/sessions", body, owner_token)
        if status == 201:
            return str(reply["id"])
        if status != 409 or time.monotonic() > deadline:
            raise RuntimeError(f"session not created: {status} {reply}")
        time.sleep(0.3)


def shutdown(hub: LocalHub, servers: Sequence[str]) -> None:
    """Stop the servers and the hub (which also ends anything of ours still working in
    its folder); say what is left running, if anything."""
    if hub.process is not None and hub.process.poll() is None:
        try:
            for name in servers:
                hub.api("DELETE", f"/hub/api/users/{name}/server")
        except OSError:
            pass
    hub.stop()
    deadline = time.monotonic() + 5
    while (left := processes_under(hub.workdir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        print(f"left running: {left}", file=sys.stderr)


async def retried(open_one: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
    """``open_one()``, again while it fails with an HTTP error: the hub's share for ed
    may take a moment after the session is created."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await open_one()
        except HTTPClientError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


# -- processes ---------------------------------------------------------------


def one(pids: list[int], what: str) -> int:
    if len(pids) != 1:
        raise RuntimeError(f"expected one {what} process, found {pids}")
    return pids[0]


def processes(cwd: Path, needle: str) -> list[int]:
    """Pids of processes working in ``cwd`` whose command line holds ``needle``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd") != str(cwd):
                continue
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline:
            found.append(int(pid))
    return found


def proxy_pid(hub: LocalHub) -> int:
    return one(processes(hub.workdir, "configurable-http-proxy"), "proxy")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid``, in seconds (clock-tick resolution)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def quiet(pids: list[int], window: float = 0.2, timeout: float = 30) -> None:
    """Wait until none of ``pids`` spends more than 10% of a core: backlogs of the
    previous measure (the ystore writes every update) must not weigh on the next."""
    deadline = time.monotonic() + timeout
    last = [cpu_seconds(pid) for pid in pids]
    while time.monotonic() < deadline:
        await asyncio.sleep(window)
        now = [cpu_seconds(pid) for pid in pids]
        if all(b - a <= 0.1 * window for a, b in zip(last, now, strict=True)):
            return
        last = now


# -- timed edits -------------------------------------------------------------


async def send_burst(tx: YClient, text: Text, edits: int, arrived: Awaitable[None],
                     timeout: float) -> float:
    """Seconds from the first of ``edits`` one-character inserts, each sent as soon as the
    websocket takes the previous one, until ``arrived`` (made before the first is sent)."""
    start = time.perf_counter()
    for n in range(edits):
        await tx.type(text, KEYS[n % len(KEYS)])
    await asyncio.wait_for(arrived, timeout)
    return time.perf_counter() - start


async def round_trips(tx: YClient, text: Text, edits: int, arrival: Callable[[], Awaitable[None]],
                      timeout: float = 30) -> list[float]:
    """Milliseconds from each single insert until ``arrival()`` (made just before it) is done."""
    out = []
    for n in range(edits):
        arrived = arrival()
        start = time.perf_counter()
        await tx.type(text, KEYS[n % len(KEYS)])
        await asyncio.wait_for(arrived, timeout)
        out.append((time.perf_counter() - start) * 1000)
    return out


# -- figures -----------------------------------------------------------------


def interleaved(r: int, pair: tuple[str, ...]) -> tuple[str, ...]:
    """The order of round ``r``: even rounds as given, odd ones reversed, so that noise
    hits both sides alike."""
    return pair if r % 2 == 0 else pair[::-1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def met(ok: bool) -> str:
    return "met" if ok else "MISSED"
