"""Attacks on the session folder's edge, on others' kernels and through links, on a real hub.

One hub for the module.  olga's own server hosts three sessions:

- "Project" (folder ``proj``): eve is an editor, vic a viewer; cell ``locked``
  of ``proj/nb.ipynb`` is locked;
- "Other" (folder ``other``): mal is an editor, a member of nothing else;
- "Whole" (the whole server, folder ``""``): wes is an editor.

Everything goes through the proxy with each user's own hub token, and every
attack is checked where it would land: on disk, in the session manager, in a
kernel.  Kernels are real ipykernels, driven over their websockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from hub_rtc.localhub import LocalHub
from tests.integration.conftest import code_notebook, host_session, start_hub, start_server, wait_for
from tests.integration.kernels import execute
from tests.integration.yclient import YClient, close_socket, room_socket

pytestmark = pytest.mark.integration

OWNER, EDITOR, VIEWER, OTHER, WHOLE = "olga", "eve", "vic", "mal", "wes"
PRIVATE = "olga's private notes"


class World:
    def __init__(self, hub: LocalHub, home: Path, outside: Path) -> None:
        self.hub = hub
        self.home = home  # olga's server root
        self.outside = outside  # a secret file outside the server's files altogether
        self.tokens = {name: hub.user_token(name) for name in (OWNER, EDITOR, VIEWER, OTHER, WHOLE)}

    def server(self, path: str, method: str = "GET", body: Any = None, user: str = OWNER,
               ) -> tuple[int, Any]:
        """``path`` is sent exactly as written: percent-escapes in it reach the server as such."""
        return self.hub.api(method, f"/user/{OWNER}/{path}", body, self.tokens[user])

    def raw(self, path: str, method: str, data: bytes, user: str) -> int:
        """A request with a body of exactly these bytes; its status."""
        request = urllib.request.Request(f"{self.hub.url}/user/{OWNER}/{path}", data=data,
                                         method=method)
        request.add_header("Authorization", f"token {self.tokens[user]}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    def put_text(self, path: str, text: str, user: str = OWNER) -> int:
        return self.server(f"api/contents/{path}", "PUT",
                           {"type": "file", "format": "text", "content": text}, user)[0]

    def notebook_session(self, path: str, user: str) -> tuple[str, str]:
        """Start a kernel for ``path`` as ``user``: (notebook session id, kernel id)."""
        status, model = self.server("api/sessions", "POST", {
            "path": path, "type": "notebook", "name": "", "kernel": {"name": "python3"}}, user)
        assert status == 201, model
        return model["id"], model["kernel"]["id"]

    def sessions(self) -> dict[str, dict[str, Any]]:
        """The server's notebook sessions by id, as its owner sees them."""
        status, models = self.server("api/sessions")
        assert status == 200, models
        return {m["id"]: m for m in models}

    def kernel_ids(self) -> set[str]:
        status, models = self.server("api/kernels")
        assert status == 200, models
        return {m["id"] for m in models}

    async def kernel_socket(self, kernel_id: str, user: str) -> WebSocketClientConnection:
        url = (self.hub.url.replace("http", "ws", 1)
               + f"/user/{OWNER}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}")
        return await websocket_connect(HTTPRequest(
            url, headers={"Authorization": f"token {self.tokens[user]}"}))

    async def run(self, kernel_id: str, user: str, code: str) -> str:
        ws = await self.kernel_socket(kernel_id, user)
        try:
            return await asyncio.wait_for(execute(ws, code), 60)
        finally:
            await closed(ws)

    async def kernel_refused(self, kernel_id: str, user: str) -> None:
        """``user`` cannot attach to the kernel; if they can, show what they could do with it."""
        try:
            ws = await self.kernel_socket(kernel_id, user)
        except HTTPClientError as e:
            assert e.code == 403, e
            return
        try:
            seen = await asyncio.wait_for(execute(ws, (
                "import os; print(os.getcwd(), bool(os.environ.get('JUPYTERHUB_API_TOKEN')))")), 60)
        finally:
            await closed(ws)
        pytest.fail(f"{user} attached to kernel {kernel_id} and ran code in it "
                    f"(cwd, server token visible: {seen.strip()})")


