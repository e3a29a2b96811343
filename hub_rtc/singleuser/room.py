"""The guarded collaboration room: jupyter-collaboration's room websocket,
with every document update from a connection checked against that user's
rights by :mod:`hub_rtc.guard`.

What changes compared with the stock handler, message by message:

- SYNC_STEP2 / SYNC_UPDATE: checked by the room's :class:`DocumentGuard`;
  refused parts are reverted and the room receives the authorized result,
  so every replica (the sender's too) converges on it.
- awareness: pinned to the connection's client id, ``user`` rewritten with
  the identity the service gave.
- ``save`` from a user who may not write: not performed.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import ensure_async
from jupyter_server_ydoc.handlers import YDocWebSocketHandler
from tornado import web

from ..guard import AwarenessPin, DocumentGuard, FrameError, FrameKind, Limits, Verdict, frames
from ..protocol import ACCESS_WITHDRAWN, BAD_REQUEST, TOO_LARGE
from .access import Access
from .authorizer import hub_name, narrowed, on_behalf, room_path
from .gate import OWNER
from .roomid import RoomId, RoomIdError, parse_room_id, room_tail

#: a connection sending this many refused updates within REFUSED_WINDOW
#: seconds is closed: each one costs a revert
REFUSED_BURST = 200
REFUSED_WINDOW = 10.0


class RoomGuards:
    """One :class:`DocumentGuard` per live document room, following its doc."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._guards: weakref.WeakKeyDictionary[Any, tuple[DocumentGuard, Any]] = (
            weakref.WeakKeyDictionary())

    def for_room(self, room: Any) -> DocumentGuard:
        found = self._guards.get(room)
        if found is None:
            guard = DocumentGuard(room.ydoc.get_update(), limits=self.limits)
            # Whatever the room's doc accepts (other clients, the file on disk,
            # the ystore) the mirror follows, in the same transaction order.
            subscription = room.ydoc.observe(lambda event: guard.follow(event.update))
            found = (guard, subscription)
            self._guards[room] = found
        return found[0]

    def reset(self, room: Any) -> None:
        found = self._guards.get(room)
        if found is not None:
            found[0].reset(room.ydoc.get_update())


