"""The shared server's pure parts: which question a request asks, what an
answer permits, the answer cache and the activity tally."""

from __future__ import annotations

import contextvars
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub_rtc.decision.access import Access
from hub_rtc.singleuser.cache import NEGATIVE_SECONDS, AccessCache
from hub_rtc.singleuser.roomid import RoomId, RoomIdError, parse_room_id, room_tail
from hub_rtc.singleuser.tally import Tally
from hub_rtc.singleuser.targets import Target, clean_path, target

EDITOR = Access(read=True, write=True, execute=True, role="editor", session_id="s1", root="lab1")
VIEWER = Access(read=True, role="viewer", session_id="s1", root="lab1")
RUNNER = Access(read=True, execute=True, role="runner", session_id="s1")
LOCKED = Access(read=True, write=True, execute=True, role="editor", session_id="s1",
                protected=frozenset({"c1"}))
NOBODY = Access.none("not a member")


def one(method: str, url: str, resource: str, action: str, body: object = None,
        **kwargs: str) -> list[Target]:
    raw = json.dumps(body).encode() if body is not None else b""
    return target(method, url, resource, action, kwargs, raw)


@pytest.mark.parametrize(("raw", "clean"), [
    ("lab1/a.ipynb", "lab1/a.ipynb"), ("lab1/", "lab1"), ("", ""), ("lab1//a", "lab1/a"),
    ("lab1/with space.txt", "lab1/with space.txt"), ("lab1/50%.txt", "lab1/50%.txt"),
    ("lab1/\u00e9t\u00e9.ipynb", "lab1/\u00e9t\u00e9.ipynb"),
    # the string the contents manager gets is final: nothing decodes it again, so
    # whatever another reader might decode is refused rather than guessed at
    ("lab1/%20x", None), ("proj%2Fescaped.txt", None), ("%70roj", None), ("lab1/a%2541", None),
    ("lab1/../secret", None), ("..", None), ("./x", None), ("lab1/.", None),
    ("a\\b", None), ("lab1/x\x00", None), ("lab1/\nx", None), ("lab1/x\x7f", None),
    ("lab1/\x85x", None),
    # absolute: the file id manager joins it to nothing
    ("/lab1/", None), ("//etc/passwd", None),
    # the service strips surrounding whitespace, the file system keeps it
    (" lab1/x", None), ("lab1 ", None), ("lab1/x ", None), ("\u2003lab1", None), ("lab1\t", None),
    (None, None), (3, None), (["lab1"], None),
])
def test_clean_path(raw: object, clean: str | None) -> None:
    assert clean_path(raw) == clean


TRICKY = ["lab1/a", " lab1", "lab1 /a", "lab1/ a", "a//b", "lab1/./a", "lab1/../a", "/a", "a/",
          "%2e%2e/a", "lab1%2F..%2Fa", "\\lab1", "lab1\\..\\a", "\u3000lab1", "lab1\u200b",
          "lab1/\x0c", "..a/b..", "...", "lab1/~", "lab1/$HOME", "C:/x", "\ufeffproj"]


@pytest.mark.parametrize("raw", TRICKY)
def test_an_accepted_path_is_the_same_path_to_the_service_and_the_contents_manager(raw: str) -> None:
    """The service normalises what it is asked about, the contents manager joins
    parts to its root: for every path hub_rtc lets through, both name one file."""
    import os.path

    from jupyter_server.utils import to_os_path

    from hub_rtc.manager.validate import folder

    clean = clean_path(raw)
    if clean is None:
        return
    assert folder(clean, "path") == clean
    assert to_os_path(raw, "/srv") == os.path.normpath(os.path.join("/srv", *clean.split("/")))


def test_url_parts_are_decoded_once_as_tornado_does() -> None:
    from tornado.escape import url_unescape

    from hub_rtc.singleuser.targets import url_arg

    for raw in ("proj%252Fx", "%2570roj", "a%20b", "%E2%80%83x", "50%.txt", "%zz"):
        assert url_arg(raw) == url_unescape(raw, encoding="utf-8", plus=False)
    assert url_arg("%ff") is None  # not UTF-8: tornado answers 400


def test_contents_paths_come_from_the_route() -> None:
    assert one("GET", "api/contents/lab1/a.ipynb", "contents", "read", path="/lab1/a.ipynb") == [
        Target("path", "read", "lab1/a.ipynb")]
    climbing = one("GET", "api/contents/x", "contents", "read", path="lab1/../../etc")
    assert climbing[0].scope == "deny"


