"""A real y-sync client (pycrdt) for jupyter-collaboration rooms, through the proxy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from pycrdt import (
    Array,
    Awareness,
    Decoder,
    Doc,
    Encoder,
    Map,
    Text,
    YMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    read_message,
)
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from hub_rtc.guard.frames import client_receive_sync


async def open_session(hub_url: str, server: str, path: str, token: str) -> tuple[str, str]:
    """PUT …/api/collaboration/session/<path>: returns (fileId, sessionId)."""
    response = await AsyncHTTPClient().fetch(HTTPRequest(
        f"{hub_url}/user/{server}/api/collaboration/session/{quote(path)}", method="PUT",
        body=json.dumps({"format": "json", "type": "notebook"}),
        headers={"Authorization": f"token {token}"}))
    data = json.loads(response.body)
    return data["fileId"], data["sessionId"]


class YClient:
    """One collaborator's replica of a notebook, kept in sync with the room."""

    def __init__(self, ws: WebSocketClientConnection) -> None:
        self.ws = ws
        self.doc = Doc()
        self.awareness = Awareness(self.doc)
        self.synced = asyncio.Event()
        self.closed: asyncio.Future[tuple[int | None, str | None]] = (
            asyncio.get_running_loop().create_future())
        self.peers: dict[int, Any] = {}  # awareness states seen, by client id
        self.replies: list[dict[str, Any]] = []  # jupyter raw messages (save replies)
        self._incoming = False
        self.doc.observe(self._send_local)
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, hub_url: str, server: str, path: str, token: str,
                      timeout: float = 15) -> YClient:
        file_id, session_id = await open_session(hub_url, server, path, token)
        ws = await room_socket(hub_url, server, f"json:notebook:{file_id}", session_id, token)
        client = cls(ws)
        await client.ws.write_message(create_sync_message(client.doc), binary=True)
        await asyncio.wait_for(client.synced.wait(), timeout)
        return client

    def _send_local(self, event: Any) -> None:
        if not self._incoming and not self.closed.done():
            self.ws.write_message(create_update_message(event.update), binary=True)

    async def _read(self) -> None:
        while True:
            message = await self.ws.read_message()
            if message is None:
                if not self.closed.done():
                    self.closed.set_result((self.ws.close_code, self.ws.close_reason))
                return
            assert isinstance(message, bytes)
            self._handle(message)

    def _handle(self, message: bytes) -> None:
        if message[0] == YMessageType.SYNC:
            self._incoming = True
            try:
                reply, synced = client_receive_sync(message, self.doc)
            finally:
                self._incoming = False
            if reply is not None:
                self.ws.write_message(reply, binary=True)
            if synced:
                self.synced.set()
        elif message[0] == YMessageType.AWARENESS:
            payload = read_message(message[1:])
            self.awareness.apply_awareness_update(payload, "remote")
            self.peers = dict(self.awareness.states)
        elif message[0] == 2:  # jupyter-collaboration's raw JSON messages
            self.replies.append(json.loads(Decoder(message[1:]).read_var_string()))

    # -- the notebook ----------------------------------------------------

    @property
    def cells(self) -> Array:
        return self.doc.get("cells", type=Array)

    def cell(self, cell_id: str) -> Map:
        for cell in self.cells:
            if cell.get("id") == cell_id:
                return cell
        raise KeyError(cell_id)

    def source(self, cell_id: str) -> str:
        return str(self.cell(cell_id)["source"])

    def type_into(self, cell_id: str, text: str, at: int = 0) -> None:
        source = self.cell(cell_id)["source"]
        assert isinstance(source, Text)
        source.insert(at, text)

    def ids(self) -> list[str]:
        return [str(c.get("id")) for c in self.cells]

    def state(self) -> Any:
        return self.cells.to_py()

    async def until(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"condition not met in {timeout}s; cells: {self.state()}")
            await asyncio.sleep(0.05)

    async def say(self, state: dict[str, Any], client_id: int | None = None) -> None:
        """Send an awareness state, optionally claiming another client id."""
        clock = 1
        cid = self.doc.client_id if client_id is None else client_id
        payload = _awareness_update(cid, clock, json.dumps(state))
        await self.ws.write_message(create_awareness_message(payload), binary=True)

    async def save(self, request_id: int) -> None:
        """Ask the room to save the document now (jupyter-collaboration's raw ``save``)."""
        encoder = Encoder()
        encoder.write_var_uint(2)
        encoder.write_var_string("save")
        encoder.write_var_uint(request_id)
        await self.ws.write_message(encoder.to_bytes(), binary=True)

    def close(self) -> None:
        close_socket(self.ws)
        self._reader.cancel()


def close_socket(ws: WebSocketClientConnection) -> None:
    """Close a websocket and release its socket now rather than after the closing
    handshake: the test's event loop may be gone by then, leaving it to the GC (a warning)."""
    ws.close()
    stream = getattr(ws.protocol, "stream", None)
    if stream is not None:
        stream.close()


def _awareness_update(client_id: int, clock: int, state: str) -> bytes:
    encoder = Encoder()
    encoder.write_var_uint(1)
    encoder.write_var_uint(client_id)
    encoder.write_var_uint(clock)
    encoder.write_var_string(state)
    return encoder.to_bytes()


async def room_socket(hub_url: str, server: str, room: str, session_id: str,
                      token: str) -> WebSocketClientConnection:
    url = (hub_url.replace("http", "ws", 1)
           + f"/user/{server}/api/collaboration/room/{room}?sessionId={session_id}")
    return await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))


async def refused_status(hub_url: str, server: str, path: str, token: str) -> int:
    """The HTTP status a user gets when opening the room of ``path`` (101 if let in)."""
    try:
        file_id, session_id = await open_session(hub_url, server, path, token)
    except HTTPClientError as e:
        return e.code
    try:
        ws = await room_socket(hub_url, server, f"json:notebook:{file_id}", session_id, token)
    except HTTPClientError as e:
        return e.code
    ws.close()
    return 101
