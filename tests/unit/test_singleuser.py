"""The shared server's pure parts: which question a request asks, what an
answer permits, the answer cache and the activity tally."""

from __future__ import annotations

import contextvars
import json
from datetime import UTC, datetime

import pytest

from hub_rtc.singleuser.access import Access
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
    ("lab1/a.ipynb", "lab1/a.ipynb"), ("/lab1/", "lab1"), ("", ""), ("lab1/%20x", "lab1/ x"),
    ("lab1/../secret", None), ("..", None), ("./x", None), ("a\\b", None), (None, None),
])
def test_clean_path(raw: str | None, clean: str | None) -> None:
    assert clean_path(raw) == clean


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
        Target("path", "read", "lab1/a.ipynb")]


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
    assert one("DELETE", "api/sessions/x", "sessions", "write") == [Target("path", "execute")]
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
    from hub_rtc.singleuser.auth import KERNEL_STARTER
    from hub_rtc.singleuser.kernels import ENV_NAME, kernel_env

    base = {"PATH": "/bin", "JUPYTERHUB_API_TOKEN": "secret", "JPY_API_TOKEN": "secret"}

    def started_by(access: Access | None) -> dict[str, str] | None:
        def run() -> dict[str, str] | None:  # a fresh context, as each request task has
            KERNEL_STARTER.set(access)
            return kernel_env(base)
        return contextvars.copy_context().run(run)

    assert started_by(None) is base  # nobody known: untouched
    assert started_by(Access(read=True, execute=True, identity={"id": "u-1"}, expose_identity=True)
                      ) == {"PATH": "/bin", ENV_NAME: "u-1"}
    assert started_by(Access(read=True, execute=True, identity={"id": "u-1"})) == {"PATH": "/bin"}
    assert started_by(Access(read=True, identity={"id": "o-1"}, server_owner=True)) == base


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
