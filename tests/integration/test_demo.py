"""`hub-rtc demo` as a newcomer runs it: it answers at the printed URL, and
Ctrl-C stops the hub, the proxy and everything else it started."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hub_rtc.localhub import free_port

from .conftest import processes_in

pytestmark = pytest.mark.integration


def test_demo_runs_answers_and_stops_cleanly(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "hub_rtc", "demo", "--port", str(free_port()), "--workdir", str(workdir)],
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
        with urllib.request.urlopen(url.group(1)) as page:
            assert page.status == 200 and b"Sign in" in page.read()
        assert processes_in(workdir)
    finally:
        demo.send_signal(signal.SIGINT)
        rest = demo.communicate(timeout=30)[0]  # drains and closes the pipe
    assert "Stopping the hub" in rest
    deadline = time.monotonic() + 10
    while processes_in(workdir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_in(workdir) == [], "the demo left processes running"
    assert demo.returncode == 0