class GuardedRoomHandler(YDocWebSocketHandler):
    """``/api/collaboration/room/<room id>``, taken over from jupyter_server_ydoc."""

    hub_rtc_watches_itself = True

    def initialize(self, hub_rtc: Any) -> None:  # type: ignore[override]
        self.rtc = hub_rtc
        super().initialize(**hub_rtc.room_handler_kwargs())
        self._room_ref = RoomId("transient", "")
        self._doc_path: str | None = None
        self._name = ""
        self._set_access(Access.none("not checked yet"))
        self._pin = AwarenessPin()
        self._watch_key: int | None = None
        self._decided_at = -1
        self._refusals: list[float] = []
        self._present: str | None = None  # the session this socket counts as online in

    # -- who may connect -------------------------------------------------

    async def prepare(self) -> None:
        # Authenticate and authorize BEFORE the stock prepare() creates the
        # room and loads the document: a non-member gets 403 and nothing loads.
        await ensure_async(JupyterHandler.prepare(self))  # type: ignore[arg-type]
        user = self.current_user
        if user is None:
            raise web.HTTPError(403, "hub_rtc: sign in to open this document")
        self._room_ref = self._read_room_id()
        self._doc_path = room_path(self.settings, self._room_ref)
        if self._room_ref.is_document and self._doc_path is None:
            raise web.HTTPError(404, "hub_rtc: no document on this server has that file id")
        self._set_access(await self._decide())
        self._decided_at = self.rtc.gate.epoch  # a push after this is re-checked in open()
        self._name = hub_name(user)
        if not self._access.read:
            raise web.HTTPError(403, f"hub_rtc: {self._access.reason or 'not a member'}")
        if self._room_ref.kind == "transient" and not self._is_server_owner():
            raise web.HTTPError(403, "hub_rtc: only document rooms are open to collaborators")
        await super().prepare()
        # jupyter-collaboration read the room id again, its own way: it must be this one
        if getattr(self, "_room_id", None) != self._room_ref.raw:
            raise web.HTTPError(500, "hub_rtc: jupyter-collaboration opened another room")

    def _read_room_id(self) -> RoomId:
        """The room id from the raw request path, as jupyter-collaboration will read it."""
        try:
            return parse_room_id(room_tail(self.request.path, self.base_url) or "")
        except RoomIdError as e:
            raise web.HTTPError(400, f"hub_rtc: {e}") from None

    def _set_access(self, access: Access) -> None:
        """Keep what every message needs ready, rather than derive it per keystroke."""
        access = access.opened_as(self._room_ref.type) if self._room_ref.is_document else access
        self._access = access
        self._rights = access.rights()
        self._session_path = access.relative(self._doc_path or "")

    def _is_server_owner(self) -> bool:
        return self.rtc.gate.is_owner(hub_name(self.current_user)) and not on_behalf(self.current_user)

    async def _decide(self, fresh: bool = False) -> Access:
        name = hub_name(self.current_user)
        if self._is_server_owner():
            # full rights; the service's answer only names the session and identity
            ident = await self.rtc.gate.access(name, self._doc_path)
            return Access(**{**OWNER.__dict__, "identity": ident.identity,
                             "session_id": ident.session_id})
        # (None: JupyterLab's global awareness room, open to any member)
        access = await self.rtc.gate.access(name, self._doc_path, fresh=fresh)
        return narrowed(self.current_user, access)  # the service acting for someone: never more

    @property
    def _is_document(self) -> bool:
        return self._room_ref.is_document

    async def open(self, room_id: str) -> None:  # type: ignore[override]
        if self._is_document:
            self.rtc.guards.for_room(self.room)  # follow the doc before any client message
        if self._room_ref.is_notebook:
            self.rtc.disk.protect(self.room)  # before the room first loads its file
        await super().open(room_id)
        name = hub_name(self.current_user)
        self._watch_key = self.rtc.gate.watch(name, self._access.session_id, self._recheck)
        if self.rtc.gate.epoch != self._decided_at:  # rights changed while the room loaded
            await self._recheck()
        self._count("join")
        self._present = self._access.session_id if self._is_document else None
        if self._present:
            self.rtc.presence.enter(self._present, self._name)

    async def _recheck(self) -> None:
        """The service says access may have shrunk: ask again, close or narrow."""
        fresh = await self._decide(fresh=True)
        if not fresh.read:
            self.log.info("hub_rtc: closing %s's room socket: %s", hub_name(self.current_user),
                          fresh.reason)
            self.close(ACCESS_WITHDRAWN, "hub_rtc: access withdrawn")
        self._set_access(fresh)
        if self._room_ref.is_notebook:
            self.rtc.disk.refresh(self.room)  # rules may have changed: keep their baselines

    def on_close(self) -> None:
        if self._watch_key is not None:
            self.rtc.gate.unwatch(self._watch_key)
            self._watch_key = None
            self._count("leave")
        if self._present:
            self.rtc.presence.leave(self._present, self._name)
            self._present = None
        super().on_close()

    # -- every message ---------------------------------------------------

    async def on_message(self, message: Any) -> Any:
        if isinstance(message, str):
            message = message.encode()
        try:
            kind = frames.classify(message)
        except FrameError as e:
            if message[:1] == b"\x00":
                # a document update nobody can read: this client has lost the thread
                self._refuse_frame(f"malformed sync message ({e})")
            else:  # other message types the stock room would ignore too
                self.log.debug("hub_rtc: dropped an unknown message: %s", e)
            return None
        if kind in (FrameKind.SYNC_STEP2, FrameKind.SYNC_UPDATE) and self._is_document:
            message = self._guard_update(kind, message)
        elif kind == FrameKind.AWARENESS:
            message = self._rewrite_awareness(message)
        elif kind == FrameKind.SAVE and not self._access.write:
            self._count("refused")
            return None
        elif kind == FrameKind.SAVE:
            self._count("save")
        if message is None:
            return None
        return await super().on_message(message)

    def _guard_update(self, kind: FrameKind, message: bytes) -> bytes | None:
        guard = self.rtc.guards.for_room(self.room)
        verdict = guard.check(frames.sync_payload(message), self._rights)
        self._attribute(verdict)
        if verdict.pending:
            # Cannot be checked, so cannot be let in; the client resyncs on reconnect.
            if guard.stale:
                self.rtc.guards.reset(self.room)
            # 4413: well-formed but beyond the guard's limits (size, nesting)
            code = TOO_LARGE if verdict.limit else BAD_REQUEST
            self.close(code, f"hub_rtc: {verdict.reason or 'update out of order; reconnecting'}"[:120])
            return None
        if verdict.forward is None:
            return None
        if verdict.accepted:
            return message
        self._note_refusal()
        return frames.sync_frame(kind, verdict.forward)

    def _rewrite_awareness(self, message: bytes) -> bytes | None:
        payload = frames.awareness_payload(message)
        user = self._access.awareness_user(hub_name(self.current_user))
        rewritten = self._pin.rewrite(payload, user)
        return None if rewritten is None else frames.awareness_frame(rewritten)

    def _refuse_frame(self, why: str) -> None:
        self.log.warning("hub_rtc: %s from %s", why, hub_name(self.current_user))
        self.close(BAD_REQUEST, f"hub_rtc: {why}")

    def _note_refusal(self) -> None:
        now = time.monotonic()
        self._refusals = [t for t in self._refusals if now - t < REFUSED_WINDOW] + [now]
        if len(self._refusals) > REFUSED_BURST:
            self._refuse_frame("too many refused updates")

    # -- attribution -----------------------------------------------------

    def _attribute(self, verdict: Verdict) -> None:
        for touch in verdict.touched:
            kind = "execute" if touch.part == "execution_count" else "edit"
            self._count(kind, touch.cell_id)
        for touch in verdict.refused:
            self._count("refused", touch.cell_id)

    def _count(self, kind: str, cell_id: str | None = None) -> None:
        session_id = self._access.session_id
        if session_id is None or not self._is_document:
            return
        # paths as the session names them, like its cell rules: below its root folder
        self.rtc.tally.add(session_id, self._name, kind, self._session_path, cell_id)