async def closed(ws: WebSocketClientConnection) -> None:
    """Close a kernel socket and wait until it is (it chatters until then), so that no
    socket outlives the test's event loop."""
    close_socket(ws)
    with contextlib.suppress(asyncio.TimeoutError):
        async with asyncio.timeout(5):
            while await ws.read_message() is not None:
                pass


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("confine")
    outside = workdir / "outside-secret.txt"
    outside.write_text("a secret outside every server's files")
    # Kernels as the server's account (no sandbox): the links below are made as such a
    # kernel can, the worst case for the paths the Authorizer must not follow.
    hub = start_hub(workdir, manage_hub_access=True, extra=(
        "c.YDocExtension.document_save_delay = 0.2\nc.RTCPolicy.kernel_isolation = 'none'\n"))
    try:
        w = World(hub, workdir / "home" / OWNER, outside)
        start_server(hub, OWNER)
        for folder in ("proj", "other"):
            assert w.server(f"api/contents/{folder}", "PUT", {"type": "directory"})[0] in (200, 201)
        for path, text in [("private.txt", PRIVATE), ("shared.txt", PRIVATE),
                           ("other/b.txt", "mal's session's file"),
                           ("proj/mine.txt", "proj file"), ("proj%2Fsecret.txt", PRIVATE)]:
            assert w.put_text(quote(path), text) in (200, 201), path
        for path in ("proj/nb.ipynb", "other/b.ipynb"):
            assert w.server(f"api/contents/{path}", "PUT", {
                "type": "notebook", "format": "json",
                "content": code_notebook(("free", "locked"))})[0] in (200, 201)
        rtc = _rtc(w)
        project = host_session(rtc, {"title": "Project", "host": "owner", "root": "proj",
                                     "members": [{"user": EDITOR, "role": "editor"},
                                                 {"user": VIEWER, "role": "viewer"}]})
        host_session(rtc, {"title": "Other", "host": "owner", "root": "other",
                           "members": [{"user": OTHER, "role": "editor"}]})
        host_session(rtc, {"title": "Whole", "host": "owner", "root": "",
                           "members": [{"user": WHOLE, "role": "editor"}]})
        status, reply = rtc("PUT", f"/sessions/{project}/cells",
                            {"path": "nb.ipynb", "cell_id": "locked", "rule": "locked"})
        assert status in (200, 201), reply
        # the hub's shares are made right after the grants: until then the hub itself
        # answers 403, and a refusal test would pass for the wrong reason
        for user, path in [(EDITOR, "proj"), (VIEWER, "proj"), (OTHER, "other"),
                           (WHOLE, "private.txt")]:
            wait_for(f"{user}'s share", lambda u=user, p=path: w.server(f"api/contents/{p}", user=u
                                                                       )[0] == 200)
        yield w
    finally:
        hub.stop()


def _rtc(w: World) -> Any:
    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return w.hub.rtc(method, path, body, w.tokens[OWNER])
    return call


# -- 5. the folder's edge, however it is spelled ------------------------------------------


def refused(status: int, reply: Any) -> bool:
    """A 403 from the Authorizer (jupyter_server's message), not from the hub or a handler."""
    return status == 403 and "is not authorized to" in str(reply)


@pytest.mark.parametrize(("url", "lands"), [
    ("proj%252Fescaped.txt", "proj%2Fescaped.txt"),  # tornado decodes once: "proj%2Fescaped.txt"
    ("%2570roj%252Fx.txt", "%70roj%2Fx.txt"),
    ("%20proj", " proj"),  # the service strips whitespace, the file system does not
    ("proj%20", "proj "),
    ("proj%09", "proj\t"),
    ("%0Aproj", "\nproj"),
    ("%E2%80%83proj", "\u2003proj"),  # an em space: str.strip() takes it too
])
def test_an_encoded_path_cannot_write_outside_the_folder(world: World, url: str, lands: str) -> None:
    status, reply = world.server(f"api/contents/{url}", "PUT",
                                 {"type": "file", "format": "text", "content": "escaped"}, EDITOR)
    assert refused(status, reply), f"PUT api/contents/{url}: {status} {reply}"
    assert not (world.home / lands).exists()


@pytest.mark.parametrize(("url", "lands"), [("%2570roj", "%70roj"), ("%0Bproj", "\x0bproj"),
                                            ("proj%E2%80%82", "proj\u2002")])
