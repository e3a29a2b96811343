"""``hub-rtc demo``: a complete local hub with demo users, a team and a session.

The session lives on a dedicated session server: the service creates the
collaboration account ``rtc-<id>``, starts its server with the hub_rtc
extension, and shares it with the members once the extension has announced
itself.  The demo waits for that, saying how far it got, then puts a notebook
with a locked cell into the session folder.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .localhub import LocalHub
from .singleuser.isolation import KERNEL_ACCOUNT, probe_account, resolve

INSTRUCTOR = "ada"
ADMIN = "root-admin"
STUDENTS = ("bea", "cai", "dev")
COURSE, STAFF = "cs101", "cs101-staff"
PASSWORD = "rtc-demo"
ROOT = "lab1"
NOTEBOOK = "bees.ipynb"
LOCKED_CELL = "task"
#: how long the session server may take to be ready (start, then announce)
HOSTING_TIMEOUT = 180.0

DEMO_POLICY = f"""
c.DummyAuthenticator.password = {PASSWORD!r}
c.JupyterHub.load_groups = {{
    {COURSE!r}: {{"users": {list(STUDENTS)!r}}},
    {STAFF!r}: {{"users": [{INSTRUCTOR!r}]}},
}}
c.RTCPolicy.instructor_groups = {{{STAFF!r}: [{COURSE!r}]}}
c.RTCPolicy.max_members_per_session = 8
# session kernels as apart from the server as this host allows (the banner says how)
c.RTCPolicy.kernel_isolation = "auto"
c.Authenticator.admin_users = {{{ADMIN!r}}}
"""


class DemoError(RuntimeError):
    """A set-up step failed; the message says which and why."""


#: The hub stops a server with SIGINT first.  A single-user server without a
#: terminal does not handle it (jupyter_server installs its SIGINT handler only
#: on a tty): its event loop ends, and threads of the collaboration extension
#: can keep the process alive until the SIGTERM and SIGKILL that follow.  Send
#: those soon enough for the hub's own clean-up to finish before it is stopped.
STOP_SERVERS_QUICKLY = """
c.LocalProcessSpawner.interrupt_timeout = 2
c.LocalProcessSpawner.term_timeout = 2
c.LocalProcessSpawner.kill_timeout = 2
"""


def demo_config(workdir: Path) -> str:
    """The demo's lines of jupyterhub_config.py: policy, homes inside ``workdir``, quick stops."""
    homes = str(workdir / "home")
    return (DEMO_POLICY + STOP_SERVERS_QUICKLY + kernel_account_config()
            + f"c.SimpleLocalProcessSpawner.home_dir_template = {homes!r} + '/{{username}}'\n")


def kernel_account() -> str:
    """./dev setup's account for session kernels, where it made one (it does as root); ""."""
    return KERNEL_ACCOUNT if probe_account(KERNEL_ACCOUNT) is None else ""


def kernel_account_config() -> str:
    """Session kernels as that account, where there is one."""
    if not kernel_account():
        return ""
    return f"c.Spawner.args = [*c.Spawner.args, '--HubRTCExtension.kernel_account={KERNEL_ACCOUNT}']\n"


def notebook() -> dict[str, Any]:
    """The session's notebook: the first cell is locked, the rest are the team's."""
    def cell(cell_id: str, kind: str, source: str) -> dict[str, Any]:
        out: dict[str, Any] = {"id": cell_id, "cell_type": kind, "source": source, "metadata": {}}
        if kind == "code":
            out.update(outputs=[], execution_count=None)
        return out

    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            cell(LOCKED_CELL, "markdown", "# Lab 1: counting bees\n\n"
                 "This cell is **locked**: only bea (the session's owner) can change it. "
                 "Try editing it as cai: the change is undone at once."),
            cell("count", "code", "bees = [3, 5, 8]\nsum(bees)"),
            cell("notes", "markdown", "Notes of the team (bea and cai may edit, dev may only read):\n"),
        ]}


