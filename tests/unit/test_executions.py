"""Execute requests read off kernel websocket frames, in both of jupyter_server's formats."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1

from hub_rtc.singleuser.executions import V1, executed_cell


def message(msg_type: str = "execute_request", metadata: Any = None, channel: str = "shell",
            ) -> dict[str, Any]:
    return {"header": {"msg_type": msg_type, "msg_id": "m1", "username": "someone-else"},
            "parent_header": {}, "metadata": {"cellId": "c1"} if metadata is None else metadata,
            "content": {"code": "1 + 1"}, "channel": channel}


def v1(msg: dict[str, Any]) -> bytes:
    """The frame jupyter_server's own v1 serializer makes of ``msg``."""
    parts = [json.dumps(msg[k]).encode() for k in ("header", "parent_header", "metadata", "content")]
    return bytes(serialize_msg_to_ws_v1(parts, msg["channel"]))


@pytest.mark.parametrize("encode", [lambda m: (json.dumps(m), None), lambda m: (v1(m), V1)],
                         ids=["legacy", "v1"])
def test_execute_requests_and_their_cells(encode: Any) -> None:
    assert executed_cell(*encode(message())) == (True, "c1")
    assert executed_cell(*encode(message(metadata={}))) == (True, None)  # a console: no cell
    assert executed_cell(*encode(message(metadata={"cellId": "x" * 300}))) == (True, None)
    assert executed_cell(*encode(message("kernel_info_request"))) == (False, None)
    assert executed_cell(*encode(message("comm_msg"))) == (False, None)
    assert executed_cell(*encode(message(channel="control"))) == (False, None)


@pytest.mark.parametrize(("frame", "protocol"), [
    (b"", V1), (b"\x05" + b"\x00" * 7, V1), ("{not json", None), ("[]", None),
    (json.dumps(message()), V1),  # a text frame where binary frames are expected
    ((3).to_bytes(8, "little") + (40).to_bytes(8, "little") + (10).to_bytes(8, "little")
     + (5).to_bytes(8, "little") + b"x" * 20, V1),  # offsets out of order
])
def test_malformed_frames_are_no_execution(frame: Any, protocol: str | None) -> None:
    assert executed_cell(frame, protocol) == (False, None)
