"""Running code in a real kernel over its websocket, as JupyterLab does."""

from __future__ import annotations

import json
import uuid

from jupyter_server.services.kernels.connection.base import (
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)
from tornado.websocket import WebSocketClientConnection

#: jupyter_server's binary kernel websocket protocol (JupyterLab's default)
V1 = "v1.kernel.websocket.jupyter.org"


def _v1_message(raw: str | bytes) -> dict:
    """A v1 frame as the legacy protocol would have carried it (the parts we read)."""
    assert isinstance(raw, bytes)
    channel, parts = deserialize_msg_from_ws_v1(raw)
    header, parent, _, content = (json.loads(p) for p in parts[:4])
    return {"channel": channel, "header": header, "parent_header": parent, "content": content}


async def execute(ws: WebSocketClientConnection, code: str, cell_id: str | None = None,
                  username: str = "test") -> str:
    """Run ``code`` over a kernel websocket (in cell ``cell_id``, as JupyterLab names it in
    the metadata); what it printed (stdout and errors).  Speaks the v1 protocol where the
    socket chose it, else the legacy one."""
    msg_id = uuid.uuid4().hex
    msg = {
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": username,
                   "session": uuid.uuid4().hex, "version": "5.3"},
        "parent_header": {}, "metadata": {"cellId": cell_id} if cell_id else {},
        "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }
    v1 = ws.selected_subprotocol == V1
    if v1:
        parts = [json.dumps(msg[k]).encode() for k in ("header", "parent_header", "metadata", "content")]
        await ws.write_message(bytes(serialize_msg_to_ws_v1(parts, "shell")), binary=True)
    else:
        await ws.write_message(json.dumps(msg))
    out = []
    while True:
        raw = await ws.read_message()
        assert raw is not None, "the kernel socket closed"
        msg = _v1_message(raw) if v1 else json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id or msg.get("channel") != "iopub":
            continue
        kind, content = msg["header"]["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind == "error":
            out.append("\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(out)
