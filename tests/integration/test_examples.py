"""The scripts in examples/, run for real as an instructor would, against a real hub.

olive (in course cs101) keeps one folder per project group on her own server,
each with the same lab notebook; the scripts create the group sessions from a
CSV, lock the notebook's instructions in every session, and export activity.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub_rtc.localhub import REPO, LocalHub
from tests.integration.conftest import start_hub, start_server, wait_for

pytestmark = pytest.mark.integration

EXAMPLES = REPO / "examples"
SCRIPTS = ("sessions_from_csv.py", "lock_cells.py", "export_activity.py")
INSTRUCTOR = "olive"
GROUPS = {"g1": ["alice", "bob"], "g2": ["carol", "dave"], "g3": ["alice", "carol"]}
LAB = {
    "nbformat": 4, "nbformat_minor": 5, "metadata": {},
    "cells": [
        {"id": "intro", "cell_type": "markdown", "source": "# Lab\nDo the tasks below.", "metadata": {}},
        {"id": "task", "cell_type": "code", "source": "# INSTRUCTIONS: do not edit\nN = 10\n",
         "metadata": {}, "outputs": [], "execution_count": None},
        {"id": "work", "cell_type": "code", "source": "# your answer\n", "metadata": {},
         "outputs": [], "execution_count": None},
    ],
}


class Course:
    def __init__(self, hub: LocalHub, tmp: Path) -> None:
        self.hub = hub
        self.tmp = tmp
        self.token = hub.user_token(INSTRUCTOR)

    def run(self, script: str, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "JUPYTERHUB_API_TOKEN": token or self.token}
        return subprocess.run([sys.executable, str(EXAMPLES / script), *args, "--hub-url", self.hub.url],
                              capture_output=True, text=True, timeout=120, env=env, cwd=self.tmp)

    def csv(self, groups: dict[str, list[str]]) -> str:
        path = self.tmp / f"groups-{len(groups)}.csv"
        lines = ["user,group"] + [f"{u},{g}" for g, users in groups.items() for u in users]
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    def sessions(self) -> dict[str, dict[str, Any]]:
        status, reply = self.hub.rtc("GET", "/sessions?which=mine&state=active", token=self.token)
        assert status == 200, reply
        return {s["title"]: s for s in reply["sessions"]}


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Course]:
    workdir = tmp_path_factory.mktemp("examples")
    hub = start_hub(workdir, manage_hub_access=True)
    try:
        c = Course(hub, workdir)
        start_server(hub, INSTRUCTOR)
        for group in GROUPS:
            base = f"/user/{INSTRUCTOR}/api/contents/{group}"
            assert hub.api("PUT", base, {"type": "directory"}, c.token)[0] in (200, 201)
            status, _ = hub.api("PUT", base + "/lab.ipynb",
                                {"type": "notebook", "format": "json", "content": LAB}, c.token)
            assert status in (200, 201)

        def announced() -> bool:  # sessions on olive's server need the extension announced
            _, reply = hub.rtc("GET", "/servers")
            return any(s["user"] == INSTRUCTOR for s in reply["servers"])

        wait_for("olive's server announced the hub_rtc extension", announced, 60)
        yield c
    finally:
        hub.stop()


@pytest.fixture(scope="module")
def created(course: Course) -> dict[str, dict[str, Any]]:
    """The instructor ran sessions_from_csv.py for groups g1 and g2."""
    first = {g: GROUPS[g] for g in ("g1", "g2")}
    done = course.run("sessions_from_csv.py", course.csv(first), "--course", "cs101",
                      "--host", "owner", "--root", "{group}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("created") == 2, done.stdout
    return course.sessions()


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_example_explains_itself(course: Course, script: str) -> None:
    done = course.run(script, "--help")
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and "JUPYTERHUB_API_TOKEN" in done.stdout
    missing = subprocess.run([sys.executable, str(EXAMPLES / script), "--hub-url", course.hub.url],
                             capture_output=True, text=True, timeout=60,
                             env={k: v for k, v in os.environ.items() if k != "JUPYTERHUB_API_TOKEN"})
    assert missing.returncode == 2  # argparse: a usage error, not a traceback
    assert "Traceback" not in missing.stderr


def test_sessions_from_csv_creates_one_session_per_group_once(course: Course,
                                                              created: dict[str, dict[str, Any]]) -> None:
    for group in ("g1", "g2"):
        session = created[f"cs101 {group}"]
        assert session["course"] == "cs101" and session["root"] == group
        assert session["server"]["user"] == INSTRUCTOR
        assert sorted((m["name"], m["role"]) for m in session["members"]) == [
            (u, "editor") for u in sorted(GROUPS[group])]
    # again, with a new group added to the file: only the new group is created
    again = course.run("sessions_from_csv.py", course.csv(GROUPS), "--course", "cs101",
                       "--host", "owner", "--root", "{group}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("skipped") == 2 and again.stdout.count("created") == 1, again.stdout
    now = course.sessions()
    assert set(now) == {"cs101 g1", "cs101 g2", "cs101 g3"}
    assert now["cs101 g1"]["id"] == created["cs101 g1"]["id"]
    # a dry run creates nothing and says so
    dry = course.run("sessions_from_csv.py", course.csv({"g4": ["bob"]}), "--course", "cs101",
                     "--host", "owner", "--root", "{group}", "--dry-run")
    assert dry.returncode == 0 and "would create cs101 g4" in dry.stdout
    assert "cs101 g4" not in course.sessions()


def test_sessions_from_csv_reports_failures(course: Course, created: dict[str, dict[str, Any]]) -> None:
    done = course.run("sessions_from_csv.py", course.csv({"g9": ["nobody-here"]}), "--course", "cs101",
                      "--host", "owner", "--root", "g9")
    assert done.returncode == 1
    assert "FAILED" in done.stderr and "nobody-here" in done.stderr


def test_lock_cells_locks_the_instructions_in_every_session(course: Course,
                                                            created: dict[str, dict[str, Any]]) -> None:
    done = course.run("lock_cells.py", "--course", "cs101", "--notebook", "lab.ipynb",
                      "--markdown", "--marker", "# INSTRUCTIONS")
    assert done.returncode == 0, done.stdout + done.stderr
    sessions = course.sessions()
    assert done.stdout.count("locked 2 of 3 cells") == len(sessions), done.stdout
    for session in sessions.values():
        status, reply = course.hub.rtc("GET", f"/sessions/{session['id']}/cells", token=course.token)
        assert status == 200
        assert sorted((r["cell_id"], r["rule"]) for r in reply["cells"]) == [
            ("intro", "locked"), ("task", "locked")]
    # the students of g1 can no longer change the instructions, only their own cell
    g1, alice = sessions["cs101 g1"]["id"], course.hub.user_token("alice")
    doc = f"/sessions/{g1}/documents/lab.ipynb/cells"
    status, reply = course.hub.rtc("PUT", f"{doc}/task", {"source": "N = 0\n"}, alice)
    assert status == 403 and "locked" in reply["message"]
    status, reply = course.hub.rtc("PUT", f"{doc}/work", {"source": "answer = N * 2\n"}, alice)
    assert status == 200, reply


def test_export_activity_writes_every_sessions_activity(course: Course,
                                                        created: dict[str, dict[str, Any]]) -> None:
    g2 = created["cs101 g2"]["id"]
    carol = course.hub.user_token("carol")
    status, reply = course.hub.rtc("POST", f"/sessions/{g2}/documents/lab.ipynb/cells/work/append",
                                   {"source": "# carol was here\n"}, carol)
    assert status == 200, reply

    def exported() -> list[dict[str, str]] | None:
        done = course.run("export_activity.py", "--course", "cs101", "-o", "activity.csv")
        assert done.returncode == 0, done.stderr
        with (course.tmp / "activity.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        edits = [r for r in rows if r["session_id"] == g2 and r["kind"] == "edit"]
        return rows if any(r["user"] == "carol" and r["cell_id"] == "work" for r in edits) else None

    rows = wait_for("carol's edit in the exported activity", exported, 40)
    assert list(rows[0]) == ["session_id", "title", "ts", "user", "kind", "path", "cell_id", "count"]
    assert {r["title"] for r in rows if r["session_id"] == g2} == {"cs101 g2"}
    assert all(int(r["count"]) >= 1 for r in rows)
    summary = course.run("export_activity.py", "--session", g2, "--summary")
    assert summary.returncode == 0, summary.stderr
    members = {r["user"]: r for r in csv.DictReader(io.StringIO(summary.stdout))}
    assert int(members["carol"]["edit"]) >= 1 and int(members["carol"]["cells_edited"]) >= 1