def test_rename_and_copy_check_both_ends() -> None:
    rename = one("PATCH", "api/contents/lab1/a.ipynb", "contents", "write", {"path": "elsewhere/a.ipynb"},
                 path="lab1/a.ipynb")
    assert [(t.action, t.path) for t in rename] == [("write", "lab1/a.ipynb"), ("write", "elsewhere/a.ipynb")]
    copy = one("POST", "api/contents/lab1", "contents", "write", {"copy_from": "private/x.ipynb"},
               path="lab1")
    assert [(t.action, t.path) for t in copy] == [("write", "lab1"), ("read", "private/x.ipynb")]


def test_files_and_nbconvert_paths_come_from_the_url() -> None:
    assert one("GET", "files/lab1/data.csv", "files", "read")[0].path == "lab1/data.csv"
    assert one("GET", "nbconvert/html/lab1/a.ipynb", "nbconvert", "read")[0].path == "lab1/a.ipynb"


FILE_ID = "3251768a-6f72-45a6-b8d2-ff20b804e069"
NOTEBOOK_ROOM = parse_room_id(f"json:notebook:{FILE_ID}")


def test_rooms_and_side_doors() -> None:
    room = one("GET", f"api/collaboration/room/json:notebook:{FILE_ID}", "contents", "read")
    assert room == [Target("path", "read", room=NOTEBOOK_ROOM)]
    assert one("GET", "api/collaboration/room/JupyterLab:globalAwareness", "contents", "read") == [
        Target("server", "read")]
    fork_room = one("GET", "api/collaboration/room/0123abcd", "contents", "read")
    assert fork_room[0].scope == "deny"
    # reading a timeline, listing forks, undo/redo: all need write
    assert one("GET", "api/collaboration/timeline/lab1/a.ipynb", "contents", "read")[0].action == "write"
    assert one("GET", f"api/collaboration/fork/json:notebook:{FILE_ID}", "contents",
               "read")[0].action == "write"
    assert one("PUT", f"api/collaboration/undo_redo/json:notebook:{FILE_ID}", "contents",
               "write")[0] == Target("path", "write", room=NOTEBOOK_ROOM)
    assert one("PUT", "api/collaboration/session/lab1/a.ipynb", "contents", "write") == [
        Target("path", "read", "lab1/a.ipynb", document=True)]


@pytest.mark.parametrize("tail", [
    f"x/json:notebook:{FILE_ID}", f"a:b:c/json:notebook:{FILE_ID}",
    f"JupyterLab:globalAwareness/json:notebook:{FILE_ID}", f"json%3Anotebook%3A{FILE_ID}",
    f"json:notebook:{FILE_ID}%2Fx", f"json:notebook:{FILE_ID}:x", f"/json:notebook:{FILE_ID}",
    f"json:notebook:{FILE_ID.upper()}", "json:notebook:abc", f"text:notebook:{FILE_ID}",
    f"json:file:{FILE_ID}", f"base64:file:{FILE_ID}", f"json:chat:{FILE_ID}", "", "a:b",
    "JupyterLab:globalAwareness2", "fork room", "..", f"json:notebook:{FILE_ID}\\x",
])
def test_a_room_id_read_any_other_way_is_refused(tail: str) -> None:
    with pytest.raises(RoomIdError):
        parse_room_id(tail)
    (refusal,) = one("GET", f"api/collaboration/room/{tail}", "contents", "read")
    assert refusal.scope == "deny" and refusal.why


def test_room_ids_that_every_reader_reads_the_same() -> None:
    assert parse_room_id(f"text:file:{FILE_ID}") == RoomId("document", f"text:file:{FILE_ID}",
                                                           "text", "file", FILE_ID)
    assert parse_room_id(f"base64:blob:{FILE_ID}").type == "blob"
    assert parse_room_id(f"json:notebook:{FILE_ID}").is_notebook
    assert not parse_room_id(f"text:unicode:{FILE_ID}").is_notebook
    assert parse_room_id("JupyterLab:globalAwareness").kind == "awareness"
    assert parse_room_id("5f1e0c7e-0d7e-4f7e-9e35-61f5c1a2b3c4").kind == "transient"
    # the tail is taken from the raw path, below the base URL
    assert room_tail(f"/user/o/api/collaboration/room/json:notebook:{FILE_ID}", "/user/o/") == (
        f"json:notebook:{FILE_ID}")
    assert room_tail("/user/o/api/collaboration/fork/x", "/user/o/") is None


def test_a_notebook_with_protected_cells_is_read_only_as_any_other_type() -> None:
    editor = Access(read=True, write=True, execute=True, role="editor", protected=frozenset({"c"}))
    assert editor.opened_as("notebook") is editor
    for other in ("file", "unicode", "blob"):
        assert not editor.opened_as(other).write and editor.opened_as(other).read
    free = Access(read=True, write=True, role="editor")
    assert free.opened_as("file").write  # nothing protected: the text editor works as before


