"""``hub-rtc demo``: a complete local hub with demo users, a team and a session."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from .localhub import LocalHub

INSTRUCTOR = "ada"
STUDENTS = ("bea", "cai", "dev")
COURSE, STAFF = "cs101", "cs101-staff"
PASSWORD = "rtc-demo"

DEMO_POLICY = f"""
c.DummyAuthenticator.password = {PASSWORD!r}
c.JupyterHub.load_groups = {{
    {COURSE!r}: {{"users": {list(STUDENTS)!r}}},
    {STAFF!r}: {{"users": [{INSTRUCTOR!r}]}},
}}
c.RTCPolicy.instructor_groups = {{{STAFF!r}: [{COURSE!r}]}}
c.RTCPolicy.max_members_per_session = 8
"""


def seed(hub: LocalHub) -> dict[str, Any]:
    """Create the demo team and session as the first student would."""
    bea = hub.user_token(STUDENTS[0])
    for name in (INSTRUCTOR, *STUDENTS[1:]):
        hub.user_token(name)
    status, team = hub.rtc("POST", "/teams", {"name": "bees", "members": list(STUDENTS[:2])}, bea)
    _expect(status, 201, team)
    status, session = hub.rtc("POST", "/sessions", {
        "title": "Lab 1: the bees' notebook",
        "host": "owner",
        "root": "lab1",
        "members": [{"team": "bees", "role": "editor"}, {"user": STUDENTS[2], "role": "viewer"}],
    }, bea)
    _expect(status, 201, session)
    return session


def _expect(status: int, want: int, reply: Any) -> None:
    if status != want:
        raise RuntimeError(f"demo set-up failed: {status} {reply}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="hub-rtc demo", description=__doc__)
    parser.add_argument("--port", type=int, default=8000, help="the hub's public port (default 8000)")
    parser.add_argument("--workdir", help="where the hub keeps its files (default: a new temp folder)")
    opts = parser.parse_args(argv)
    workdir = Path(opts.workdir or tempfile.mkdtemp(prefix="hub-rtc-demo-"))
    hub = LocalHub(workdir, port=opts.port, extra_config=DEMO_POLICY)
    print(f"Starting JupyterHub in {workdir} …", flush=True)
    try:
        hub.start()
        session = seed(hub)
        print(_banner(hub, session), flush=True)
        # Blocked after the hub started, so its processes keep default handlers.
        stop = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        signal.sigwait(stop)
    except KeyboardInterrupt:
        pass
    finally:
        print("Stopping the hub and everything it started …", flush=True)
        hub.stop()


def _banner(hub: LocalHub, session: dict[str, Any]) -> str:
    return f"""
hub_rtc demo is running.

  Log in at   {hub.url}/hub/login   (password for everyone: {PASSWORD})
  students    {', '.join(STUDENTS)}   (hub group {COURSE}; bea and cai are team "bees")
  instructor  {INSTRUCTOR}   (watches {COURSE})
  session     "{session['title']}" (id {session['id']}) owned by {session['owner']}
  API         {hub.service_url}/sessions  (Authorization: token <your hub token>)

Press Ctrl-C to stop.
"""


if __name__ == "__main__":
    main(sys.argv[1:])
