"""Which question to ask about a request: pure, so it is tested without a server.

jupyter_server hands the Authorizer a coarse ``(action, resource)`` pair such
as ``("write", "contents")``.  Confining a collaborator to a session folder
needs the *path* as well, which lives in the URL (or, for a few endpoints, in
the body).  :func:`target` turns one request into a :class:`Target`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from .roomid import ROOM_ROUTE, RoomId, RoomIdError, parse_room_id

#: What must hold: rights on a path, membership somewhere on this server,
#: the terminal right, or nothing can make it allowed.
Scope = Literal["path", "server", "terminal", "deny"]

#: resources whose URL names a file or folder
PATH_RESOURCES = frozenset({"contents", "files", "nbconvert"})
#: resources a member may read for JupyterLab to work, never write:
#: writing them would change the server owner's configuration.
READ_ONLY_RESOURCES = frozenset({
    "api", "config", "csp", "lab", "licenses", "listings", "settings", "themes", "translations",
})
#: JupyterLab's own API (jupyterlab_server and jupyterlab): settings, workspaces,
#: the extension, plugin and build managers, listings, translations, news.
#: Its handlers skip the Authorizer; :mod:`.unchecked` makes them ask it.
LAB_API = "lab/api/"
#: parts of it that are the server owner's even to read: workspaces hold the
#: owner's layout and the names of the files they had open, and a collaborator's
#: JupyterLab restoring it would reach for files outside the session folder
OWNERS_LAB_PARTS = frozenset({"workspaces"})
#: resources about kernels: reading them is only useful to, and so only open
#: to, those who may run code somewhere on this server (a viewer's JupyterLab
#: then offers "No Kernel" instead of failing to start one)
KERNEL_RESOURCES = frozenset({"kernels", "kernelspecs", "sessions"})
SESSION_ROUTE = "api/collaboration/session/"
#: jupyter-collaboration's side doors into a document's history and forks:
#: each can change the document outside the guarded room, so even reading
#: them needs write rights.  Their last URL part is a room id or a path.
SIDE_DOORS_BY_ROOM = ("api/collaboration/fork/", "api/collaboration/undo_redo/")
SIDE_DOORS_BY_PATH = ("api/collaboration/timeline/",)


@dataclass(frozen=True)
class Target:
    scope: Scope
    action: str  # read | write | execute
    path: str | None = None
    room: RoomId | None = None  # resolve to a path through the file id manager
    kernel_id: str | None = None  # resolve to a notebook path through the session manager
    why: str = ""


def clean_path(raw: str | None) -> str | None:
    """An API path without surrounding slashes; None when it climbs out (``..``)."""
    if raw is None:
        return None
    path = unquote(raw).strip("/")
    if any(part in ("..", ".") for part in path.split("/")) or "\\" in path or "\0" in path:
        return None
    return path


def target(
    method: str,
    relative_url: str,
    resource: str,
    action: str,
    path_kwargs: dict[str, str],
    body: bytes = b"",
) -> list[Target]:
    """Every check a request needs (all must pass); ``relative_url`` is below the base URL."""
    url = relative_url.lstrip("/")
    by_route = _by_route(url, action)
    if by_route is not None:
        return [by_route]
    if resource in PATH_RESOURCES:
        return _path_targets(method, action, path_kwargs.get("path", _tail(url)), body)
    return _by_resource(method, resource, action, path_kwargs, body)


def _by_route(url: str, action: str) -> Target | None:
    """Routes whose URL says more than the coarse resource jupyter_server names."""
    if url.startswith(ROOM_ROUTE):
        return _room_target(action, url[len(ROOM_ROUTE):])
    if url.startswith(SESSION_ROUTE):
        # a PUT that only looks up (or indexes) the file's id: opening, not writing
        return _path_target("read", url[len(SESSION_ROUTE):])
    for prefix in SIDE_DOORS_BY_ROOM:
        if url.startswith(prefix):
            return _room_target("write", url[len(prefix):])
    for prefix in SIDE_DOORS_BY_PATH:
        if url.startswith(prefix):
            return _path_target("write", url[len(prefix):])
    if url.startswith(LAB_API):
        return _lab_target(action, url[len(LAB_API):])
    if url == "api/nbconvert":  # the list of export formats, no file
        return _read_or_deny(action, "nbconvert")
    if url == "api/me" and action != "read":
        return Target("deny", action, why="identities come from the hub and the hub_rtc service")
    return None


def _by_resource(method: str, resource: str, action: str, path_kwargs: dict[str, str],
                 body: bytes) -> list[Target]:
    if resource in KERNEL_RESOURCES and action == "read":
        return [Target("path", "execute")]  # anywhere on this server
    if resource == "kernels":
        return [_kernel_target(action, path_kwargs.get("kernel_id"))]
    if resource == "sessions":
        return _session_targets(method, action, body)
    if resource == "terminals":
        return [Target("terminal", action)]
    if resource == "server":
        return [Target("deny", action, why="only the server's owner may manage the server")]
    if resource == "events":
        return [Target("deny", action, why="the server's event stream reports on every file and "
                                           "kernel on it, not only the session folder's")]
    if action == "read":
        return [Target("server", "read")]
    if resource in READ_ONLY_RESOURCES:
        return [Target("deny", action, why=f"collaborators may not change {resource}")]
    return [Target("deny", action, why=f"unknown resource {resource!r}")]


def _lab_target(action: str, rest: str) -> Target:
    part = rest.split("/", 1)[0]
    if part in OWNERS_LAB_PARTS:
        return Target("deny", action, why=f"JupyterLab {part} are the server owner's: collaborators "
                                          "keep their layout in their browser only")
    return _read_or_deny(action, f"JupyterLab {part or 'API'}")


def _read_or_deny(action: str, what: str) -> Target:
    """Members may read ``what``; changing it would change the server owner's."""
    if action == "read":
        return Target("server", "read")
    return Target("deny", action, why=f"collaborators may not change this server's {what}")