def test_kernels_sessions_terminals_and_the_rest() -> None:
    # reading about kernels needs the execute right somewhere here: a viewer's
    # JupyterLab then offers "No Kernel" rather than failing to start one
    for url, resource in [("api/kernels", "kernels"), ("api/kernels/k-1", "kernels"),
                          ("api/sessions", "sessions"), ("api/kernelspecs", "kernelspecs"),
                          ("kernelspecs/python3/logo-64x64.png", "kernelspecs")]:
        assert one("GET", url, resource, "read") == [Target("path", "execute")], url
    assert one("GET", "api/kernels/k-1/channels", "kernels", "execute", kernel_id="k-1") == [
        Target("path", "execute", kernel_id="k-1")]
    assert one("POST", "api/sessions", "sessions", "write", {"path": "lab1/a.ipynb"}) == [
        Target("path", "execute", "lab1/a.ipynb")]
    assert one("DELETE", "api/sessions/x", "sessions", "write", session_id="x") == [
        Target("path", "execute", notebook_session="x")]
    assert one("POST", "api/terminals", "terminals", "write")[0].scope == "terminal"
    assert one("POST", "api/shutdown", "server", "write")[0].scope == "deny"
    assert one("GET", "api/nbconvert", "nbconvert", "read") == [Target("server", "read")]
    assert one("GET", "api/me", "api", "read") == [Target("server", "read")]
    assert one("PATCH", "api/me", "api", "write")[0].scope == "deny"
    assert one("GET", "api/events/subscribe", "events", "execute")[0].scope == "deny"
    assert one("POST", "api/events", "events", "write")[0].scope == "deny"
    assert one("PUT", "api/whatever", "unknown-thing", "write")[0].scope == "deny"
    assert one("GET", "api/whatever", "unknown-thing", "read") == [Target("server", "read")]


@pytest.mark.parametrize(("method", "url", "scope"), [
    # JupyterLab's own API: the handlers name no resource, so the URL decides
    ("GET", "lab/api/settings", "server"),
    ("GET", "lab/api/settings/@jupyterlab/apputils-extension:themes", "server"),
    ("PUT", "lab/api/settings/@jupyterlab/apputils-extension:themes", "deny"),
    ("GET", "lab/api/translations/default", "server"),
    ("GET", "lab/api/extensions", "server"),
    ("POST", "lab/api/extensions", "deny"),  # install, uninstall, enable, disable
    ("POST", "lab/api/plugins", "deny"),
    ("POST", "lab/api/build", "deny"),
    ("DELETE", "lab/api/build", "deny"),
    # the owner's layout and the files they had open: not even read
    ("GET", "lab/api/workspaces", "deny"),
    ("GET", "lab/api/workspaces/default", "deny"),
    ("PUT", "lab/api/workspaces/default", "deny"),
    ("DELETE", "lab/api/workspaces/default", "deny"),
])
def test_jupyterlab_api(method: str, url: str, scope: str) -> None:
    action = "read" if method == "GET" else "write"
    for resource in ("api", "settings", "lab"):  # whatever a handler names, the URL decides
        checks = one(method, url, resource, action)
        assert [c.scope for c in checks] == [scope], (url, resource)
        assert checks[0].scope != "deny" or checks[0].why


@pytest.mark.parametrize(("access", "check", "allowed"), [
    (EDITOR, Target("path", "read", "lab1/a"), True),
    (EDITOR, Target("path", "write", "lab1/a"), True),
    (EDITOR, Target("path", "execute", "lab1/a"), True),
    (VIEWER, Target("path", "read", "lab1/a"), True),
    (VIEWER, Target("path", "write", "lab1/a"), False),
    (VIEWER, Target("path", "execute", "lab1/a"), False),
    (RUNNER, Target("path", "execute", "lab1/a"), True),
    (RUNNER, Target("path", "write", "lab1/a"), False),
    (LOCKED, Target("path", "write", "lab1/a"), False),  # whole-file writes would bypass the guard
    (LOCKED, Target("path", "read", "lab1/a"), True),
    (NOBODY, Target("path", "read", "lab1/a"), False),
    (NOBODY, Target("server", "read"), False),
    (EDITOR, Target("server", "read"), True),
    (EDITOR, Target("terminal", "write"), False),
    (Access(read=True, terminal=True), Target("terminal", "write"), True),
    (EDITOR, Target("deny", "read", why="no"), False),
])
def test_access_permits(access: Access, check: Target, allowed: bool) -> None:
    ok, why = access.permits(check)
    assert ok is allowed
    assert ok or why


def test_paths_are_named_as_the_session_names_them() -> None:
    assert EDITOR.relative("lab1/a.ipynb") == "a.ipynb"
    assert EDITOR.relative("lab10/a.ipynb") == "lab10/a.ipynb"
    assert Access(read=True).relative("x/a.ipynb") == "x/a.ipynb"


