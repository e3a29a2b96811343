"""Which question to ask about a request: pure, so it is tested without a server.

jupyter_server hands the Authorizer a coarse ``(action, resource)`` pair such
as ``("write", "contents")``.  Confining a collaborator to a session folder
needs the *path* as well, which lives in the URL (or, for a few endpoints, in
the body).  :func:`target` turns one request into a :class:`Target`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from ..decision.access import Scope
from .roomid import ROOM_ROUTE, RoomId, RoomIdError, parse_room_id

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
#: jupyter_server_fileid's lookups: their path is in the query, which nothing
#: here reads, and the file id manager keeps absolute paths as they are
FILE_ID_ROUTE = "api/fileid/"
#: routes of the path resources whose path is the rest of the URL, not a named group
URL_PATH_ROUTES = ("files/", "nbconvert/")
#: what no path a collaborator names may hold: control characters; a backslash
#: (the file id manager turns it into "/"); a %-escape, which whatever decodes
#: it again would read as another path than the contents manager uses
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\\]|%[0-9A-Fa-f]{2}")
REFUSED_PATH = ("paths must name a file in the session folder exactly as the server will use "
                "them: no '..', no leading '/', no %-escapes, backslashes, control characters "
                "or surrounding whitespace")


@dataclass(frozen=True)
class Target:
    scope: Scope
    action: str  # read | write | execute, as jupyter_server names them
    path: str | None = None
    room: RoomId | None = None  # resolve to a path through the file id manager
    kernel_id: str | None = None  # resolve to a notebook path through the session manager
    why: str = ""
    #: resolve to the current path of this notebook session (jupyter_server's session id)
    notebook_session: str | None = None
    #: with ``kernel_id``: a kernel that does not exist yet will be started fresh, and
    #: so is no one's (a notebook session created with a kernel id of its own choosing)
    new_kernel: bool = False
    #: opened as a collaborative document: only by its real path, never through a
    #: link (the guard reads cell rules by path, and saves through the link)
    document: bool = False


def clean_path(raw: object) -> str | None:
    """The API path ``raw`` names, or None when hub_rtc refuses it.

    ``raw`` must be the very string the contents manager will use: a URL part
    as tornado decoded it (once), a JSON body value as it is.  Nothing here
    decodes it again.  Refused: anything but a string; a leading ``/`` (the
    file id manager keeps absolute paths); ``.`` and ``..``; what
    :data:`_UNSAFE` matches; parts with surrounding whitespace (the service
    strips it, the file system does not: they would name different files).
    Empty parts are dropped, as the contents manager drops them.
    """
    if not isinstance(raw, str) or raw.startswith("/") or _UNSAFE.search(raw):
        return None
    parts = [part for part in raw.split("/") if part]
    if any(part in (".", "..") or part != part.strip() for part in parts):
        return None
    return "/".join(parts)


def url_arg(raw: str) -> str | None:
    """A raw URL part as tornado hands it to a handler: percent-decoded once, as UTF-8."""
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None  # tornado answers 400 before any handler runs


def _route_path(raw: str) -> str | None:
    """The path in the raw tail of a URL whose handler takes that tail as its path."""
    decoded = url_arg(raw)
    return None if decoded is None else clean_path(decoded)


def _kwarg_path(value: str) -> str | None:
    """The path in a ``path`` URL group: jupyter_server's path_regex puts one ``/`` first."""
    return clean_path(value[1:] if value.startswith("/") else value)


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
        return _path_resource_targets(method, url, action, path_kwargs, body)
    return _by_resource(method, resource, action, path_kwargs, body)


def _by_route(url: str, action: str) -> Target | None:
    """Routes whose URL says more than the coarse resource jupyter_server names."""
    if url.startswith(ROOM_ROUTE):
        return _room_target(action, url[len(ROOM_ROUTE):])
    if url.startswith(SESSION_ROUTE):
        # a PUT that only looks up (or indexes) the file's id: opening, not writing
        return _path_target("read", _route_path(url[len(SESSION_ROUTE):]), document=True)
    for prefix in SIDE_DOORS_BY_ROOM:
        if url.startswith(prefix):
            return _room_target("write", url[len(prefix):])
    for prefix in SIDE_DOORS_BY_PATH:
        if url.startswith(prefix):
            return _path_target("write", _route_path(url[len(prefix):]), document=True)
    if url.startswith(FILE_ID_ROUTE):
        return Target("deny", action, why="file ids are looked up through the collaboration "
                                          "session of a document (api/collaboration/session)")
    if url.startswith(LAB_API):
        return _lab_target(action, url[len(LAB_API):])
    if url == "api/nbconvert":  # the list of export formats, no file
        return _read_or_deny(action, "nbconvert")
    if url == "api/me" and action != "read":
        return Target("deny", action, why="identities come from the hub and the hub_rtc service")
    return None


def _by_resource(method: str, resource: str, action: str, path_kwargs: dict[str, str],
                 body: bytes) -> list[Target]:
    one = path_kwargs.get("kernel_id") or path_kwargs.get("session_id")
    if resource in KERNEL_RESOURCES and action == "read" and not one:
        return [Target("path", "execute")]  # lists and kernel specs: anywhere on this server
    if resource == "kernels":
        return [_kernel_target(action, path_kwargs.get("kernel_id"))]
    if resource == "sessions":
        return _session_targets(method, path_kwargs.get("session_id"), body)
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


