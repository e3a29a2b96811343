"""JupyterLab in a real browser, for collaborators on someone else's server.

One hub for the module: olive's own server hosts session "Lab 1" (folder
``lab1``) with ed as an editor and vi as a viewer; cell 1 of ``nb.ipynb`` is
locked.  ed and vi use JupyterLab in headless Chromium, reaching olive's server
through the JupyterHub share the service made; olive follows the document with a
direct pycrdt client.  Screenshots go to $HUB_RTC_SCREENSHOTS (or tmp_path).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page

from hub_rtc.localhub import LocalHub
from tests.integration.browser import (
    LabUser,
    browser_fixture,  # noqa: F401  (the `browser` fixture)
    cell_text,
    dialogs,
    hide_notifications,
    login,
    open_notebook,
    record_cell,
    recorded,
    screenshot,
    screenshots_fixture,  # noqa: F401  (the `screenshots` fixture)
    type_into_cell,
)
from tests.integration.conftest import code_notebook, saved_notebook, start_hub, start_server, wait_for
from tests.integration.yclient import YClient

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

OWNER, EDITOR, VIEWER = "olive", "ed", "vi"
NOTEBOOK = "lab1/nb.ipynb"
CELLS = ("free", "locked", "spare")
FREE, LOCKED, SPARE = range(3)


class World:
    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub
        self.home = hub.workdir / "home" / OWNER
        self.tokens = {name: hub.user_token(name) for name in (OWNER, EDITOR, VIEWER)}
        self.session_id = ""

    def server(self, path: str, method: str = "GET", body: Any = None, user: str = OWNER,
               ) -> tuple[int, Any]:
        return self.hub.api(method, f"/user/{OWNER}/{path}", body, self.tokens[user])

    def disk(self) -> dict[str, str]:
        saved = saved_notebook(self.home / NOTEBOOK)
        return {c["id"]: "".join(c["source"]) for c in saved["cells"]}

    async def owner_client(self) -> YClient:
        return await YClient.connect(self.hub.url, OWNER, NOTEBOOK, self.tokens[OWNER])

    def lab_files(self) -> list[Path]:
        """What olive's JupyterLab keeps of settings and workspaces."""
        lab = self.home / ".jupyter" / "lab"
        return sorted(p for p in lab.rglob("*") if p.is_file()) if lab.exists() else []