def test_access_from_the_service_answer() -> None:
    answer = {"user": {"id": "u1", "name": "bea", "display_name": "Bea B", "initials": "BB",
                       "color": "#123456"},
              "session": {"id": "s1", "root": "lab1", "title": "t"}, "role": "editor",
              "read": True, "write": True, "execute": True, "terminal": False, "manage": False,
              "protected_cells": ["c1", "c2"], "expose_identity": True, "reason": "", "cache_seconds": 5}
    access = Access.from_json(answer)
    assert access.session_id == "s1" and access.root == "lab1" and access.protected == {"c1", "c2"}
    assert access.rights().write and access.rights().protected == {"c1", "c2"}
    assert access.awareness_user("bea") == {"username": "u1", "name": "bea", "display_name": "Bea B",
                                            "initials": "BB", "color": "#123456", "avatar_url": None}
    viewer = Access.from_json({**answer, "write": False, "execute": False, "role": "viewer"})
    assert not viewer.rights().write and not viewer.rights().run
    runner = Access.from_json({**answer, "write": False, "role": "runner"})
    assert runner.rights().run and not runner.rights().may_change("c1", "outputs")
    assert runner.rights().may_change("c9", "outputs") and not runner.rights().may_change("c9", "source")


def test_cache_expires_and_keeps_refusals_briefly() -> None:
    now = [100.0]
    cache = AccessCache(ttl=30, clock=lambda: now[0])
    cache.put("bea", "lab1/a", EDITOR)
    cache.put("zed", "lab1/a", NOBODY)
    now[0] += NEGATIVE_SECONDS + 0.1
    assert cache.get("bea", "lab1/a") is EDITOR
    assert cache.get("zed", "lab1/a") is None  # a "no" is re-asked soon
    now[0] += 30
    assert cache.get("bea", "lab1/a") is None


def test_cache_invalidation_by_session_and_user() -> None:
    cache = AccessCache(ttl=30)
    other = Access(read=True, session_id="s2")
    cache.put("bea", "lab1/a", EDITOR)
    cache.put("cai", "lab1/a", EDITOR)
    cache.put("bea", "lab2/b", other)
    cache.invalidate("s1", ["bea"])
    assert cache.get("bea", "lab1/a") is None
    assert cache.get("cai", "lab1/a") is EDITOR
    assert cache.get("bea", "lab2/b") is other
    cache.invalidate("s1", None)
    assert cache.get("cai", "lab1/a") is None and len(cache) == 1


def test_tally_counts_per_minute_and_restores() -> None:
    tally = Tally()
    t = datetime(2026, 11, 21, 10, 5, 30, tzinfo=UTC)
    for _ in range(3):
        tally.add("s1", "bea", "edit", "lab1/a.ipynb", "c1", now=t)
    tally.add("s1", "bea", "refused", "lab1/a.ipynb", "c2", now=t)
    tally.add("s2", "cai", "join", "x.ipynb", now=t)
    batches = tally.drain()
    assert len(tally) == 0
    assert sorted(batches) == ["s1", "s2"]
    edit = next(e for e in batches["s1"] if e["kind"] == "edit")
    assert edit == {"ts": "2026-11-21T10:05:00Z", "user": "bea", "kind": "edit",
                    "path": "lab1/a.ipynb", "count": 3, "cell_id": "c1"}
    assert "cell_id" not in batches["s2"][0]
    tally.restore("s1", batches["s1"])
    assert sum(e["count"] for e in tally.drain()["s1"]) == 4


def test_tally_is_bounded() -> None:
    tally = Tally(max_keys=2)
    for i in range(5):
        tally.add("s1", "bea", "edit", "a", f"c{i}")
    assert len(tally) == 2 and tally.dropped == 3


def test_kernel_environment_by_starter() -> None:
    from hub_rtc.singleuser.authorizer import KERNEL_STARTER
    from hub_rtc.singleuser.kernels import ENV_NAME, kernel_env

    base = {"PATH": "/bin"}

    def started_by(access: Access | None) -> dict[str, str] | None:
        def run() -> dict[str, str] | None:  # a fresh context, as each request task has
            KERNEL_STARTER.set(access)
            return kernel_env(base)
        return contextvars.copy_context().run(run)

    assert started_by(None) is base  # nobody known: untouched
    assert started_by(Access(read=True, execute=True, identity={"id": "u-1"}, expose_identity=True)
                      ) == {"PATH": "/bin", ENV_NAME: "u-1"}
    assert started_by(Access(read=True, execute=True, identity={"id": "u-1"})) == {"PATH": "/bin"}


# -- API handlers that skip the Authorizer ------------------------------------------------