def test_an_encoded_path_cannot_make_a_folder_at_the_root(world: World, url: str, lands: str) -> None:
    status, reply = world.server(f"api/contents/{url}", "PUT", {"type": "directory"}, EDITOR)
    assert refused(status, reply), (status, reply)
    assert not (world.home / lands).exists()


@pytest.mark.parametrize("new_path", [
    "proj%2Fmoved-{n}.txt", "%70roj/moved-{n}.txt", "\tproj/moved-{n}.txt", "/proj/../moved-{n}.txt",
    "proj/../moved-{n}.txt", "proj\\..\\moved-{n}.txt", "proj/x\x00moved-{n}.txt", "moved-{n}.txt",
])
def test_a_rename_body_cannot_move_a_file_out(world: World, new_path: str) -> None:
    n = uuid.uuid4().hex[:8]
    assert world.put_text(f"proj/to-move-{n}.txt", "mine", user=EDITOR) in (200, 201)
    status, reply = world.server(f"api/contents/proj/to-move-{n}.txt", "PATCH",
                                 {"path": new_path.format(n=n)}, EDITOR)
    assert refused(status, reply), (status, reply)
    assert (world.home / "proj" / f"to-move-{n}.txt").exists()
    assert not [p for p in world.home.rglob(f"*moved-{n}*")]


@pytest.mark.parametrize("prefix", [b"\x0c", b"\x0b"])
def test_a_body_only_jupyter_server_can_parse_is_refused(world: World, prefix: bytes) -> None:
    # jupyter_server strips ASCII whitespace (form feed, vertical tab too) before
    # parsing; JSON itself does not allow them: a checker that parses differently
    # sees no rename at all
    name = f"ff-{prefix.hex()}.txt"
    assert world.put_text(f"proj/{name}", "mine", user=EDITOR) in (200, 201)
    status = world.raw(f"api/contents/proj/{name}", "PATCH", prefix + b'{"path": "ff-out.txt"}', EDITOR)
    assert status == 403
    assert not (world.home / "ff-out.txt").exists()
    assert (world.home / "proj" / name).exists()


def test_an_encoded_name_outside_the_folder_is_not_read(world: World) -> None:
    # "proj%2Fsecret.txt" is a file at the server's root, not in proj/
    for url in ("api/contents/proj%252Fsecret.txt", "files/proj%252Fsecret.txt",
                "api/contents/proj%252Fsecret.txt/checkpoints"):
        status, reply = world.server(url, user=VIEWER)
        assert refused(status, reply), (url, reply)
    status, reply = world.server("api/contents/proj", "POST", {"copy_from": "proj%2Fsecret.txt"}, EDITOR)
    assert refused(status, reply), reply


def test_a_notebook_session_cannot_be_placed_outside_the_folder(world: World) -> None:
    before = {m["path"] for m in world.sessions().values()}
    for body in [
        {"path": "proj%2Fenc.ipynb"},  # the session manager takes the body as it is
        {"path": " proj/ws.ipynb"},
        {"path": "/proj/../out.ipynb"},
        # the legacy form: jupyter_server takes notebook.name over path
        {"path": "proj/legacy.ipynb", "notebook": {"name": "legacy-out.ipynb"}},
        {"path": "proj/legacy.ipynb", "notebook": {"path": "legacy-out2.ipynb"}},
    ]:
        status, reply = world.server("api/sessions", "POST", {
            "type": "notebook", "name": "", "kernel": {"name": "python3"}, **body}, EDITOR)
        assert refused(status, reply), (body, status, reply)
    assert {m["path"] for m in world.sessions().values()} == before


def test_absolute_paths_are_refused_even_on_a_whole_server_session(world: World) -> None:
    # the file id manager keeps an absolute path as it is: a document outside the server
    outside = quote(str(world.outside), safe="")
    status, reply = world.server(f"api/collaboration/session/{outside}", "PUT",
                                 {"format": "text", "type": "file"}, WHOLE)
    assert refused(status, reply), reply
    assert world.server("api/collaboration/session/private.txt", "PUT",
                        {"format": "text", "type": "file"}, WHOLE)[0] in (200, 201)


def test_file_ids_are_not_looked_up_for_collaborators(world: World) -> None:
    # the path in its query is read by nobody but the file id manager (which keeps
    # absolute paths); collaborators reach documents through the collaboration session
    for query in (f"id?path={quote(str(world.outside) + '-x')}", "id?path=private.txt", "path?id=x"):
        status, reply = world.server(f"api/fileid/{query}", user=WHOLE)
        assert refused(status, reply), (query, status, reply)