def _path_target(action: str, path: str | None, document: bool = False) -> Target:
    """``path`` is already cleaned (:func:`clean_path`); None when it was refused."""
    if path is None:
        return Target("deny", action, why=REFUSED_PATH)
    return Target("path", action, path=path, document=document)


def _path_resource_targets(method: str, url: str, action: str, path_kwargs: Mapping[str, str],
                           body: bytes) -> list[Target]:
    """Contents, files and nbconvert: the path from where their handler takes it."""
    if "path" in path_kwargs:
        return _path_targets(method, action, _kwarg_path(path_kwargs["path"]), body)
    if url.startswith("nbconvert/") and url.count("/") < 2:  # a notebook in the body, no file
        return [Target("deny", action, why="collaborators export files of their session folder "
                                           "(nbconvert/<format>/<path>), not notebooks they send")]
    if url.startswith(URL_PATH_ROUTES):
        return _path_targets(method, action, _route_path(_tail(url)), body)
    return [Target("deny", action, why="hub_rtc cannot tell which file this request is about")]


def _path_targets(method: str, action: str, path: str | None, body: bytes) -> list[Target]:
    out = [_path_target(action, path)]
    if method not in ("PATCH", "POST"):
        return out  # a PUT's body names no other file (jupyter_server refuses copies by PUT)
    model = _json(body)
    if model is None:
        return [Target("deny", action, why="the request body is not a JSON object")]
    if method == "PATCH" and "path" in model:  # rename: the new place must be writable too
        out.append(_path_target("write", clean_path(model["path"])))
    if method == "POST" and model.get("copy_from"):  # copy: the source must be readable
        out.append(_path_target("read", clean_path(model["copy_from"])))
    return out


def _kernel_target(action: str, kernel_id: str | None) -> Target:
    if kernel_id is None:  # POST api/kernels: a kernel no notebook session places anywhere
        return Target("deny", action, why="collaborators start kernels through a notebook "
                                          "session in their session folder (POST api/sessions)")
    return Target("path", "execute", kernel_id=kernel_id)


def _session_targets(method: str, session_id: str | None, body: bytes) -> list[Target]:
    """Notebook sessions: the session's current place, the new one, and any kernel attached."""
    current = Target("path", "execute", notebook_session=session_id) if session_id else None
    if current is not None and method in ("GET", "DELETE"):
        return [current]
    if method not in ("POST", "PATCH") or (method == "PATCH") != (current is not None):
        return [Target("deny", "execute", why=f"no {method} of notebook sessions here")]
    model = _json(body)
    if model is None:
        return [Target("deny", "execute", why="the request body is not a JSON object")]
    if current is None:  # POST: a new notebook session
        return [_path_target("execute", clean_path(_new_session_path(model))),
                *_attached(model, new_kernel=True)]
    out = [current]
    moved = _moved_session_path(model)
    if moved is not _UNCHANGED:
        out.append(_path_target("execute", clean_path(moved)))
    return out + _attached(model, new_kernel=False)


#: a PATCH that leaves the notebook session's path as it is
_UNCHANGED = object()


def _new_session_path(model: dict[str, object]) -> object:
    """The path jupyter_server's POST api/sessions uses: the legacy ``notebook`` wins."""
    if "notebook" not in model:
        return model.get("path")
    notebook = model["notebook"]
    if not isinstance(notebook, dict):
        return None  # jupyter_server fails on it: refuse rather than guess
    if "name" in notebook:
        return notebook["name"]
    return notebook["path"] if "path" in notebook else model.get("path")


def _moved_session_path(model: dict[str, object]) -> object:
    """The new path jupyter_server's PATCH api/sessions/<id> sets, or :data:`_UNCHANGED`."""
    notebook = model.get("notebook", {})
    if not isinstance(notebook, dict):
        return None
    if "path" in notebook:
        return notebook["path"]
    return model["path"] if "path" in model else _UNCHANGED


def _attached(model: dict[str, object], new_kernel: bool) -> list[Target]:
    """A kernel a notebook session is attached to by id: its notebooks must be reachable too."""
    if "kernel" not in model:
        return []
    kernel = model["kernel"]
    if not isinstance(kernel, dict):
        return [Target("deny", "execute", why="'kernel' must be an object")]
    kernel_id = kernel.get("id")
    if kernel_id is None:
        return []  # a new kernel by name, for the notebook session's own path
    if not isinstance(kernel_id, str):
        return [Target("deny", "execute", why="a kernel id is a string")]
    return [Target("path", "execute", kernel_id=kernel_id, new_kernel=new_kernel)]


def _json(body: bytes) -> dict[str, object] | None:
    """The body exactly as jupyter_server's ``get_json_body()`` reads it: stripped of
    ASCII whitespace (form feed and vertical tab too, which JSON does not allow),
    then UTF-8.  ``{}`` when empty; None when it is not a JSON object."""
    if not body:
        return {}
    try:
        value = json.loads(body.strip().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