def _handlers() -> dict[str, type]:
    """Fresh handler classes (check_unchecked changes the classes it is given)."""
    from jupyter_server.auth.decorator import allow_unauthenticated, authorized
    from jupyter_server.base.handlers import APIHandler, JupyterHandler
    from tornado import web

    class Unchecked(APIHandler):  # like jupyterlab_server's settings and workspaces
        @web.authenticated
        def get(self) -> str:
            return "read"

        @web.authenticated
        async def put(self) -> str:
            return "written"

    class Checked(APIHandler):
        auth_resource = "contents"

        @web.authenticated
        @authorized
        async def put(self) -> str:
            return "written"

    class Open(APIHandler):
        @allow_unauthenticated
        def get(self) -> str:
            return "version"

    class Page(JupyterHandler):
        def post(self) -> str:
            return "redirect"

    return {"/unchecked": Unchecked, "/checked": Checked, "/open": Open, "/page": Page}


class _Asked:
    """An Authorizer that records what it is asked and answers ``allow``."""

    def __init__(self, allow: bool) -> None:
        self.allow = allow
        self.asked: list[tuple[str, str]] = []

    async def is_authorized(self, handler: object, user: object, action: str, resource: str) -> bool:
        self.asked.append((action, resource))
        return self.allow


class _Request:
    method = "PUT"
    path = "/user/olive/lab/api/settings/x"


def _fake(cls: type, allow: bool) -> tuple[object, _Asked]:
    handler = object.__new__(cls)
    asked = _Asked(allow)
    settings = {"authorizer": asked}
    vars(handler).update(_current_user={"name": "ed"}, request=_Request(),
                         application=type("App", (), {"settings": settings})())
    return handler, asked


def test_unchecked_api_methods_are_made_to_ask() -> None:
    from tornado import web

    from hub_rtc.singleuser.unchecked import check_unchecked

    classes = _handlers()
    app = web.Application(list(classes.items()))
    wrapped = check_unchecked(app)
    assert sorted(w.split()[0] for w in wrapped) == ["GET", "PUT"]
    assert all(".Unchecked" in w for w in wrapped)
    assert check_unchecked(app) == []  # nothing is wrapped twice


async def test_a_wrapped_method_runs_only_when_the_authorizer_says_yes() -> None:
    from tornado import web

    from hub_rtc.singleuser.unchecked import check_unchecked

    classes = _handlers()
    check_unchecked(web.Application(list(classes.items())))
    unchecked = classes["/unchecked"]
    handler, asked = _fake(unchecked, allow=True)
    assert await unchecked.put(handler) == "written"
    assert await unchecked.get(handler) == "read"
    assert asked.asked == [("write", "api"), ("read", "api")]
    handler, asked = _fake(unchecked, allow=False)
    with pytest.raises(web.HTTPError) as refused:
        await unchecked.put(handler)
    assert refused.value.status_code == 403 and asked.asked == [("write", "api")]
    # untouched: @authorized asks by itself; open and page handlers answer as before
    handler, asked = _fake(classes["/checked"], allow=True)
    assert await classes["/checked"].put(handler) == "written"
    assert asked.asked == [("write", "contents")]
    assert classes["/open"].get(_fake(classes["/open"], False)[0]) == "version"
    assert classes["/page"].post(_fake(classes["/page"], False)[0]) == "redirect"


# -- the folder's edge: paths, bodies, kernels and notebook sessions ---------------------


@pytest.mark.parametrize(("method", "url", "resource", "action", "kwargs", "body", "expected"), [
    # a path group from jupyter_server's path_regex has one "/" first, already decoded once
    ("PUT", "api/contents/x", "contents", "write", {"path": "/proj%2Fescaped.txt"}, None, None),
    ("PUT", "api/contents/x", "contents", "write", {"path": "/ proj"}, None, None),
    ("PUT", "api/contents/x", "contents", "write", {"path": "/proj/a b"}, None, ["proj/a b"]),
    # files/ and nbconvert/ take the raw rest of the URL, which tornado decodes once
    ("GET", "files/proj%252Fx", "files", "read", {}, None, None),
    ("GET", "files/proj/a%20b", "files", "read", {}, None, ["proj/a b"]),
    ("GET", "files/%2Fetc%2Fpasswd", "files", "read", {}, None, None),
    ("GET", "files/proj/%ff", "files", "read", {}, None, None),
    ("GET", "nbconvert/html/proj/a%2520b.ipynb", "nbconvert", "read", {}, None, None),
    # a PUT's body names no other file; a PATCH's and a POST's are read as jupyter_server reads them
    ("PUT", "api/contents/proj/a", "contents", "write", {"path": "/proj/a"}, {"path": "out"},
     ["proj/a"]),
    ("PATCH", "api/contents/proj/a", "contents", "write", {"path": "/proj/a"},
     b'\x0c{"path": "out"}', ["proj/a", "out"]),
    ("PATCH", "api/contents/proj/a", "contents", "write", {"path": "/proj/a"}, {"path": ["x"]}, None),
    ("PATCH", "api/contents/proj/a", "contents", "write", {"path": "/proj/a"}, b"{nope", None),
    ("PATCH", "api/contents/proj/a", "contents", "write", {"path": "/proj/a"}, b"[]", None),
    ("POST", "api/contents/proj", "contents", "write", {"path": "/proj"},
     {"copy_from": "proj%2Fx"}, None),
    ("POST", "api/contents/proj", "contents", "write", {"path": "/proj"}, {"copy_from": 1}, None),
])
def test_paths_are_read_exactly_as_the_server_will_use_them(
        method: str, url: str, resource: str, action: str, kwargs: dict[str, str], body: object,
        expected: list[str] | None) -> None:
    raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    checks = target(method, url, resource, action, kwargs, raw)
    if expected is None:
        assert any(c.scope == "deny" and c.why for c in checks), checks
    else:
        assert [c.path for c in checks] == expected and all(c.scope == "path" for c in checks)