def test_the_folder_itself_still_works(world: World) -> None:
    # tornado decodes "%2541" to "%41", which another reader would decode again
    assert world.put_text("proj/a%2541.txt", "x", user=EDITOR) == 403
    assert not (world.home / "proj" / "a%41.txt").exists()
    assert world.put_text("proj/50%25.txt", "x", user=EDITOR) in (200, 201)  # "50%.txt": no escape
    assert world.put_text("proj/with%20space.txt", "x", user=EDITOR) in (200, 201)
    assert world.server("api/contents/proj/with%20space.txt", user=VIEWER)[0] == 200
    assert world.server("api/contents/proj/with%20space.txt", "PATCH",
                        {"path": "proj/renamed space.txt"}, EDITOR)[0] == 200
    assert (world.home / "proj" / "renamed space.txt").exists()


# -- 6. kernels and notebook sessions of others -------------------------------------------


@pytest.fixture(scope="module")
def owners_kernel(world: World) -> str:
    """A kernel olga started without a notebook session (a console, a script's kernel)."""
    status, model = world.server("api/kernels", "POST", {"name": "python3"})
    assert status == 201, model
    return str(model["id"])


@pytest.fixture
def eves_session(world: World) -> tuple[str, str]:
    """eve's notebook session and kernel, fresh for each test (attacks may move or end them)."""
    return world.notebook_session(f"proj/eve-{uuid.uuid4().hex[:8]}.ipynb", EDITOR)


async def test_a_kernel_without_a_notebook_session_is_the_owners(world: World, owners_kernel: str
                                                                ) -> None:
    for user in (OTHER, EDITOR, WHOLE):
        await world.kernel_refused(owners_kernel, user)
    for suffix, method in [("", "GET"), ("/interrupt", "POST"), ("/restart", "POST")]:
        status, reply = world.server(f"api/kernels/{owners_kernel}{suffix}", method,
                                     {} if method == "POST" else None, OTHER)
        assert refused(status, reply), (suffix, reply)
    assert world.server(f"api/kernels/{owners_kernel}", "DELETE", user=OTHER)[0] == 403
    assert owners_kernel in world.kernel_ids()
    # the owner uses it as before
    assert "ok" in await world.run(owners_kernel, OWNER, "print('ok')")


def test_collaborators_start_kernels_through_notebook_sessions_only(world: World) -> None:
    before = world.kernel_ids()
    for body in ({"name": "python3"}, {"name": "python3", "path": "proj"}):
        status, reply = world.server("api/kernels", "POST", body, EDITOR)
        assert refused(status, reply), reply
    assert world.kernel_ids() == before


async def test_the_notebook_session_of_another_member_is_out_of_reach(
        world: World, eves_session: tuple[str, str]) -> None:
    session_id, kernel_id = eves_session
    await world.kernel_refused(kernel_id, OTHER)
    await world.kernel_refused(kernel_id, VIEWER)  # in the folder, but a viewer runs no code
    for body in ({"path": "other/stolen.ipynb"}, {"notebook": {"path": "other/stolen.ipynb"}},
                 {"name": "mine"}, {"kernel": {"name": "python3"}}):
        status, reply = world.server(f"api/sessions/{session_id}", "PATCH", body, OTHER)
        assert refused(status, reply), (body, reply)
    assert world.server(f"api/sessions/{session_id}", user=OTHER)[0] == 403
    assert world.server(f"api/sessions/{session_id}", "DELETE", user=OTHER)[0] == 403
    for suffix in ("/interrupt", "/restart"):
        assert world.server(f"api/kernels/{kernel_id}{suffix}", "POST", {}, OTHER)[0] == 403
    after = world.sessions()[session_id]
    assert after["path"].startswith("proj/eve-") and after["kernel"]["id"] == kernel_id


