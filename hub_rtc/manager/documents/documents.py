"""Documents of a session, read and changed through the shared server's room.

Every request checks here first what the room would check (the token's scope,
then the same decision the room enforces: role, locked and assigned cells), so a
refusal costs no connection and sends nothing.  Then it opens the notebook's
room *as the token's user* (the opener asserts that user to the shared server),
syncs a replica, and applies one change.  The room still enforces and attributes
the edit to that user; if it reverts the change anyway, the request fails.

The opener is a parameter: the web layer passes one over its upstream client,
the tests an in-memory room.  Nothing here speaks HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from ...decision import Resource
from ...documents import (
    BadEdit,
    CellNotFound,
    Change,
    DocumentClient,
    DocumentError,
    NoAnswer,
    Outcome,
    append_source,
    cell_json,
    delete_cell,
    find_cell,
    insert_cell,
    replace_source,
)
from ...protocol import Channel
from ..access.decisions import Decisions
from ..activity.activity import Activity
from ..actor import SCOPE_DOCUMENTS_READ, SCOPE_DOCUMENTS_WRITE, Actor
from ..context import Context
from ..errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from ..hosting.hosting import server_label
from ..ports import HostingError, RoomOpener, ServerKey
from ..sessions.sessions import Sessions
from .place import Place, document, located
from .place import place as find_place
from .replicas import Replicas

log = logging.getLogger("hub_rtc.documents")

class Documents:
    def __init__(self, ctx: Context, sessions: Sessions, decisions: Decisions,
                 timeout: float = 15.0, replica_seconds: float = 30.0,
                 activity: Activity | None = None) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.decisions = decisions
        #: where a change refused here is counted (None: not counted)
        self.activity = activity
        #: how long the room may take to answer one step
        self.timeout = timeout
        #: warm replicas kept between calls (None: a room opened and synced per call)
        self.replicas = Replicas(replica_seconds, timeout) if replica_seconds > 0 else None

    async def place(self, actor: Actor, session_id: str, path: str, *, doc_type: str | None = None,
                    notebooks_only: bool = False, relayed: bool = False) -> Place:
        """Where a document of the session lives, for the relay, this API and the pages
        (see :func:`~hub_rtc.manager.documents.place.place`)."""
        return await find_place(self.sessions, actor, session_id, path, doc_type=doc_type,
                                notebooks_only=notebooks_only, relayed=relayed)

    # -- the operations ------------------------------------------------------

    async def read(self, actor: Actor, session_id: str, path: str, rooms: RoomOpener) -> dict[str, Any]:
        """The live notebook as nbformat JSON."""
        if not (actor.has(SCOPE_DOCUMENTS_READ) or actor.has(SCOPE_DOCUMENTS_WRITE)):
            raise Forbidden(f"reading documents needs the {SCOPE_DOCUMENTS_READ} scope")
        place = await self._place(actor, session_id, path, "read", None)
        async with self._replica(actor, place, rooms) as client:
            return client.notebook()

    async def replace_source(self, actor: Actor, session_id: str, path: str, cell_id: str,
                             source: str, rooms: RoomOpener) -> dict[str, Any]:
        return await self._edit(actor, session_id, path, cell_id, rooms,
                                lambda doc: replace_source(doc, cell_id, source))

    async def append_source(self, actor: Actor, session_id: str, path: str, cell_id: str,
                            text: str, rooms: RoomOpener) -> dict[str, Any]:
        return await self._edit(actor, session_id, path, cell_id, rooms,
                                lambda doc: append_source(doc, cell_id, text))

    async def insert_cell(self, actor: Actor, session_id: str, path: str, body: dict[str, Any],
                          rooms: RoomOpener) -> dict[str, Any]:
        """Insert a cell (``index``, ``cell_type``, ``source`` from ``body``); returns it with its id."""
        index, kind, source = body.get("index"), body.get("cell_type", "code"), body.get("source", "")
        return await self._edit(actor, session_id, path, None, rooms,
                                lambda doc: insert_cell(doc, index, kind, source))

    async def delete_cell(self, actor: Actor, session_id: str, path: str, cell_id: str,
                          rooms: RoomOpener) -> None:
        await self._edit(actor, session_id, path, cell_id, rooms,
                         lambda doc: delete_cell(doc, cell_id))

    # -- checks before anything is sent ---------------------------------------

    async def _place(self, actor: Actor, session_id: str, path: str, action: str,
                     cell_id: str | None) -> Place:
        """What :meth:`place` and then the decision say, from one transaction: this is
        every call's path (the same checks, the same order of refusals)."""
        try:
            clean, kind = document(path, notebooks_only=True)
            bad: Invalid | None = None
        except Invalid as e:
            clean, kind, bad = None, "notebook", e
        resource = Resource(session_id, clean, cell_id)
        found = await self.decisions.records(actor, resource)
        self.sessions.standing(actor, found.principal, found.view, session_id)  # who may see it, first
        if bad is not None:
            raise bad
        # (a path document() read; a session seen)
        assert clean is not None and found.serving is not None
        place = located(found.serving, clean, kind)
        decision = self.decisions.decide(found.principal, action, resource, found.view)
        if not decision.allowed:
            if action == "write" and self.activity is not None:
                # a member's change the rules refuse: refused here, so the room never
                # sees it and no server counts it; the instructor's page must still show it
                await self.activity.refused(session_id, actor.name, place.path, cell_id)
            raise Forbidden(f"{actor.name} may not {action} {_what(place.path, cell_id)}: "
                            f"{decision.reason}")
        return place

    # -- the room --------------------------------------------------------------

    @asynccontextmanager
    async def _replica(self, actor: Actor, place: Place, rooms: RoomOpener, *,
                       catch_up: bool = True) -> AsyncIterator[DocumentClient]:
        """A replica of the notebook, synced with its room as ``actor``: a warm one kept
        between calls (``catch_up``: synced once more first), or one opened for this
        call and closed afterwards."""
        try:
            async with self._client(actor, place, rooms, catch_up) as client:
                yield client
        except NoAnswer as e:
            raise Unavailable(f"the shared server did not answer for {place.path!r}: {e}") from None
        except (CellNotFound, BadEdit):
            raise
        except DocumentError as e:
            raise Unavailable(f"the connection to {place.path!r} on the shared server broke: {e}"
                              ) from None

    @asynccontextmanager
    async def _client(self, actor: Actor, place: Place, rooms: RoomOpener, catch_up: bool
                      ) -> AsyncIterator[DocumentClient]:
        if self.replicas is not None:
            key = (place.server, place.server_path, actor.name)
            opener = partial(self._open, actor, place, rooms)
            async with self.replicas.use(key, opener, catch_up=catch_up) as client:
                yield client
            return
        channel = await self._open(actor, place, rooms)
        client = DocumentClient(channel, timeout=self.timeout)
        try:
            await client.sync()
            yield client
        finally:
            client.forget()
            channel.close()

    async def _open(self, actor: Actor, place: Place, rooms: RoomOpener) -> Channel:
        try:
            return await rooms(place.server, place.server_path, actor.name)
        except (Forbidden, Unavailable):
            # the hub answers for a stopped server (403, 424, 503): say what is wrong
            if await self._stopped(place.server):
                raise Conflict(f"session {place.session_id} cannot serve documents now: "
                               f"{server_label(place.server)} is not running; start it and try again"
                               ) from None
            raise

    async def _stopped(self, server: ServerKey) -> bool:
        try:
            state = await self.ctx.directory.server(*server)
        except HostingError:
            return False  # cannot tell: keep the first answer
        return state is None or not state.ready

    async def _edit(self, actor: Actor, session_id: str, path: str, cell_id: str | None,
                    rooms: RoomOpener, edit: Callable[[Any], Change]) -> dict[str, Any]:
        if not actor.has(SCOPE_DOCUMENTS_WRITE):
            raise Forbidden(f"changing documents needs the {SCOPE_DOCUMENTS_WRITE} scope")
        place = await self._place(actor, session_id, path, "write", cell_id)
        try:
            # No catching up first: the change's confirmation is a sync, whose answer
            # brings what others changed meanwhile (one round trip to the room, not two).
            async with self._replica(actor, place, rooms, catch_up=False) as client:
                outcome = await _apply(client, edit)
                if not outcome.held:
                    log.info("the room reverted %s's change to %s", actor.name,
                             _what(place.path, outcome.change.cell_id))
                    raise Forbidden(
                        f"the shared server refused {actor.name}'s change to "
                        f"{_what(place.path, outcome.change.cell_id)} and reverted it "
                        "(the session's rules may have changed a moment ago)")
                return _cell_result(client, outcome.change.cell_id)
        except CellNotFound as e:
            raise NotFound(f"{place.path}: {e}") from None
        except BadEdit as e:
            raise Invalid(str(e)) from None


async def _apply(client: DocumentClient, edit: Callable[[Any], Change]) -> Outcome:
    """``edit`` made on the replica as it stands, which the room's broadcasts keep
    current: a cell or an index it does not know may be one made a moment ago, so
    it catches up once before saying so."""
    try:
        return await client.apply(edit)
    except (CellNotFound, BadEdit):
        await client.sync()
        return await client.apply(edit)


def _cell_result(client: DocumentClient, cell_id: str) -> dict[str, Any]:
    try:
        index, _ = find_cell(client.doc, cell_id)
    except CellNotFound:  # deleted
        return {"id": cell_id, "index": None, "cell": None}
    return {"id": cell_id, "index": index, "cell": cell_json(client.doc, cell_id)}


def _what(path: str, cell_id: str | None) -> str:
    return f"cell {cell_id!r} of {path!r}" if cell_id else repr(path)