def test_routes_whose_path_nothing_here_reads_are_refused() -> None:
    for url, resource, action in [("api/fileid/id", "contents", "read"),
                                  ("api/fileid/path", "contents", "read"),
                                  ("nbconvert/html", "nbconvert", "write"),
                                  ("api/somewhere/else", "contents", "read")]:
        (check,) = one("GET" if action == "read" else "POST", url, resource, action)
        assert check.scope == "deny" and check.why, url
    timeline = one("GET", "api/collaboration/timeline/proj/a.ipynb", "contents", "read")
    assert timeline == [Target("path", "write", "proj/a.ipynb", document=True)]


def test_kernels_are_checked_where_their_notebooks_are() -> None:
    kernel = Target("path", "execute", kernel_id="k-1")
    for method, suffix, action in [("GET", "", "read"), ("DELETE", "", "write"),
                                   ("POST", "/restart", "write"), ("POST", "/interrupt", "write"),
                                   ("GET", "/channels", "execute")]:
        assert one(method, f"api/kernels/k-1{suffix}", "kernels", action, kernel_id="k-1") == [kernel]
    (start,) = one("POST", "api/kernels", "kernels", "write", {"name": "python3"})
    assert start.scope == "deny" and "notebook session" in start.why
    assert one("GET", "api/kernels", "kernels", "read") == [Target("path", "execute")]


@pytest.mark.parametrize(("method", "body", "expected"), [
    ("GET", None, ["here"]),
    ("DELETE", None, ["here"]),
    ("PATCH", {"name": "x"}, ["here"]),
    ("PATCH", {"kernel": {"name": "python3"}}, ["here"]),
    ("PATCH", {"path": "other/x.ipynb"}, ["here", "other/x.ipynb"]),
    ("PATCH", {"path": "proj/a.ipynb", "notebook": {"path": "other/x.ipynb"}}, ["here", "other/x.ipynb"]),
    ("PATCH", {"kernel": {"id": "k-2"}}, ["here", "kernel k-2"]),
    ("PATCH", {"path": "proj%2Fx.ipynb"}, None),
    ("PATCH", {"notebook": "path"}, None),
    ("PATCH", {"kernel": "k-2"}, None),
    ("PATCH", {"kernel": {"id": 7}}, None),
])
def test_a_notebook_session_is_checked_where_it_is_and_where_it_goes(
        method: str, body: object, expected: list[str] | None) -> None:
    checks = one(method, "api/sessions/s-1", "sessions", "read" if method == "GET" else "write",
                 body, session_id="s-1")
    if expected is None:
        assert any(c.scope == "deny" for c in checks), checks
        return
    named = ["here" if c.notebook_session == "s-1" else f"kernel {c.kernel_id}" if c.kernel_id
             else c.path for c in checks]
    assert named == expected and all(c.scope == "path" and c.action == "execute" for c in checks)
    assert not any(c.new_kernel for c in checks)  # PATCH: jupyter_server refuses unknown kernels


def test_a_new_notebook_session_is_checked_where_jupyter_server_puts_it() -> None:
    def paths(body: dict[str, object]) -> list[str | None]:
        return [c.path for c in one("POST", "api/sessions", "sessions", "write", body)]

    assert paths({"path": "proj/a.ipynb"}) == ["proj/a.ipynb"]
    # the legacy form: notebook.name, then notebook.path, win over path
    assert paths({"path": "proj/a.ipynb", "notebook": {"name": "out.ipynb"}}) == ["out.ipynb"]
    assert paths({"path": "proj/a.ipynb", "notebook": {"path": "out.ipynb"}}) == ["out.ipynb"]
    assert paths({"path": "proj/a.ipynb", "notebook": {}}) == ["proj/a.ipynb"]
    attach = one("POST", "api/sessions", "sessions", "write",
                 {"path": "proj/a.ipynb", "kernel": {"id": "k-9"}})
    assert attach[1] == Target("path", "execute", kernel_id="k-9", new_kernel=True)
    for body in ({}, {"path": "proj%2Fa.ipynb"}, {"path": " proj/a.ipynb"}, {"notebook": None},
                 {"path": "proj/a.ipynb", "kernel": None}):
        assert any(c.scope == "deny" for c in one("POST", "api/sessions", "sessions", "write", body)
                   ), body
    assert one("POST", "api/sessions/s-1", "sessions", "write", {}, session_id="s-1")[0].scope == "deny"