async def test_another_members_kernel_cannot_be_attached_to_a_session(
        world: World, eves_session: tuple[str, str]) -> None:
    _, kernel_id = eves_session
    status, reply = world.server("api/sessions", "POST", {
        "path": "other/attach.ipynb", "type": "notebook", "name": "", "kernel": {"id": kernel_id}},
        OTHER)
    assert refused(status, reply), reply
    own_session, own_kernel = world.notebook_session("other/own.ipynb", OTHER)
    status, reply = world.server(f"api/sessions/{own_session}", "PATCH", {"kernel": {"id": kernel_id}},
                                 OTHER)
    assert refused(status, reply), reply
    assert world.sessions()[own_session]["kernel"]["id"] == own_kernel
    assert not any(m["kernel"]["id"] == kernel_id and m["path"].startswith("other/")
                   for m in world.sessions().values())


async def test_a_member_may_not_move_their_own_session_out(world: World) -> None:
    session_id, _ = world.notebook_session("proj/moving.ipynb", EDITOR)
    for path in ("other/moved.ipynb", "proj%2Fmoved.ipynb", "moved.ipynb"):
        status, reply = world.server(f"api/sessions/{session_id}", "PATCH", {"path": path}, EDITOR)
        assert refused(status, reply), (path, reply)
    assert world.server(f"api/sessions/{session_id}", "PATCH", {"path": "proj/renamed.ipynb"},
                        user=EDITOR)[0] == 200
    assert world.sessions()[session_id]["path"] == "proj/renamed.ipynb"


async def test_an_editor_runs_code_in_their_own_kernel(world: World, eves_session: tuple[str, str]
                                                       ) -> None:
    session_id, kernel_id = eves_session
    out = await world.run(kernel_id, EDITOR, "import os; print(os.getcwd())")
    assert out.strip() == str(world.home / "proj")
    assert world.server(f"api/sessions/{session_id}", user=EDITOR)[0] == 200
    assert world.server(f"api/kernels/{kernel_id}", user=EDITOR)[0] == 200
    assert world.server(f"api/kernels/{kernel_id}/interrupt", "POST", {}, EDITOR)[0] == 204


# -- 7. links made from a kernel ----------------------------------------------------------


@pytest.fixture(scope="module")
def links_kernel(world: World) -> str:
    """eve's kernel, in her session's folder: the one that makes the links."""
    return world.notebook_session("proj/links.ipynb", EDITOR)[1]


@pytest.fixture
async def links(world: World, links_kernel: str) -> dict[Path, Path]:
    """Links eve's kernel makes (it runs as the server's account, which may do this)."""
    home, proj = world.home, world.home / "proj"
    if not list(home.glob(".*ystore*.db")):  # the ystore exists once a room was used
        (await YClient.connect(world.hub.url, OWNER, "proj/nb.ipynb", world.tokens[OWNER])).close()
    ystore = await asyncio.to_thread(wait_for, "the ystore", lambda: sorted(home.glob(".*ystore*.db")))
    runtime = Path((await world.run(links_kernel, EDITOR, "from jupyter_core.paths import "
                                    "jupyter_runtime_dir as d; print(d())")).strip())
    assert runtime.is_relative_to(home), f"the kernels' runtime folder {runtime} is not in {home}"
    made = {
        proj / "out.txt": home / "private.txt",
        proj / "abs.txt": world.outside,
        proj / "otherdir": home / "other",
        proj / "updir": home,
        proj / "ystore.db": ystore[0],
        proj / "alias.ipynb": proj / "nb.ipynb",
        proj / "alias.txt": proj / "mine.txt",  # inside the folder: fine
        home / "lab": proj,  # from the whole-server session into another session's folder
        home / "rt": runtime,  # the kernels' connection files (their keys) live there
    }
    code = (f"import os\nmade = {[(str(p), str(t)) for p, t in made.items()]!r}\n"
            "for link, to in made:\n"
            "    if not os.path.lexists(link):\n"
            "        os.symlink(to, link)\n"
            f"if not os.path.exists({str(proj / 'hard.txt')!r}):\n"
            f"    os.link({str(home / 'shared.txt')!r}, {str(proj / 'hard.txt')!r})\n"
            "print('made')")
    assert "made" in await world.run(links_kernel, EDITOR, code)
    return made


@pytest.mark.parametrize("url", [
    "api/contents/proj/out.txt", "files/proj/out.txt", "api/contents/proj/abs.txt",
    "files/proj/abs.txt", "api/contents/proj/otherdir", "api/contents/proj/otherdir/b.txt",
    "files/proj/otherdir/b.txt", "nbconvert/html/proj/otherdir/b.ipynb", "api/contents/proj/updir",
    "api/contents/proj/updir/private.txt", "files/proj/ystore.db", "api/contents/proj/hard.txt",
    "files/proj/hard.txt",
])
def test_a_viewer_reads_nothing_through_a_link_out(world: World, links: dict[Path, Path], url: str
                                                   ) -> None:
    status, reply = world.server(url, user=VIEWER)
    assert refused(status, reply), (url, status, str(reply)[:200])