@dataclass
class Demo:
    hub: LocalHub
    owner_token: str
    session: dict[str, Any]

    @property
    def session_id(self) -> str:
        return str(self.session["id"])

    @property
    def server(self) -> str:
        return str(self.session["server"]["user"])

    def contents(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        url = f"/user/{quote(self.server)}/api/contents/{quote(path)}"
        return self.hub.api("PUT", url, body, self.owner_token)


def seed(hub: LocalHub) -> Demo:
    """Create the demo team and session as the first student would."""
    # every demo user is in a group of DEMO_POLICY's load_groups: the hub made them
    bea = hub.user_token(STUDENTS[0], create=False)
    for name in (INSTRUCTOR, *STUDENTS[1:]):
        hub.user_token(name, create=False)
    status, team = hub.rtc("POST", "/teams", {"name": "bees", "members": list(STUDENTS[:2])}, bea)
    _expect(status, 201, team, "creating team bees")
    status, session = hub.rtc("POST", "/sessions", {
        "title": "Lab 1: the bees' notebook",
        "host": "account",
        "root": ROOT,
        "members": [{"team": "bees", "role": "editor"}, {"user": STUDENTS[2], "role": "viewer"}],
    }, bea)
    _expect(status, 201, session, "creating the session")
    return Demo(hub, bea, session)


def wait_until_hosted(demo: Demo, timeout: float = HOSTING_TIMEOUT, poll: float = 0.5) -> None:
    """Follow ``hosting`` of the session until it is ready; print every step."""
    seen: tuple[str, str] | None = None
    session = demo.session  # as created: the first step
    deadline = time.monotonic() + timeout
    while True:
        hosting = session["hosting"]
        step = (hosting["state"], hosting["message"])
        if step != seen:
            print(f"  hosting: {step[0]:<9} {step[1]}", flush=True)
            seen = step
        if step[0] == "ready":
            demo.session = session
            return
        if step[0] == "failed":
            raise DemoError(f"the session server could not be set up: {step[1]}")
        if time.monotonic() >= deadline:
            raise DemoError(f"the session server was not ready within {timeout:g} s")
        time.sleep(poll)
        status, session = demo.hub.rtc("GET", f"/sessions/{demo.session_id}", token=demo.owner_token)
        _expect(status, 200, session, "reading the session")


def add_notebook(demo: Demo, timeout: float = 30) -> None:
    """Put the notebook into the session folder as its owner (through her share), lock a cell."""
    deadline = time.monotonic() + timeout
    # The share that lets bea in is made right after the server announced itself.
    while True:
        status, reply = demo.contents(ROOT, {"type": "directory"})
        if status in (200, 201):
            break
        if time.monotonic() >= deadline:
            raise DemoError(f"creating the folder {ROOT} on {demo.server}'s server: {status} {reply}")
        time.sleep(0.5)
    status, reply = demo.contents(f"{ROOT}/{NOTEBOOK}",
                                  {"type": "notebook", "format": "json", "content": notebook()})
    _expect(status, 201, reply, f"saving {ROOT}/{NOTEBOOK}")
    status, reply = demo.hub.rtc("PUT", f"/sessions/{demo.session_id}/cells",
                                 {"path": NOTEBOOK, "cell_id": LOCKED_CELL, "rule": "locked"},
                                 demo.owner_token)
    _expect(status, 201, reply, f"locking cell {LOCKED_CELL}")


def set_up(hub: LocalHub) -> Demo:
    demo = seed(hub)
    print(f"Session {demo.session_id} created; its server is collaboration account {demo.server}:",
          flush=True)
    wait_until_hosted(demo)
    add_notebook(demo)
    return demo


def _expect(status: int, want: int, reply: Any, what: str) -> None:
    if status != want:
        raise DemoError(f"{what}: {status} {reply}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="hub-rtc demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8000, help="the hub's public port (default 8000)")
    parser.add_argument("--workdir", help="where the hub keeps its files (default: a new temp folder)")
    opts = parser.parse_args(argv)
    workdir = Path(opts.workdir or tempfile.mkdtemp(prefix="hub-rtc-demo-")).resolve()
    # manage_hub_access: the service hosts the session (account, server, shares)
    hub = LocalHub(workdir, port=opts.port, extra_config=demo_config(workdir), manage_hub_access=True)
    print(f"Starting JupyterHub in {workdir} …", flush=True)
    failed = False
    try:
        hub.start()
        demo = set_up(hub)
        print(_banner(hub, demo), flush=True)
        # Blocked after the hub started, so its processes keep default handlers.
        stop = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        signal.sigwait(stop)
    except KeyboardInterrupt:
        pass
    except DemoError as e:
        print(f"hub-rtc demo: {e}\n(the hub's log: {workdir / 'hub.log'})", file=sys.stderr, flush=True)
        failed = True
    finally:
        print("Stopping the hub and everything it started …", flush=True)
        hub.stop()
    if failed:
        sys.exit(1)


def _banner(hub: LocalHub, demo: Demo) -> str:
    session = demo.session
    opened = hub.url + session["url"]
    # the demo's servers run on this host, with the account if there is one: the same answer
    kernels = resolve("auto", kernel_account())
    return f"""
hub_rtc demo is running.

  Log in at   {hub.url}/hub/login   (password for everyone: {PASSWORD})
  students    {', '.join(STUDENTS)}   (hub group {COURSE}; bea and cai are team "bees")
  instructor  {INSTRUCTOR}   (watches {COURSE})
  admin       {ADMIN}
  pages       {hub.url}/services/rtc/            sessions, new session, teams
              {hub.url}/services/rtc/dashboard   (as {INSTRUCTOR}) the course's sessions and activity
              {hub.url}/services/rtc/admin       (as {ADMIN}) health, counts, servers, policy
  session     "{session['title']}" (id {session['id']}) owned by {session['owner']}
              on {demo.server}'s server, shared with the members: hosting {session['hosting']['state']}
  open it     {opened}
  notebook    {opened}/{NOTEBOOK}   (cell "{LOCKED_CELL}" is locked: only {session['owner']} may change it)
  kernels     {kernels.mode}: {kernels.why}
  API         {hub.service_url}/sessions  (Authorization: token <your hub token>)

Press Ctrl-C to stop.
"""


if __name__ == "__main__":
    main(sys.argv[1:])
