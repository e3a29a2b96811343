"""Running code in a real kernel over its websocket, as JupyterLab does."""

from __future__ import annotations

import json
import uuid

from tornado.websocket import WebSocketClientConnection


async def execute(ws: WebSocketClientConnection, code: str) -> str:
    """Run ``code`` over a kernel websocket; what it printed (stdout and errors)."""
    msg_id = uuid.uuid4().hex
    await ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                   "session": uuid.uuid4().hex, "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }))
    out = []
    while True:
        raw = await ws.read_message()
        assert raw is not None, "the kernel socket closed"
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id or msg.get("channel") != "iopub":
            continue
        kind, content = msg["header"]["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind == "error":
            out.append("\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(out)
