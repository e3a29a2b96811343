"""The document API end to end: a real hub, olive's shared server with the hub_rtc
extension, and the service opening the notebook's room on behalf of the token's user.

Session "Docs" lives in folder ``lab1`` of olive's server: ed and ann are editors,
vi is a viewer; cell ``locked`` is locked and cell ``assigned`` is ann's.  A
JupyterLab-style client (YClient, as olive, straight to the server's room) watches
every change the API makes arrive live.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub_rtc.localhub import LocalHub
from tests.integration.conftest import (
    code_notebook,
    host_session,
    saved_notebook,
    start_hub,
    start_server,
    wait_for,
)
from tests.integration.test_api import conforms
from tests.integration.yclient import YClient

pytestmark = pytest.mark.integration

OWNER, EDITOR, VIEWER, ASSIGNEE, STRANGER = "olive", "ed", "vi", "ann", "non"
NOTEBOOK = "lab1/nb.ipynb"
CELLS = ("free", "locked", "assigned")


def notebook() -> dict[str, Any]:
    """The three code cells, then a markdown cell ``notes``."""
    return code_notebook({**{cid: f"# {cid}\n" for cid in CELLS}, "notes": "Read me"},
                         markdown=("notes",))


class World:
    def __init__(self, hub: LocalHub, home: Path) -> None:
        self.hub = hub
        self.home = home
        self.tokens = {name: hub.user_token(name)
                       for name in (OWNER, EDITOR, VIEWER, ASSIGNEE, STRANGER)}
        self.session_id = ""

    def server(self, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
        return self.hub.api(method, f"/user/{OWNER}/{path}", body, self.tokens[OWNER])

    def rtc(self, method: str, path: str, body: Any = None, user: str = OWNER,
            token: str | None = None) -> tuple[int, Any]:
        return self.hub.rtc(method, path, body, token or self.tokens[user])

    def doc(self, path: str = "nb.ipynb") -> str:
        return f"/sessions/{self.session_id}/documents/{path}"

    def disk_sources(self, path: str = NOTEBOOK) -> dict[str, str]:
        cells = saved_notebook(self.home / OWNER / path)["cells"]
        return {c["id"]: "".join(c["source"]) for c in cells}

    async def watcher(self) -> YClient:
        return await YClient.connect(self.hub.url, OWNER, NOTEBOOK, self.tokens[OWNER])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("documents")
    hub = start_hub(workdir, manage_hub_access=True,
                    extra="c.YDocExtension.document_save_delay = 0.2\n")
    try:
        w = World(hub, workdir / "home")
        start_server(hub, OWNER)
        for folder in ("lab1", "lab1/week2"):
            assert w.server(f"api/contents/{folder}", "PUT", {"type": "directory"})[0] in (200, 201)
        for path in (NOTEBOOK, "lab1/week2/deep.ipynb"):
            status, _ = w.server(f"api/contents/{path}", "PUT",
                                 {"type": "notebook", "format": "json", "content": notebook()})
            assert status in (200, 201)
        members = [{"user": EDITOR, "role": "editor"}, {"user": VIEWER, "role": "viewer"},
                   {"user": ASSIGNEE, "role": "editor"}]
        w.session_id = host_session(w.rtc, {"title": "Docs", "host": "owner", "root": "lab1",
                                            "members": members})
        for cell, rule, writers in (("locked", "locked", []), ("assigned", "assigned", [{"user": ASSIGNEE}])):
            body = {"path": "nb.ipynb", "cell_id": cell, "rule": rule, "writers": writers}
            assert w.rtc("PUT", f"/sessions/{w.session_id}/cells", body)[0] in (200, 201)
        yield w
    finally:
        hub.stop()


@pytest.fixture
async def watcher(world: World) -> AsyncIterator[YClient]:
    client = await world.watcher()
    yield client
    client.close()


def ok(result: tuple[int, Any], status: int = 200) -> Any:
    code, body = result
    assert code == status, body
    return body


def refused(result: tuple[int, Any], status: int, words: str = "") -> str:
    code, body = result
    assert code == status, body
    assert isinstance(body, dict) and words in body["message"], body
    return str(body["message"])


# -- reading and writing -------------------------------------------------------------------


async def test_the_api_round_trips_a_notebook_while_a_client_watches(world: World, watcher: YClient
                                                                     ) -> None:
    read = ok(await asyncio.to_thread(world.rtc, "GET", world.doc(), user=EDITOR))
    conforms("Notebook", read)
    assert [c["id"] for c in read["cells"]] == ["free", "locked", "assigned", "notes"]
    assert read["cells"][0]["source"] == "# free\n"

    changed = ok(await asyncio.to_thread(world.rtc, "PUT", world.doc() + "/cells/free",
                                         {"source": "# free\nx = 'from the API ✓'\n"}, EDITOR))
    conforms("CellResult", changed)
    assert changed["index"] == 0 and changed["cell"]["source"] == "# free\nx = 'from the API ✓'\n"
    await watcher.until(lambda: watcher.source("free") == "# free\nx = 'from the API ✓'\n")

    appended = ok(await asyncio.to_thread(world.rtc, "POST", world.doc() + "/cells/free/append",
                                          {"source": "print(x)\n"}, EDITOR))
    assert appended["cell"]["source"].endswith("print(x)\n")
    await watcher.until(lambda: watcher.source("free").endswith("print(x)\n"))

    again = ok(await asyncio.to_thread(world.rtc, "GET", world.doc(), user=VIEWER))
    assert again["cells"][0]["source"] == "# free\nx = 'from the API ✓'\nprint(x)\n"
    await asyncio.to_thread(wait_for, "the edit saved to disk",
                            lambda: world.disk_sources()["free"].endswith("print(x)\n"))


async def test_cells_are_inserted_and_deleted_live(world: World, watcher: YClient) -> None:
    made = ok(await asyncio.to_thread(world.rtc, "POST", world.doc() + "/cells",
                                      {"index": 1, "cell_type": "markdown", "source": "## Step 2"},
                                      EDITOR), 201)
    conforms("CellResult", made)
    assert made["index"] == 1 and made["cell"]["cell_type"] == "markdown"
    await watcher.until(lambda: made["id"] in watcher.ids())
    assert watcher.ids().index(made["id"]) == 1 and watcher.source(made["id"]) == "## Step 2"
    last = ok(await asyncio.to_thread(world.rtc, "POST", world.doc() + "/cells", {}, EDITOR), 201)
    await watcher.until(lambda: watcher.ids()[-1] == last["id"])
    assert last["cell"]["cell_type"] == "code" and last["index"] == len(watcher.ids()) - 1

    for cell in (made["id"], last["id"]):
        status, _ = await asyncio.to_thread(world.rtc, "DELETE", world.doc() + f"/cells/{cell}",
                                            None, EDITOR)
        assert status == 204
    await watcher.until(lambda: made["id"] not in watcher.ids() and last["id"] not in watcher.ids())
    refused(await asyncio.to_thread(world.rtc, "DELETE", world.doc() + f"/cells/{made['id']}",
                                    None, EDITOR), 404, made["id"])


async def test_a_notebook_in_a_subfolder_of_the_session(world: World) -> None:
    path = world.doc("week2/deep.ipynb")
    ok(await asyncio.to_thread(world.rtc, "PUT", path + "/cells/locked", {"source": "deep\n"}, EDITOR))
    # cell rules name nb.ipynb only: the same cell id in another notebook is not locked
    read = ok(await asyncio.to_thread(world.rtc, "GET", path, user=EDITOR))
    assert read["cells"][1]["source"] == "deep\n"


# -- what is refused ------------------------------------------------------------------------


@pytest.mark.parametrize(("user", "cell", "words"), [
    (EDITOR, "locked", "cell locked is locked"),
    (EDITOR, "assigned", "assigned to others"),
    (VIEWER, "free", "role viewer may not write"),
])
async def test_refused_edits_change_nothing(world: World, watcher: YClient, user: str, cell: str,
                                            words: str) -> None:
    before, on_disk = watcher.source(cell), world.disk_sources()[cell]
    for method, suffix, body in (("PUT", "", {"source": "SECRET"}),
                                 ("POST", "/append", {"source": "SECRET"}),
                                 ("DELETE", "", None)):
        refused(await asyncio.to_thread(world.rtc, method, world.doc() + f"/cells/{cell}{suffix}",
                                        body, user), 403, words)
    if user == VIEWER:
        refused(await asyncio.to_thread(world.rtc, "POST", world.doc() + "/cells",
                                        {"source": "SECRET"}, user), 403, "viewer")
    await asyncio.sleep(0.5)
    assert watcher.source(cell) == before and cell in watcher.ids()
    assert "SECRET" not in json.dumps(watcher.state())
    assert world.disk_sources()[cell] == on_disk


async def test_the_assignee_and_the_owner_may_change_protected_cells(world: World, watcher: YClient
                                                                    ) -> None:
    ok(await asyncio.to_thread(world.rtc, "POST", world.doc() + "/cells/assigned/append",
                               {"source": "# ann\n"}, ASSIGNEE))
    ok(await asyncio.to_thread(world.rtc, "POST", world.doc() + "/cells/locked/append",
                               {"source": "# olive\n"}, OWNER))
    await watcher.until(lambda: watcher.source("assigned").endswith("# ann\n")
                        and watcher.source("locked").endswith("# olive\n"))


def test_scopes_decide_what_a_token_may_do(world: World) -> None:
    hub = world.hub
    service = "access:services!service=rtc"
    no_docs = hub.user_token(EDITOR, [service, "custom:rtc:sessions"])
    reader = hub.user_token(EDITOR, [service, "custom:rtc:documents:read"])
    writer = hub.user_token(EDITOR, [service, "custom:rtc:documents:write"])
    refused(world.rtc("GET", world.doc(), token=no_docs), 403, "custom:rtc:documents:read")
    refused(world.rtc("PUT", world.doc() + "/cells/free", {"source": "x"}, token=no_docs), 403,
            "custom:rtc:documents:write")
    assert ok(world.rtc("GET", world.doc(), token=reader))["cells"]
    refused(world.rtc("PUT", world.doc() + "/cells/free", {"source": "x"}, token=reader), 403,
            "custom:rtc:documents:write")
    assert ok(world.rtc("GET", world.doc(), token=writer))["cells"]  # writing includes reading
    result = ok(world.rtc("POST", world.doc() + "/cells/free/append", {"source": "# w\n"}, token=writer))
    assert result["cell"]["source"].endswith("# w\n")
    # a token that reaches the service but holds none of its scopes
    refused(world.rtc("GET", world.doc(), token=hub.user_token(EDITOR, [service])), 403)


def raw(world: World, method: str, path: str, data: bytes, user: str) -> tuple[int, Any]:
    request = urllib.request.Request(world.hub.service_url + path, data=data, method=method)
    request.add_header("Authorization", f"token {world.tokens[user]}")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_bad_requests(world: World) -> None:
    refused(raw(world, "PUT", world.doc() + "/cells/free", b"{not json", EDITOR), 400, "not valid JSON")
    refused(world.rtc("PUT", world.doc() + "/cells/free", {"text": "x"}, EDITOR), 422, "source")
    refused(world.rtc("POST", world.doc() + "/cells", {"cell_type": "heading"}, EDITOR), 422)
    refused(world.rtc("POST", world.doc() + "/cells", {"index": 99}, EDITOR), 422, "outside")
    refused(world.rtc("PUT", world.doc() + "/cells/nope", {"source": "x"}, EDITOR), 404, "nope")
    refused(world.rtc("GET", world.doc("missing.ipynb"), user=EDITOR), 404, "missing.ipynb")
    refused(world.rtc("GET", "/sessions/nope/documents/nb.ipynb", user=EDITOR), 404)
    refused(world.rtc("GET", world.doc("..%2Fprivate.ipynb"), user=EDITOR), 422, "outside")
    refused(world.rtc("GET", world.doc(), user=STRANGER), 403, "not shared")


# -- attribution --------------------------------------------------------------------------


async def test_activity_credits_the_tokens_user(world: World) -> None:
    ok(await asyncio.to_thread(world.rtc, "POST", world.doc() + "/cells/notes/append",
                               {"source": "\nattributed"}, EDITOR))

    def credited() -> list[dict[str, Any]]:
        events = ok(world.rtc("GET", f"/sessions/{world.session_id}/activity?kind=edit"))["events"]
        return [e for e in events if e["cell_id"] == "notes"]

    events = await asyncio.to_thread(wait_for, "the edit in the session's activity", credited, 30)
    assert {e["user"] for e in events} == {EDITOR}
    assert all(e["path"] == "nb.ipynb" for e in events)


# -- a server that is not there ------------------------------------------------------------


def test_a_stopped_server_is_a_clear_refusal(world: World) -> None:
    assert world.hub.api("DELETE", f"/hub/api/users/{OWNER}/server")[0] in (202, 204)

    def stopped() -> bool:
        _, model = world.hub.api("GET", f"/hub/api/users/{OWNER}")
        return not (model.get("servers") or {})

    wait_for("olive's server stopped", stopped, 60)
    status, body = world.rtc("GET", world.doc(), user=EDITOR)
    assert status in (409, 503), body
    assert "server" in body["message"], body
    status, body = world.rtc("PUT", world.doc() + "/cells/free", {"source": "x"}, user=EDITOR)
    assert status in (409, 503), body
