"""A real y-sync client (pycrdt) for jupyter-collaboration rooms, through the proxy.

The one client of the integration tests and the benchmarks.  Tests use the
polling ``until``; benchmarks use ``when`` (a wait that ends on the very frame
that satisfies it), ``type`` (an edit whose send is awaited, so that a burst of
edits goes as fast as the websocket takes them) and, for many idle readers,
``replica=False`` (frames are counted, not applied: a hundred replicas in one
process would weigh on what is measured).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
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
    YSyncMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    read_message,
)
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from hub_rtc.guard.frames import client_receive_sync
from hub_rtc.localhub import REPO

#: the first two bytes of a document update frame (sync, update)
UPDATE_FRAME = bytes((YMessageType.SYNC, YSyncMessageType.SYNC_UPDATE))
#: the first two bytes of the room's answer to our state (sync, step 2)
STEP2_FRAME = bytes((YMessageType.SYNC, YSyncMessageType.SYNC_STEP2))


async def open_session(hub_url: str, server: str, path: str, token: str) -> tuple[str, str]:
    """PUT …/api/collaboration/session/<path>: returns (fileId, sessionId)."""
    response = await AsyncHTTPClient().fetch(HTTPRequest(
        f"{hub_url}/user/{server}/api/collaboration/session/{quote(path)}", method="PUT",
        body=json.dumps({"format": "json", "type": "notebook"}),
        headers={"Authorization": f"token {token}"}))
    data = json.loads(response.body)
    return data["fileId"], data["sessionId"]


class YClient:
    """One collaborator's replica of a notebook, kept in sync with the room.

    With ``replica=False`` the client keeps no document: it only counts the
    update frames it receives (``updates``) and is ``synced`` on the room's
    first step 2, as a reader that needs no state.
    """

    def __init__(self, ws: WebSocketClientConnection, replica: bool = True) -> None:
        self.ws = ws
        self.replica = replica
        self.doc: Doc = Doc()
        self.awareness = Awareness(self.doc)
        self.synced = asyncio.Event()
        self.closed: asyncio.Future[tuple[int | None, str | None]] = (
            asyncio.get_running_loop().create_future())
        self.peers: dict[int, Any] = {}  # awareness states seen, by client id
        self.replies: list[dict[str, Any]] = []  # jupyter raw messages (save replies)
        self.updates = 0  # document update frames received
        self._incoming = False
        self._last_send: Awaitable[None] | None = None
        self._waits: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self.doc.observe(self._send_local)
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, hub_url: str, server: str, path: str, token: str,
                      timeout: float = 15) -> YClient:
        client = cls(await notebook_socket(hub_url, server, path, token))
        await client.hello()
        await asyncio.wait_for(client.synced.wait(), timeout)
        return client

    async def hello(self) -> None:
        """Send our state vector (sync step 1): the room answers with what we lack."""
        await self.ws.write_message(create_sync_message(self.doc), binary=True)

    def _send_local(self, event: Any) -> None:
        if not self._incoming and not self.closed.done():
            # Kept, not awaited: ``type`` awaits it; tests' edits just go out.
            self._last_send = self.ws.write_message(create_update_message(event.update), binary=True)

    async def _read(self) -> None:
        while True:
            message = await self.ws.read_message()
            if message is None:
                self._on_closed()
                return
            assert isinstance(message, bytes)
            self._handle(message)
            if self._waits:
                self._check_waits()

    def _on_closed(self) -> None:
        if not self.closed.done():
            self.closed.set_result((self.ws.close_code, self.ws.close_reason))
        for _, future in self._waits:
            if not future.done():
                future.set_exception(ConnectionError(f"room closed: {self.ws.close_reason}"))

    def _handle(self, message: bytes) -> None:
        if message[:2] == UPDATE_FRAME:
            self.updates += 1
        if not self.replica:
            if message[:2] == STEP2_FRAME:
                self.synced.set()
        elif message[0] == YMessageType.SYNC:
            self._receive_sync(message)
        elif message[0] == YMessageType.AWARENESS:
            payload = read_message(message[1:])
            self.awareness.apply_awareness_update(payload, "remote")
            self.peers = dict(self.awareness.states)
        elif message[0] == 2:  # jupyter-collaboration's raw JSON messages
            self.replies.append(json.loads(Decoder(message[1:]).read_var_string()))

    def _receive_sync(self, message: bytes) -> None:
        self._incoming = True  # what the room sends is not ours to send back
        try:
            reply, synced = client_receive_sync(message, self.doc)
        finally:
            self._incoming = False
        if reply is not None:
            self.ws.write_message(reply, binary=True)
        if synced:
            self.synced.set()

    # -- waits -----------------------------------------------------------

    def when(self, predicate: Callable[[], bool]) -> asyncio.Future[None]:
        """A future done once ``predicate()`` holds after some incoming frame (no
        polling: a benchmark's clock stops on the frame itself); failed if the room closes."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if predicate():
            future.set_result(None)
        else:
            self._waits.append((predicate, future))
        return future

    def seen(self, count: int) -> asyncio.Future[None]:
        """Done once this client has received ``count`` update frames in all."""
        return self.when(lambda: self.updates >= count)

    def _check_waits(self) -> None:
        still = []
        for predicate, future in self._waits:
            if future.done():
                continue
            if predicate():
                future.set_result(None)
            else:
                still.append((predicate, future))
        self._waits = still

    async def until(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"condition not met in {timeout}s; cells: {self.state()}")
            await asyncio.sleep(0.05)

    # -- the notebook ----------------------------------------------------

    @property
    def cells(self) -> Array:
        return self.doc.get("cells", type=Array)

    def cell(self, cell_id: str) -> Map:
        for cell in self.cells:
            if cell.get("id") == cell_id:
                return cell
        raise KeyError(cell_id)

    def text(self, cell_id: str) -> Text:
        """The cell's source as the shared text itself (it follows the room's edits)."""
        source = self.cell(cell_id)["source"]
        assert isinstance(source, Text)
        return source

    def source(self, cell_id: str) -> str:
        return str(self.text(cell_id))

    def type_into(self, cell_id: str, text: str, at: int = 0) -> None:
        self.text(cell_id).insert(at, text)

    async def type(self, text: Text, chars: str, at: int | None = None) -> None:
        """Insert ``chars`` (at the end by default) as one update, and wait until the
        websocket has taken it."""
        text.insert(len(text) if at is None else at, chars)
        if self._last_send is not None:
            sent, self._last_send = self._last_send, None
            await sent

    def ids(self) -> list[str]:
        return [str(c.get("id")) for c in self.cells]

    def state(self) -> Any:
        return self.cells.to_py()

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


async def room_socket(hub_url: str, server: str, room: str, session_id: str, token: str,
                      max_message_size: int | None = None) -> WebSocketClientConnection:
    """The room's websocket on ``server``, through the proxy (tornado's message limit
    unless ``max_message_size`` is given)."""
    url = (hub_url.replace("http", "ws", 1)
           + f"/user/{server}/api/collaboration/room/{room}?sessionId={session_id}")
    request = HTTPRequest(url, headers={"Authorization": f"token {token}"})
    if max_message_size is None:
        return await websocket_connect(request)
    return await websocket_connect(request, max_message_size=max_message_size)


async def notebook_socket(hub_url: str, server: str, path: str, token: str,
                          max_message_size: int | None = None) -> WebSocketClientConnection:
    """Open the collaboration session of notebook ``path`` on ``server``, then its room."""
    file_id, session_id = await open_session(hub_url, server, path, token)
    return await room_socket(hub_url, server, f"json:notebook:{file_id}", session_id, token,
                             max_message_size)


async def refused_status(hub_url: str, server: str, path: str, token: str) -> int:
    """The HTTP status a user gets when opening the room of ``path`` (101 if let in)."""
    try:
        ws = await notebook_socket(hub_url, server, path, token)
    except HTTPClientError as e:
        return e.code
    ws.close()
    return 101


async def yjs_cells(hub_url: str, server: str, path: str, token: str, cell_id: str,
                    text: str = "", wait_ms: int = 500) -> list[dict[str, Any]]:
    """Run the stock Yjs client (npm yjs + y-websocket, ``yjs_client.mjs``) on notebook
    ``path``: it syncs, types ``text`` at the start of ``cell_id``'s source, waits
    ``wait_ms`` and returns the cells it then holds."""
    node = shutil.which("node")
    assert node, "node is needed for the Yjs client (./dev setup installs the rest)"
    script = REPO / ".node" / "yjs_client.mjs"  # beside the npm packages it imports
    shutil.copy(Path(__file__).with_name("yjs_client.mjs"), script)
    file_id, session_id = await open_session(hub_url, server, path, token)
    base = hub_url.replace("http", "ws", 1) + f"/user/{server}/api/collaboration/room"
    out = await asyncio.to_thread(
        subprocess.run, [node, str(script), base, f"json:notebook:{file_id}", session_id, token,
                         cell_id, text, str(wait_ms)],
        capture_output=True, text=True, timeout=60, check=True)
    return list(json.loads(out.stdout))