# -- links: where a path really leads ----------------------------------------------------


def test_real_paths_follow_every_link(tmp_path: Path) -> None:
    from hub_rtc.singleuser.links import has_other_names, is_hidden, real_path

    root, mounted = tmp_path / "root", tmp_path / "mounted"
    (root / "lab1").mkdir(parents=True)
    (root / "lab2").mkdir()
    mounted.mkdir()
    (root / "lab1" / "a.txt").write_text("a")
    (root / "secret.txt").write_text("s")
    os.symlink("../lab2", root / "lab1" / "over")
    os.symlink("/etc", root / "lab1" / "etc")
    os.symlink(str(tmp_path / "nowhere.txt"), root / "lab1" / "dangling")
    os.symlink("..", root / "lab1" / "up")
    os.symlink(".", root / "lab1" / "here")
    os.symlink("loop", root / "lab1" / "loop")
    os.symlink(str(mounted), root / "shared")  # a session folder on a disk mounted elsewhere
    os.link(root / "secret.txt", root / "lab1" / "hard.txt")
    top = str(root)
    assert real_path(top, "lab1", "lab1/a.txt") == "lab1/a.txt"
    assert real_path(top, "lab1", "lab1") == "lab1"
    assert real_path(top, "lab1", "lab1/new/file.txt") == "lab1/new/file.txt"  # not there yet
    assert real_path(top, "lab1", "lab1/here/a.txt") == "lab1/a.txt"
    assert real_path(top, "lab1", "lab1/over/x.ipynb") is None  # a link in the middle
    assert real_path(top, "", "lab1/over/x.ipynb") == "lab2/x.ipynb"  # a whole-server session
    assert real_path(top, "lab1", "lab1/up") is None
    assert real_path(top, "", "lab1/up/secret.txt") == "secret.txt"
    assert real_path(top, "lab1", "lab1/etc/passwd") is None
    assert real_path(top, "", "lab1/etc/passwd") is None
    assert real_path(top, "lab1", "lab1/dangling") is None  # a write would create it outside
    assert real_path(top, "lab1", "lab1/loop") == "lab1/loop"  # the contents manager fails on it
    assert real_path(top, "shared", "shared/x.txt") == "shared/x.txt"
    assert real_path(top, "", "shared/x.txt") is None  # outside the server's own files
    assert real_path(str(root / "lab1" / "up"), "lab1", "lab1/a.txt") == "lab1/a.txt"  # a linked root
    assert has_other_names(top, "lab1/hard.txt") and has_other_names(top, "secret.txt")
    assert not has_other_names(top, "lab1/a.txt")
    assert not has_other_names(top, "lab1") and not has_other_names(top, "lab1/none")
    assert is_hidden(".jupyter/x") and is_hidden("a/.local") and not is_hidden("a/b.c")


class _Gate:
    """The service's answers by session folder: lab1, lab2, lab3 (s1..s3), editor in each."""

    def __init__(self, protected: frozenset[str] = frozenset()) -> None:
        self.protected = protected

    async def access(self, user: str, path: str | None) -> Access:
        if path is None:
            return EDITOR
        for root, session in (("lab1", "s1"), ("lab2", "s2"), ("lab3", "s3")):
            if path == root or path.startswith(root + "/"):
                return Access(read=True, write=True, execute=True, role="editor", session_id=session,
                              root=root, protected=self.protected if path.endswith(".ipynb")
                              else frozenset())
        return NOBODY


class _Sessions:
    def __init__(self, sessions: list[dict[str, Any]]) -> None:
        self.sessions = sessions

    async def list_sessions(self) -> list[dict[str, Any]]:
        return self.sessions


class _Handler:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.current_user = object()
        self.request = type("R", (), {"method": "GET", "path": "/user/o/x"})()


def _authorizer(gate: _Gate) -> Any:
    from hub_rtc.singleuser.authorizer import HubRTCAuthorizer

    return HubRTCAuthorizer(gate=gate)


