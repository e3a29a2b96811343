"""The guarded room's logic for one connection: client frames in, what to do out.

No tornado and no network: :class:`RoomConnection` holds what one websocket
of a collaboration room needs (the access the service gave, the room's
:class:`~.roomguards.RoomGuard`, the awareness pin, the burst of
refused updates, the activity tally and presence accounting), takes each
frame the client sends and says what becomes of it.  The tornado handler in
:mod:`.room` authenticates, asks the gate, and feeds it::

    conn = RoomConnection(room_id, doc_path, name, tally=tally, presence=presence, log=log)
    conn.set_access(access)                # the service's answer, again after every re-check
    conn.follow(guards, room)              # once the room exists, before any client frame
    conn.joined()
    forward, close = conn.receive(frame)   # per frame: to the room, and how to close
    close = conn.recheck(fresh_access)     # the service pushed a change
    conn.left()

What each frame becomes:

- SYNC_STEP2 / SYNC_UPDATE in a document room: checked by the room's guard.
  Refused parts are reverted and the room receives the authorized result.
  Nothing goes back to the sender directly: the room sends every change it
  applies to all its clients, the sender included, so the revert reaches the
  sender that way and every replica converges on the authorized state.
- awareness: pinned to the connection's client id, ``user`` rewritten with
  the identity the service gave.
- ``save`` from a user who may not write: not performed.
- anything else: passed on as it came.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..decision.access import Access
from ..guard import AwarenessPin, FrameError, FrameKind, Verdict, frames
from ..protocol import ACCESS_WITHDRAWN, BAD_REQUEST, TOO_LARGE
from .counting import edited_cells, refusal
from .presence import PresenceReporter
from .roomguards import RoomGuard, RoomGuards
from .roomid import RoomId
from .tally import Tally

#: a connection sending this many refused updates within REFUSED_WINDOW
#: seconds is closed: each one costs a revert
REFUSED_BURST = 200
REFUSED_WINDOW = 10.0


@dataclass(frozen=True)
class Close:
    """Close the connection with this websocket close code and reason."""

    code: int
    reason: str


#: what to do with one client frame: the frame to pass on to the room (None:
#: nothing), and how to close the connection (None: keep it open).  A plain
#: tuple: one is made per keystroke.
Outcome = tuple[bytes | None, Close | None]

_NOTHING: Outcome = (None, None)
_WITHDRAWN = Close(ACCESS_WITHDRAWN, "hub_rtc: access withdrawn")
_UPDATES = frozenset({FrameKind.SYNC_STEP2, FrameKind.SYNC_UPDATE})


class RoomConnection:
    """One client's connection to one room, as the guard sees it.

    ``name`` is the hub user, ``doc_path`` the file behind a document room
    (from the server's root; None for other rooms).  Until :meth:`set_access`
    the connection may do nothing.
    """

    def __init__(self, room_id: RoomId, doc_path: str | None, name: str, *, tally: Tally,
                 presence: PresenceReporter, log: logging.Logger,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.room_id = room_id
        self.doc_path = doc_path
        self.name = name
        self.tally = tally
        self.presence = presence
        self.log = log
        self._clock = clock
        # read per frame: a plain attribute rather than two properties deep
        self._is_document = room_id.is_document
        self._pin = AwarenessPin()
        self._guard: RoomGuard | None = None
        self._refusals: list[float] = []
        self._present: str | None = None  # the session this connection counts as online in
        self.set_access(Access.none("not checked yet"))

    # -- what the user may do ------------------------------------------------

    @property
    def access(self) -> Access:
        """The service's answer, as it applies in this room (see :meth:`set_access`)."""
        return self._access

    def set_access(self, access: Access) -> None:
        """Take the service's answer; what every frame needs is derived here, once,
        rather than per keystroke."""
        if self._is_document:
            access = access.opened_as(self.room_id.type)
        self._access = access
        self._rights = access.rights()
        self._session_path = access.relative(self.doc_path or "")

    def recheck(self, fresh: Access) -> Close | None:
        """The service's answer after it said access may have shrunk: from now on
        the connection has ``fresh``; it is closed if it may no longer read."""
        close = None
        if not fresh.read:
            self.log.info("hub_rtc: closing %s's room socket: %s", self.name, fresh.reason)
            close = _WITHDRAWN
        self.set_access(fresh)
        return close

    # -- lifecycle -----------------------------------------------------------

    def follow(self, guards: RoomGuards, room: Any) -> None:
        """Use the guard of ``room`` (the live room, with its ``ydoc``).

        Call once the room exists and before its first client frame.  The guard's
        mirror is made from the room's document when an update first needs it, and
        follows the document from then on.  Other rooms than documents have no guard.
        """
        if self._is_document:
            self._guard = guards.for_room(room)

    def joined(self) -> None:
        """The connection is open: count the join, show the user online in the session."""
        self._count("join")
        self._present = self._access.session_id if self._is_document else None
        if self._present:
            self.presence.enter(self._present, self.name)

    def left(self) -> None:
        """The connection closed after :meth:`joined`."""
        self._count("leave")
        if self._present:
            self.presence.leave(self._present, self.name)
            self._present = None

    # -- every frame ---------------------------------------------------------

    def receive(self, message: bytes) -> Outcome:
        """What becomes of one frame from the client (see the module docstring)."""
        try:
            kind = frames.classify(message)
        except FrameError as e:
            if message[:1] == b"\x00":
                # a document update nobody can read: this client has lost the thread
                return None, self._refuse_frame(f"malformed sync message ({e})")
            # other message types the stock room would ignore too
            self.log.debug("hub_rtc: dropped an unknown message: %s", e)
            return _NOTHING
        if kind in _UPDATES and self._is_document:
            return self._guard_update(kind, message)
        if kind is FrameKind.AWARENESS:
            return self._rewrite_awareness(message), None
        if kind is FrameKind.SAVE:
            if not self._access.write:
                self._count("refused")
                return _NOTHING
            self._count("save")
        return message, None

    def _guard_update(self, kind: FrameKind, message: bytes) -> Outcome:
        guard = self._guard
        if guard is None:
            raise RuntimeError("hub_rtc: a document update before the room's guard was followed")
        if guard.stale:
            # The mirror lost step with the room since the last check: it followed an
            # update it could not integrate (the update store can lack updates that
            # later stored ones depend on, and a room loads them all).  Judging against
            # the room's document as it is now is what a fresh guard does; closing would
            # punish this client.
            self.log.warning("hub_rtc: the guard of %s had lost step with the room; rebuilt "
                             "from it", self.doc_path)
            guard.reset()
        verdict = guard.check(frames.sync_payload(message), self._rights)
        self._attribute(verdict)
        if verdict.pending:
            # Cannot be checked, so cannot be let in; the client resyncs on reconnect.
            if guard.stale:
                guard.reset()
            # 4413: well-formed but beyond the guard's limits (size, nesting)
            code = TOO_LARGE if verdict.limit else BAD_REQUEST
            why = verdict.reason or "update out of order; reconnecting"
            return None, Close(code, f"hub_rtc: {why}"[:120])
        if verdict.forward is None:
            return _NOTHING
        if verdict.accepted:
            return message, None
        close = self._note_refusal()
        return frames.sync_frame(kind, verdict.forward), close

    def _rewrite_awareness(self, message: bytes) -> bytes | None:
        payload = frames.awareness_payload(message)
        rewritten = self._pin.rewrite(payload, self._access.awareness_user(self.name))
        return None if rewritten is None else frames.awareness_frame(rewritten)

    def _refuse_frame(self, why: str) -> Close:
        self.log.warning("hub_rtc: %s from %s", why, self.name)
        return Close(BAD_REQUEST, f"hub_rtc: {why}")

    def _note_refusal(self) -> Close | None:
        now = self._clock()
        self._refusals = [t for t in self._refusals if now - t < REFUSED_WINDOW] + [now]
        if len(self._refusals) > REFUSED_BURST:
            return self._refuse_frame("too many refused updates")
        return None

    # -- attribution ---------------------------------------------------------

    def _attribute(self, verdict: Verdict) -> None:
        # what counts as an edit and as a refusal is one set of rules (.counting):
        # cells a person changed, and one refusal per refused update
        for cell_id in edited_cells(verdict):
            self._count("edit", cell_id)
        refused = refusal(verdict)
        if refused is not None:
            self._count("refused", refused.cell_id)

    def _count(self, kind: str, cell_id: str | None = None) -> None:
        session_id = self._access.session_id
        if session_id is None or not self._is_document:
            return
        # paths as the session names them, like its cell rules: below its root folder
        self.tally.add(session_id, self.name, kind, self._session_path, cell_id)
