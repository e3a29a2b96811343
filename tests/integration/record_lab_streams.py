"""Record the y-sync frames a real JupyterLab sends, for the counting rules' unit tests.

Not a test: run it by hand when JupyterLab or jupyter-collaboration changes what it
writes, and commit what it saves::

    .venv/bin/python -m tests.integration.record_lab_streams tests/unit/data/lab_streams.json

It starts a hub as the browser tests do (olive's server hosts session "Lab 1" on
folder ``lab1``; ed is an editor, vi a viewer; cell ``locked`` is locked), then in
headless Chromium, one person after another:

- ed opens ``nb.ipynb`` with a kernel (``open``), types 18 characters at the start of
  cell ``free`` (``type``), then 5 into cell ``locked`` (``locked``);
- vi opens it without a kernel (``open``) and types 5 characters into ``spare``
  (``type``);
- olive, the owner, opens it and does nothing (``open``).

For each person the file keeps the room's first answer (its sync step 2: the whole
document as that person found it, which a replay starts from), then every frame
their JupyterLab sent on the document's room websocket (``"way": "sent"``) and every
document frame the room sent it (``"received"``: the room's own writes, which later
keystrokes build on, and the echoes of the sent ones), in order, each with its
phase.  Frames are base64; awareness frames sent are kept too (they name the user
as JupyterLab says it, which the room overwrites anyway).
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.async_api import WebSocket

from tests.integration.browser import (
    DOCUMENT_ROOM,
    SYNC_STEP2,
    LabUser,
    chromium,
    login,
    open_notebook,
    type_into_cell,
)
from tests.integration.conftest import code_notebook, start_hub, start_server, wait_for

OWNER, EDITOR, VIEWER = "olive", "ed", "vi"
NOTEBOOK = "lab1/nb.ipynb"
CELLS = ("free", "locked", "spare")
FREE, LOCKED, SPARE = range(3)
#: what ed types into cell ``free``: 18 characters, none CodeMirror completes
TYPED = "total = 18 * 2 + 1"
#: how long to let JupyterLab's own writes after a step arrive before the next
SETTLE = 3.0


class Recorder:
    """Every frame one page sends on a document room, tagged with the current phase."""

    def __init__(self, user: LabUser) -> None:
        self.phase = "open"
        self.initial: str | None = None
        self.frames: list[dict[str, str]] = []
        user.page.on("websocket", self._on_websocket)

    def _on_websocket(self, ws: WebSocket) -> None:
        if DOCUMENT_ROOM.search(ws.url) is None:
            return
        ws.on("framesent", self._sent)
        ws.on("framereceived", self._received)

    def _sent(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self._keep("sent", payload)

    def _received(self, payload: str | bytes) -> None:
        if not isinstance(payload, bytes) or payload[:1] != SYNC_STEP2[:1]:
            return  # only the document: what the room applied, the replay applies too
        if self.initial is None and payload.startswith(SYNC_STEP2):
            self.initial = base64.b64encode(payload).decode()
        else:
            # the room's own writes (it loads the file, marks the state) and echoes: a
            # later keystroke builds on them
            self._keep("received", payload)

    def _keep(self, way: str, payload: bytes) -> None:
        self.frames.append({"phase": self.phase, "way": way,
                            "frame": base64.b64encode(payload).decode()})

    def json(self) -> dict[str, Any]:
        return {"initial": self.initial, "frames": self.frames}


def set_up(workdir: Path) -> Any:
    """The hub, olive's server, the notebook and the session, as test_browser_lab sets them."""
    hub = start_hub(workdir, manage_hub_access=True, extra="c.YDocExtension.document_save_delay = 0.2\n")
    token = hub.user_token(OWNER)
    for name in (EDITOR, VIEWER):
        hub.user_token(name)  # (made at the hub on the way: members must be hub users)
    start_server(hub, OWNER)
    hub.api("PUT", f"/user/{OWNER}/api/contents/lab1", {"type": "directory"}, token)
    hub.api("PUT", f"/user/{OWNER}/api/contents/{NOTEBOOK}",
            {"type": "notebook", "format": "json", "content": code_notebook(CELLS, kernelspec=True)},
            token)
    members = [{"user": EDITOR, "role": "editor"}, {"user": VIEWER, "role": "viewer"}]

    def created() -> Any:
        status, reply = hub.rtc("POST", "/sessions", {"title": "Lab 1", "host": "owner",
                                                     "root": "lab1", "members": members}, token)
        if status not in (201, 409):  # 409 until the server has announced itself
            raise RuntimeError(f"the session could not be made: {status} {reply}")
        return reply if status == 201 else None

    session = wait_for("the session", created, 60)
    hub.rtc("PUT", f"/sessions/{session['id']}/cells",
            {"path": "nb.ipynb", "cell_id": "locked", "rule": "locked"}, token)
    return hub


async def person(browser: Any, hub_url: str, name: str, steps: list[tuple[str, int, str]],
                 kernel: bool) -> dict[str, Any]:
    """``name`` opens the notebook, then types each (phase, cell, text) of ``steps``."""
    user = await login(browser, hub_url, name)
    try:
        recorder = Recorder(user)
        await open_notebook(user, hub_url, OWNER, NOTEBOOK, kernel=kernel)
        await asyncio.sleep(SETTLE)
        for phase, cell, text in steps:
            recorder.phase = phase
            await type_into_cell(user.page, cell, text)
            await asyncio.sleep(SETTLE)
        return recorder.json()
    finally:
        await user.close()


async def record(hub_url: str) -> dict[str, Any]:
    async with chromium() as browser:
        return {
            EDITOR: await person(browser, hub_url, EDITOR,
                                 [("type", FREE, TYPED), ("locked", LOCKED, "SECRET")], kernel=True),
            VIEWER: await person(browser, hub_url, VIEWER, [("type", SPARE, "vivid")], kernel=False),
            OWNER: await person(browser, hub_url, OWNER, [], kernel=True),
        }


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        hub = set_up(Path(workdir))
        try:
            streams = asyncio.run(record(hub.url))
        finally:
            hub.stop()
    streams["_about"] = {"typed": TYPED, "cells": list(CELLS), "locked": "locked",
                         "recorded_by": "tests/integration/record_lab_streams.py"}
    out.write_text(json.dumps(streams, indent=1) + "\n")
    print(f"{out}: " + ", ".join(f"{k}: {len(v['frames'])} frames"
                                 for k, v in streams.items() if k != "_about"))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "lab_streams.json"))