def test_links_inside_the_folder_work_as_before(world: World, links: dict[Path, Path]) -> None:
    status, model = world.server("api/contents/proj/alias.txt", user=VIEWER)
    assert status == 200 and model["content"] == "proj file"
    assert world.server("api/contents/proj", user=VIEWER)[0] == 200  # the listing shows the links
    assert world.server("api/contents/proj/alias.ipynb", user=VIEWER)[0] == 200


def test_an_editor_writes_nothing_through_a_link_out(world: World, links: dict[Path, Path]) -> None:
    assert world.put_text("proj/out.txt", "overwritten", user=EDITOR) == 403
    assert world.put_text("proj/hard.txt", "overwritten", user=EDITOR) == 403
    assert (world.home / "private.txt").read_text() == PRIVATE
    assert (world.home / "shared.txt").read_text() == PRIVATE
    assert world.put_text("proj/updir/planted.txt", "planted", user=EDITOR) == 403
    assert not (world.home / "planted.txt").exists()
    assert world.put_text("proj/otherdir/planted.txt", "planted", user=EDITOR) == 403
    assert not (world.home / "other" / "planted.txt").exists()
    assert world.put_text("proj/mv.txt", "mine", user=EDITOR) in (200, 201)
    assert world.server("api/contents/proj/mv.txt", "PATCH", {"path": "proj/otherdir/mv.txt"},
                        user=EDITOR)[0] == 403
    assert not (world.home / "other" / "mv.txt").exists()
    assert world.server("api/contents/proj", "POST", {"copy_from": "proj/updir/private.txt"},
                        user=EDITOR)[0] == 403


def test_a_link_to_a_locked_notebook_does_not_unlock_it(world: World, links: dict[Path, Path]) -> None:
    tampered = code_notebook({"free": "# free\n", "locked": "TAMPERED\n"})
    status, reply = world.server("api/contents/proj/alias.ipynb", "PUT",
                                 {"type": "notebook", "format": "json", "content": tampered}, EDITOR)
    assert refused(status, reply), reply
    assert "TAMPERED" not in (world.home / "proj" / "nb.ipynb").read_text()


async def test_no_room_opens_through_a_link(world: World, links: dict[Path, Path]) -> None:
    for path in ("proj/alias.ipynb", "proj/otherdir/b.ipynb"):
        status, reply = world.server(f"api/collaboration/session/{path}", "PUT",
                                     {"format": "json", "type": "notebook"}, EDITOR)
        assert refused(status, reply), (path, reply)
    assert world.server("api/collaboration/timeline/proj/alias.ipynb?format=json&type=notebook",
                        user=EDITOR)[0] == 403
    # a room id the owner's JupyterLab made for the link is no way in either
    status, reply = world.server("api/collaboration/session/proj/alias.ipynb", "PUT",
                                 {"format": "json", "type": "notebook"})
    assert status in (200, 201), reply
    with pytest.raises(HTTPClientError) as socket:
        ws = await room_socket(world.hub.url, OWNER, f"json:notebook:{reply['fileId']}",
                               reply["sessionId"], world.tokens[EDITOR])
        close_socket(ws)
    assert socket.value.code == 403


def test_a_whole_server_session_stops_at_other_folders_and_hidden_files(
        world: World, links: dict[Path, Path]) -> None:
    assert world.server("api/contents/private.txt", user=WHOLE)[0] == 200  # its own files
    # shared.txt is one of its files, but eve's kernel gave it a second name in proj/
    for url in ("api/contents/lab/mine.txt", "files/lab/mine.txt", "api/contents/rt",
                "api/contents/proj/mine.txt", "api/contents/shared.txt"):
        status, reply = world.server(url, user=WHOLE)
        assert refused(status, reply), (url, status, str(reply)[:200])
    connection_files = [p.name for p in links[world.home / "rt"].glob("kernel-*.json")]
    assert connection_files
    assert world.server(f"api/contents/rt/{connection_files[0]}", user=WHOLE)[0] == 403