async def until(predicate: Any, timeout: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"not true within {timeout} s"
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    hub = start_hub(tmp_path_factory.mktemp("lab"), manage_hub_access=True,
                    extra="c.YDocExtension.document_save_delay = 0.2\n")
    try:
        w = World(hub)
        start_server(hub, OWNER)
        assert w.server("api/contents/lab1", "PUT", {"type": "directory"})[0] in (200, 201)
        content = code_notebook(CELLS, kernelspec=True)
        assert w.server(f"api/contents/{NOTEBOOK}", "PUT", {"type": "notebook", "format": "json",
                                                            "content": content})[0] in (200, 201)
        assert w.server("api/contents/olives-private.txt", "PUT", {"type": "file", "format": "text",
                                                                   "content": "olive's"})[0] in (200, 201)
        members = [{"user": EDITOR, "role": "editor"}, {"user": VIEWER, "role": "viewer"}]

        def created() -> Any:
            status, reply = hub.rtc("POST", "/sessions", {"title": "Lab 1", "host": "owner",
                                                         "root": "lab1", "members": members},
                                    w.tokens[OWNER])
            assert status in (201, 409), reply  # 409 until the server has announced itself
            return reply if status == 201 else None

        session = wait_for("the session could be hosted on olive's server", created)
        w.session_id = session["id"]
        status, reply = hub.rtc("PUT", f"/sessions/{session['id']}/cells",
                                {"path": "nb.ipynb", "cell_id": "locked", "rule": "locked"},
                                w.tokens[OWNER])
        assert status in (200, 201), reply
        yield w
    finally:
        hub.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def users(world: World, browser: Browser) -> AsyncIterator[dict[str, LabUser]]:
    """ed and vi, logged in at the hub, each in their own browser context."""
    logged_in: dict[str, LabUser] = {}
    try:
        for name in (EDITOR, VIEWER):
            logged_in[name] = await login(browser, world.hub.url, name)
        yield logged_in
    finally:
        for user in logged_in.values():
            await user.close()


@pytest_asyncio.fixture(loop_scope="module")
async def olive(world: World) -> AsyncIterator[YClient]:
    client = await world.owner_client()
    yield client
    client.close()


async def test_an_editor_edits_the_shared_notebook_in_jupyterlab(
        world: World, users: dict[str, LabUser], olive: YClient, screenshots: Path) -> None:
    ed = users[EDITOR]
    await open_notebook(ed, world.hub.url, OWNER, NOTEBOOK, kernel=True)  # editors may run code
    assert await dialogs(ed.page) == []
    assert await cell_text(ed.page, LOCKED) == "# locked\n"
    await type_into_cell(ed.page, FREE, "ed-in-jupyterlab = 1  ")
    await olive.until(lambda: olive.source("free").startswith("ed-in-jupyterlab = 1  "))
    await asyncio.to_thread(wait_for, "the edit saved to disk",
                            lambda: world.disk()["free"].startswith("ed-in-jupyterlab = 1  "))
    assert await dialogs(ed.page) == []
    await hide_notifications(ed.page)
    await screenshot(ed.page, screenshots, "jupyterlab-collaborator-edits-shared-notebook")
    # confined in the browser too: the file browser could not list olive's home
    assert ed.log.refused("/api/contents")  # the root listing JupyterLab asks for first
    assert "olives-private.txt" not in await ed.page.content()
    assert not ed.log.page_errors
    # JupyterLab saves its layout as a workspace: refused, quietly, and olive's stay as they were
    await until(lambda: any(method == "PUT" for _, method, _ in ed.log.refused("/lab/api/workspaces")))
    assert await dialogs(ed.page) == [] and world.lab_files() == []


PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


async def badge_of(page: Page) -> tuple[str, str]:
    """The role badge hub_rtc's JupyterLab extension puts in the notebook's toolbar."""
    badge = page.locator(f"{PANEL} .hub-rtc-role")
    await badge.wait_for(timeout=15_000)
    await until_async(lambda: badge.inner_text(), lambda text: text != "…")
    return await badge.inner_text(), str(await badge.get_attribute("title"))


async def marked(page: Page, index: int) -> bool:
    cell = page.locator(f"{PANEL} .jp-Notebook .jp-Cell").nth(index)
    return "hub-rtc-protected" in str(await cell.get_attribute("class"))


async def until_async(read: Any, holds: Any, timeout: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not holds(await read()):
        assert loop.time() < deadline, f"not true within {timeout} s"
        await asyncio.sleep(0.1)


async def test_a_locked_cell_is_read_only_and_marked_in_the_editors_browser(
        world: World, users: dict[str, LabUser], olive: YClient, screenshots: Path) -> None:
    ed = users[EDITOR]
    await open_notebook(ed, world.hub.url, OWNER, NOTEBOOK, kernel=True)
    label, says = await badge_of(ed.page)
    assert label == "editor" and "except those locked" in says
    await until_async(lambda: marked(ed.page, LOCKED), bool)
    assert not await marked(ed.page, FREE)
    before = await cell_text(ed.page, LOCKED)
    await record_cell(ed.page, LOCKED)
    await type_into_cell(ed.page, LOCKED, "SECRET-locked ")
    await asyncio.sleep(0.5)  # past the save delay
    # read-only in the browser: not even shown for a moment (an older client would be
    # reverted by the server, tests/integration/test_enforcement.py)
    assert set(await recorded(ed.page, LOCKED)) <= {before}
    assert await cell_text(ed.page, LOCKED) == before
    assert olive.source("locked") == before
    assert "SECRET" not in json.dumps(olive.state()) and "SECRET" not in json.dumps(world.disk())
    assert await dialogs(ed.page) == []
    await hide_notifications(ed.page)
    await screenshot(ed.page, screenshots, "jupyterlab-locked-cell-marked")
    # olive frees the cell: editable in ed's JupyterLab without a reload
    rules = f"/sessions/{world.session_id}/cells"
    status, _ = world.hub.rtc("DELETE", rules + "?path=nb.ipynb&cell_id=locked", None,
                              world.tokens[OWNER])
    assert status == 204
    await until_async(lambda: marked(ed.page, LOCKED), lambda m: not m, timeout=5)
    await type_into_cell(ed.page, LOCKED, "freed ")
    await olive.until(lambda: olive.source("locked").startswith("freed "))
    # and locked again, shown again
    status, _ = world.hub.rtc("PUT", rules, {"path": "nb.ipynb", "cell_id": "locked",
                                             "rule": "locked"}, world.tokens[OWNER])
    assert status in (200, 201)
    await until_async(lambda: marked(ed.page, LOCKED), bool, timeout=5)


async def test_a_viewers_notebook_is_read_only_in_their_browser(
        world: World, users: dict[str, LabUser], olive: YClient, screenshots: Path) -> None:
    vi = users[VIEWER]
    await open_notebook(vi, world.hub.url, OWNER, NOTEBOOK)  # "Select Kernel": No Kernel
    assert await dialogs(vi.page) == []  # and no "Error Starting Kernel"
    assert vi.log.refused("/api/kernelspecs")  # a viewer's JupyterLab is offered no kernel
    label, says = await badge_of(vi.page)
    assert label == "viewer" and "may not change it" in says
    before = await cell_text(vi.page, SPARE)
    await record_cell(vi.page, SPARE)
    await type_into_cell(vi.page, SPARE, "SECRET-viewer ")
    await asyncio.sleep(0.5)
    assert set(await recorded(vi.page, SPARE)) <= {before}  # read-only: never shown
    assert not await marked(vi.page, SPARE)  # the badge says it once, not every cell
    assert olive.source("spare") == before
    assert "SECRET" not in json.dumps(olive.state()) and "SECRET" not in json.dumps(world.disk())
    assert await dialogs(vi.page) == []
    # answering JupyterLab's news question writes a setting: refused, quietly
    await vi.page.locator(".jp-toast-button", has_text="No").click()
    await until(lambda: bool(vi.log.refused("/lab/api/settings/")))
    await hide_notifications(vi.page)
    assert await dialogs(vi.page) == [] and world.lab_files() == []
    await screenshot(vi.page, screenshots, "jupyterlab-viewer-keystroke-reverted")


async def test_collaborators_leave_the_owners_jupyterlab_alone(world: World) -> None:
    assert world.lab_files() == []  # JupyterLab's own tries in the tests above left nothing
    tries = [
        ("PUT", "lab/api/settings/@jupyterlab/apputils-extension:themes",
         {"raw": '{"theme": "JupyterLab Dark"}'}),
        ("PUT", "lab/api/workspaces/default", {"data": {}, "metadata": {"id": "default"}}),
        ("GET", "lab/api/workspaces", None),
        ("DELETE", "lab/api/workspaces/default", None),
        # a bogus command: harmless even if it got through (the owner gets 4xx, not 403)
        ("POST", "lab/api/extensions", {"cmd": "bogus", "extension_name": "x"}),
        ("POST", "lab/api/plugins", {"cmd": "bogus", "plugin_name": "x"}),
        ("DELETE", "lab/api/build", None),  # cancels a build, if one ran
        ("PATCH", "api/me", {"color": "#ff0000"}),
    ]
    for user in (EDITOR, VIEWER):
        for method, path, body in tries:
            status, reply = world.server(path, method, body, user=user)
            assert status == 403, (user, method, path, status, reply)
    assert world.lab_files() == []
    # reading what JupyterLab needs to start stays open
    for path in ("lab/api/settings", "lab/api/translations", "api/me", "api/nbconvert"):
        assert world.server(path, user=VIEWER)[0] == 200, path
    # the owner keeps their JupyterLab
    assert world.server("lab/api/workspaces/mine", "PUT",
                        {"data": {}, "metadata": {"id": "mine"}})[0] == 204
    assert world.server("lab/api/extensions", "POST", {"cmd": "bogus", "extension_name": "x"}
                        )[0] not in (401, 403)
    assert [p.name.split("-")[0] for p in world.lab_files()] == ["mine"]