def _room_target(action: str, raw: str) -> Target:
    """``raw`` is the undecoded URL tail: read exactly as jupyter-collaboration reads it."""
    try:
        room = parse_room_id(raw)
    except RoomIdError as e:
        return Target("deny", action, why=str(e))
    if room.kind == "awareness":
        return Target("server", "read")
    if room.kind == "transient":  # forks and other rooms the guard does not watch
        return Target("deny", action, why="only document rooms are open to collaborators")
    return Target("path", action, room=room)


def _tail(url: str) -> str:
    """The path part of ``files/<path>`` or ``nbconvert/<format>/<path>``-style URLs."""
    parts = url.split("/", 2 if url.startswith("nbconvert/") else 1)
    return parts[-1] if len(parts) > 1 else ""


def _path_target(action: str, raw: str) -> Target:
    path = clean_path(raw)
    if path is None:
        return Target("deny", action, why="paths may not climb out of the session folder")
    return Target("path", action, path=path)


def _path_targets(method: str, action: str, raw: str, body: bytes) -> list[Target]:
    out = [_path_target(action, raw)]
    model = _json(body) if method in ("PATCH", "POST", "PUT") else {}
    if method == "PATCH" and "path" in model:  # rename: the new place must be writable too
        out.append(_path_target("write", str(model["path"])))
    if model.get("copy_from"):  # copy: the source must be readable
        out.append(_path_target("read", str(model["copy_from"])))
    return out


def _kernel_target(action: str, kernel_id: str | None) -> Target:
    return Target("path", "execute", kernel_id=kernel_id)


def _session_targets(method: str, action: str, body: bytes) -> list[Target]:
    model = _json(body)
    if method == "POST" or "path" in model:
        return [_path_target("execute", str(model.get("path", "")))]
    return [Target("path", "execute")]  # PATCH/DELETE of a session: execute somewhere here


def _json(body: bytes) -> dict[str, object]:
    try:
        value = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
