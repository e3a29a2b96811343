"""Which room a relay URL names: the session's server, and the document's path on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..manager.errors import Conflict, Invalid
from ..manager.validate import folder

#: hosting states in which the session's server cannot serve its rooms
NOT_SERVING = frozenset({"starting", "waiting", "failed", "stopped"})
DOC_TYPES = ("notebook", "file")


@dataclass(frozen=True)
class RoomPlace:
    #: the server's user and name
    server: tuple[str, str]
    #: relative to the session's folder, as the relay URL and cell rules name it
    path: str
    #: relative to the server's root, as its room names it
    server_path: str
    doc_type: str


def locate(session: dict[str, Any], path: str, doc_type: str | None = None) -> RoomPlace:
    """The room of ``path`` (below the session's folder) in ``session`` (its API form).

    Raises Invalid for a path outside the folder or an unknown type, and
    Conflict when the session cannot serve documents now.
    """
    clean = folder(path, "path")
    if not clean:
        raise Invalid("path: name a document in the session's folder")
    kind = doc_type or ("notebook" if clean.endswith(".ipynb") else "file")
    if kind not in DOC_TYPES:
        raise Invalid(f"type must be one of {', '.join(DOC_TYPES)}")
    if session.get("state") != "active":
        raise Conflict(f"session {session.get('id')} has ended; its documents are closed")
    hosting = (session.get("hosting") or {}).get("state")
    if hosting == "unmanaged":
        raise Conflict("the relay reaches shared servers with the service's own access, which it "
                       "has only with c.RTCService.manage_hub_access = True")
    if hosting in NOT_SERVING:
        raise Conflict(f"session {session.get('id')} cannot serve documents now: its server is "
                       f"{hosting} ({(session.get('hosting') or {}).get('message') or 'try again shortly'})")
    root = str(session.get("root") or "")
    server = session["server"]
    return RoomPlace((str(server["user"]), str(server.get("name") or "")), clean,
                     f"{root}/{clean}" if root else clean, kind)
