"""Where a session's document lives, and whether it can be reached now: one answer
for the relay, the document API and the pages.

:func:`place` reads a request's session and path once (the design's rule: the
path a room opens is the one that was authorized), and says no with the API's
errors before anything connects.  What a server answers when a room is opened
anyway, and why a room closes a connection, become the API's errors here too
(:func:`refusal`, :func:`closed`), so every way in says the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

from ...decision import Resource
from ...protocol import ACCESS_WITHDRAWN, BAD_REQUEST, NOT_FOUND
from ...records import RTCSession
from ..actor import Actor
from ..errors import Conflict, Forbidden, Invalid, NotFound, RTCError, Unavailable
from ..hosting.hosting import serves
from ..ports import OpenFailure, ServerKey
from ..sessions.sessions import Sessions
from ..validate import folder
from ..views import Serving

log = logging.getLogger("hub_rtc.documents")

DocType = Literal["notebook", "file"]
DOC_TYPES: tuple[DocType, ...] = ("notebook", "file")

#: hosting states in which the session's server cannot be serving its rooms, and why
NOT_SERVING = {
    "starting": "its server is still starting; try again in a moment",
    "waiting": "its server is not running with the hub_rtc extension announced; start it and try again",
    "failed": "its server could not be set up (see the session's hosting message)",
    "stopped": "its server was stopped",
}


@dataclass(frozen=True)
class Place:
    """Where one document of a session lives."""

    session_id: str
    #: the server's user and name
    server: ServerKey
    #: relative to the session's folder, as cell rules, the API and the relay URL name it
    path: str
    #: relative to the server's root, as its room names it
    server_path: str
    doc_type: DocType = "notebook"


async def place(sessions: Sessions, actor: Actor, session_id: str, path: str, *,
                doc_type: str | None = None, notebooks_only: bool = False,
                relayed: bool = False) -> Place:
    """The document ``path`` (below the session's folder) of session ``session_id``,
    for ``actor``.

    Raises NotFound or Forbidden first, for a session the actor cannot see
    (nothing more is said about it then); Invalid for a path outside the
    folder, a type other than :data:`DOC_TYPES` (by default: a notebook by
    its ``.ipynb``), or, with ``notebooks_only``, anything but a notebook;
    Conflict when the session cannot serve documents now.  ``relayed``: the
    relay also refuses a session whose hub access the service does not
    manage, since it reaches servers with the service's own access.
    """
    # the standing's records carry where the session is served: no second load
    found = await sessions.decisions.records(actor, Resource(session_id))
    sessions.standing(actor, found.principal, found.view, session_id)
    assert found.serving is not None  # standing() found the session
    clean, kind = document(path, doc_type, notebooks_only=notebooks_only)
    return located(found.serving, clean, kind, relayed=relayed)


def located(row: RTCSession | Serving, clean: str, kind: DocType, *, relayed: bool = False) -> Place:
    """The place of ``clean`` (from :func:`document`) in the session of ``row``, once the
    actor may see it; Conflict when the session cannot serve documents now."""
    _require_serving(row, relayed)
    return Place(row.id, (row.server_user, row.server_name), clean, on_server(row.root, clean), kind)


def document(path: str, doc_type: str | None = None, *,
             notebooks_only: bool = False) -> tuple[str, DocType]:
    """``path`` normalised, and the type of document it is opened as; Invalid if neither works."""
    clean = folder(path, "path")
    if notebooks_only and (not clean.endswith(".ipynb") or clean == ".ipynb"):
        raise Invalid(f"path: {path!r} is not a notebook (.ipynb) in the session's folder")
    if not clean:
        raise Invalid("path: name a document in the session's folder")
    kind = doc_type or ("notebook" if clean.endswith(".ipynb") else "file")
    if kind not in DOC_TYPES:
        raise Invalid(f"type must be one of {', '.join(DOC_TYPES)}")
    return clean, cast(DocType, kind)


def on_server(root: str, path: str) -> str:
    """A path below a session's folder as the server names it (from its root)."""
    return "/".join(p for p in (root.strip("/"), path) if p)


def _require_serving(row: RTCSession | Serving, relayed: bool) -> None:
    if row.state != "active":
        raise Conflict(f"session {row.id} has ended; its documents can no longer be opened")
    if relayed and row.hosting_state == "unmanaged":
        raise Conflict("the relay reaches shared servers with the service's own access, which it "
                       "has only with c.RTCService.manage_hub_access = True")
    if not serves(row.hosting_state):
        why = NOT_SERVING.get(row.hosting_state, f"its server is {row.hosting_state}")
        detail = f" ({row.hosting_message})" if row.hosting_message else ""
        raise Conflict(f"session {row.id} cannot serve documents now: {why}{detail}")


# -- what the server says -------------------------------------------------------------------


def refusal(failure: OpenFailure, path: str, user: str, doc_type: str = "notebook") -> RTCError:
    """The API's error for a room at ``path`` (on the server) that ``user`` could not open."""
    status, message = failure.status, failure.message
    if status in (401, 403):
        return Forbidden(f"the shared server did not let {user} open {path!r}: {message}")
    if status == 404:
        return _missing(path, doc_type)
    if failure.transient:
        return Unavailable(f"the session's server cannot be reached right now ({status}: "
                           f"{message}); start it, or try again in a moment")
    log.warning("the shared server answered %d opening %s for %s: %s", status, path, user, message)
    return Unavailable(f"the session's server answered {status} opening {path!r}: {message}")


def _missing(path: str, doc_type: str = "notebook") -> NotFound:
    return NotFound(f"no {doc_type} {path!r} on the session's server")


#: how jupyter-collaboration and the guarded room say why they closed a room socket:
#: the API's error for the document's path on the server and the close reason
CLOSE_ERRORS: dict[int, Callable[[str, str], RTCError]] = {
    NOT_FOUND: lambda path, _: _missing(path),
    ACCESS_WITHDRAWN: lambda path, why: Forbidden(f"the shared server withdrew access to {path!r} ({why})"),
    BAD_REQUEST: lambda path, why: Invalid(f"the shared server refused a message for {path!r} ({why})"),
    # jupyter-collaboration's: the document's session on the server was reset (reload)
    1003: lambda path, why: Conflict(f"the shared server reset its session of {path!r}; "
                                     f"try again ({why})"),
}


def closed(code: int | None, reason: str | None, path: str) -> RTCError | None:
    """The API's error for a room connection closed with ``code``; None for a room
    that just went away (the caller says that its own way)."""
    make = CLOSE_ERRORS.get(code) if code is not None else None
    return make(path, reason or "") if make is not None else None