@pytest.fixture
def served(tmp_path: Path) -> dict[str, Any]:
    """A server root with session folders and the links a kernel could make in them;
    lab3 is a link to a folder mounted from elsewhere, as an owner may set up."""
    from jupyter_server.services.contents.filemanager import AsyncFileContentsManager

    root, mounted = tmp_path / "root", tmp_path / "mounted"
    for folder in ("lab1", "lab2", ".jupyter"):
        (root / folder).mkdir(parents=True)
    mounted.mkdir()
    for name in ("lab1/a.txt", "lab1/nb.ipynb", "lab2/b.txt", "private.txt", ".jupyter/x.json"):
        (root / name).write_text("x")
    (mounted / "m.txt").write_text("m")
    for link, to in [("lab1/same.txt", "a.txt"), ("lab1/alias.ipynb", "nb.ipynb"),
                     ("lab1/over", "../lab2"), ("lab1/out.txt", "../private.txt"),
                     ("lab1/abs", "/etc/hostname"), ("lab1/cfg", "../.jupyter"),
                     ("lab1/mnt", str(mounted)), ("lab3", str(mounted))]:
        os.symlink(to, root / link)
    os.link(root / "private.txt", root / "lab1" / "hard.txt")
    return {"contents_manager": AsyncFileContentsManager(root_dir=str(root))}


@pytest.mark.parametrize(("check", "allowed"), [
    (Target("path", "read", "lab1/a.txt"), True),
    (Target("path", "read", "lab1/same.txt"), True),  # a link inside the folder
    (Target("path", "write", "lab1/new.txt"), True),
    (Target("path", "read", "lab1/over/b.txt"), False),  # into another session's folder
    (Target("path", "write", "lab1/over/new.txt"), False),
    (Target("path", "read", "lab1/out.txt"), False),  # to a file no session holds
    (Target("path", "read", "lab1/abs"), False),  # outside the server's files
    (Target("path", "read", "lab1/cfg/x.json"), False),  # hidden, wherever it is
    (Target("path", "read", "lab1/hard.txt"), False),  # a second name of a file elsewhere
    (Target("path", "read", "lab1/alias.ipynb", document=True), False),  # a room by a link
    (Target("path", "read", "lab1/nb.ipynb", document=True), True),
    (Target("path", "read", "lab1/mnt/m.txt"), False),  # lab3's files, by another way
    (Target("path", "read", "lab3/m.txt"), True),  # a session folder that is a link
    (Target("path", "write", "lab3/new.txt"), True),
])
async def test_a_path_is_decided_where_it_really_leads(served: dict[str, Any], check: Target,
                                                      allowed: bool) -> None:
    ok, _ = await _authorizer(_Gate())._check(_Handler(served), "ed", check)
    assert ok is allowed


async def test_a_link_to_a_notebook_with_protected_cells_is_not_a_way_around_them(
        served: dict[str, Any]) -> None:
    authorizer = _authorizer(_Gate(protected=frozenset({"c1"})))
    ok, access = await authorizer._check(_Handler(served), "ed", Target("path", "read", "lab1/alias.ipynb"))
    assert ok and access.protected == {"c1"}  # read, as the real notebook's rules say
    ok, _ = await authorizer._check(_Handler(served), "ed", Target("path", "write", "lab1/alias.ipynb"))
    assert not ok


async def test_a_kernel_is_where_every_notebook_using_it_is() -> None:
    sessions = _Sessions([
        {"id": "n1", "path": "lab1/a.ipynb", "kernel": {"id": "k1"}},
        {"id": "n2", "path": "lab2/b.ipynb", "kernel": {"id": "k2"}},
        {"id": "n3", "path": "lab1/c.ipynb", "kernel": {"id": "k2"}},  # attached across folders
    ])
    handler = _Handler({"session_manager": sessions, "kernel_manager": {"k1", "k2", "bare"}})

    class OnlyLab1(_Gate):
        async def access(self, user: str, path: str | None) -> Access:
            answer = await super().access(user, path)
            return answer if answer.session_id in ("s1", None) and answer.read else NOBODY

    authorizer = _authorizer(OnlyLab1())

    async def allowed(check: Target) -> bool:
        return (await authorizer._check(handler, "ed", check))[0]

    assert await allowed(Target("path", "execute", kernel_id="k1"))
    assert not await allowed(Target("path", "execute", kernel_id="k2"))  # also serves lab2
    assert not await allowed(Target("path", "execute", kernel_id="bare"))  # serves no notebook
    assert not await allowed(Target("path", "execute", kernel_id="gone"))
    assert await allowed(Target("path", "execute", kernel_id="gone", new_kernel=True))  # started fresh
    assert await allowed(Target("path", "execute", notebook_session="n1"))
    assert not await allowed(Target("path", "execute", notebook_session="n3"))  # its kernel is lab2's too
    assert not await allowed(Target("path", "execute", notebook_session="nope"))
    odd = _Handler({"session_manager": _Sessions([{"id": "n4", "path": " lab1/a.ipynb",
                                                   "kernel": {"id": "k1"}}]),
                    "kernel_manager": {"k1"}})
    assert not (await authorizer._check(odd, "ed", Target("path", "execute", kernel_id="k1")))[0]
