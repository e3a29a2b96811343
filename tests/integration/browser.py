"""A real browser for the integration tests: headless Chromium driven by Playwright.

Debian's ``chromium`` (``./dev setup`` installs it) is launched with the flags
in ../shared/RECIPES.md; Playwright comes from pip and never downloads a
browser.  Each user gets their own browser context (their own cookies), so one
browser serves a whole test module.

    async with chromium() as browser:                     # or the `browser` fixture
        ed = await login(browser, hub.url, "ed")
        await open_notebook(ed, hub.url, "olive", "lab1/nb.ipynb")
        await type_into_cell(ed.page, 0, "hello ")
        assert (await cell_text(ed.page, 0)).startswith("hello ")
        await screenshot(ed.page, folder, "ed-typed")
        await ed.close()

Test modules use the fixtures by importing them under their function names:
``from .browser import browser_fixture, screenshots_fixture  # noqa: F401``.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    WebSocket,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

#: Debian's Chromium; Playwright's own browsers are never downloaded here
CHROMIUM = os.environ.get("HUB_RTC_CHROMIUM", "/usr/bin/chromium")
#: the flags from ../shared/RECIPES.md "A real browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}
#: where screenshots go when set; otherwise each test's own tmp_path
SCREENSHOTS_ENV = "HUB_RTC_SCREENSHOTS"
#: y-sync frames: message type SYNC (0), then SYNC_STEP2 (1): the server's answer to our state
SYNC_STEP2 = b"\x00\x01"
#: document rooms (``<format>:<type>:<file id>``), not JupyterLab's global awareness room
DOCUMENT_ROOM = re.compile(r"/api/collaboration/room/([^/?:]+:[^/?:]+:[^/?]+)")

# JavaScript run in the page.  A cell's text is its CodeMirror lines, without
# the widgets CodeMirror and the collaboration layer draw in between (other
# people's cursors and their names, placeholders).
_CELLS = "document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')"
_TEXT_OF = """(cell) => [...cell.querySelectorAll('.jp-InputArea .cm-content .cm-line')].map(line => {
    const copy = line.cloneNode(true);
    copy.querySelectorAll('[contenteditable=false], img, .cm-ySelectionCaret, .cm-ySelectionInfo')
      .forEach(widget => widget.remove());
    return copy.textContent.replace(/\\u2060/g, '');
  }).join('\\n')"""
_CELL_TEXT_JS = f"""([index]) => {{
  const cell = {_CELLS}[index];
  return cell ? ({_TEXT_OF})(cell) : null;
}}"""
# every text cell ``index`` shows from now on, kept in window.hubRtcSeen[index]
_RECORD_JS = f"""([index]) => {{
  const cell = {_CELLS}[index];
  if (!cell) return false;
  const textOf = {_TEXT_OF};
  const seen = (window.hubRtcSeen = window.hubRtcSeen || {{}})[index] = [textOf(cell)];
  new MutationObserver(() => {{
    const text = textOf(cell);
    if (seen[seen.length - 1] !== text) seen.push(text);
  }}).observe(cell, {{subtree: true, childList: true, characterData: true}});
  return true;
}}"""
_CELL_COUNT_JS = """() => document.querySelectorAll(
  '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell .cm-content').length"""
# settled: a dialog is up (e.g. "Select Kernel"), or the notebook's kernel is running
_KERNEL_SETTLED_JS = """() => {
  if (document.querySelector('.jp-Dialog')) return 'dialog';
  const items = [...document.querySelectorAll('.jp-StatusBar-TextItem')].map(e => e.innerText);
  const kernel = items.find(text => / \\| /.test(text));
  if (kernel && !kernel.startsWith('No Kernel') && / \\| (Idle|Busy)$/.test(kernel)) return 'kernel';
  return null;
}"""


# -- the browser ---------------------------------------------------------------------------


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Debian Chromium; everything it started is closed on the way out."""
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} is missing: `./dev setup` installs Debian's chromium "
                           "(apt-get install chromium chromium-driver), or set $HUB_RTC_CHROMIUM")
    playwright = await async_playwright().start()
    try:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                   headless=True)
        try:
            yield browser
        finally:
            await browser.close()
    finally:
        await playwright.stop()


@pytest_asyncio.fixture(name="browser", scope="module", loop_scope="module")
async def browser_fixture() -> AsyncIterator[Browser]:
    """One headless Chromium per test module (tests need ``loop_scope="module"``)."""
    async with chromium() as browser:
        yield browser


@pytest.fixture(name="screenshots")
def screenshots_fixture(tmp_path: Path) -> Path:
    """The folder screenshots go to: $HUB_RTC_SCREENSHOTS, else the test's tmp_path."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- what a page did -----------------------------------------------------------------------


@dataclass
class PageLog:
    """What one page did that a person would not see: errors, refusals, document rooms."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    #: (status, method, url without query) of every response >= 400
    failed: list[tuple[int, str, str]] = field(default_factory=list)
    #: document rooms opened, in order; ``synced`` holds those the server has answered
    rooms: list[str] = field(default_factory=list)
    synced: set[str] = field(default_factory=set)

    def attach(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("response", self._on_response)
        page.on("websocket", self._on_websocket)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed.append((response.status, response.request.method, response.url.split("?")[0]))

    def _on_websocket(self, ws: WebSocket) -> None:
        match = DOCUMENT_ROOM.search(ws.url)
        if match is None:
            return
        room = match.group(1)
        self.rooms.append(room)

        def received(payload: str | bytes) -> None:
            if isinstance(payload, bytes) and payload.startswith(SYNC_STEP2):
                self.synced.add(room)

        ws.on("framereceived", received)

    def refused(self, fragment: str = "") -> list[tuple[int, str, str]]:
        """The 403s so far whose URL contains ``fragment``."""
        return [f for f in self.failed if f[0] == 403 and fragment in f[2]]


@dataclass
class LabUser:
    """One person in the browser: their own context (cookies), one page, what it did."""

    name: str
    context: BrowserContext
    page: Page
    log: PageLog

    async def close(self) -> None:
        await self.context.close()


# -- the hub -------------------------------------------------------------------------------


async def login(browser: Browser, hub_url: str, name: str, *, password: str = "any",
                next_path: str = "/hub/home", timezone_id: str | None = None,
                locale: str | None = None) -> LabUser:
    """Log ``name`` in at the hub's login form (dummy authenticator: any password).

    Lands on ``next_path`` (the hub's home by default, which does not spawn
    the user's own server; ``/services/rtc/`` for the hub_rtc pages).
    ``timezone_id`` and ``locale`` are the browser's ("Asia/Kolkata", "en-GB"),
    for pages that show times in the reader's zone; by default the machine's.
    """
    context = await browser.new_context(viewport=VIEWPORT,  # type: ignore[arg-type]
                                        timezone_id=timezone_id, locale=locale)
    page = await context.new_page()
    log = PageLog()
    log.attach(page)
    user = LabUser(name, context, page, log)
    try:
        await page.goto(f"{hub_url}/hub/login?next={quote(next_path)}")
        await page.fill("input[name=username]", name)
        await page.fill("input[name=password]", password)
        async with page.expect_navigation():
            await page.click("form [type=submit]")
        if "/hub/login" in page.url:
            raise AssertionError(f"{name} could not log in: {await page.inner_text('body')}")
        await authorize_if_asked(page)
    except BaseException:
        await user.close()
        raise
    return user


async def authorize_if_asked(page: Page) -> None:
    """Confirm JupyterHub's "Authorize access" page, which it shows the first time a
    user reaches a server or service that is not theirs (a shared server)."""
    if "/hub/api/oauth2/authorize" not in page.url:
        return
    async with page.expect_navigation():
        await page.click("form [type=submit]")


# -- JupyterLab ----------------------------------------------------------------------------


async def open_notebook(user: LabUser, hub_url: str, server: str, path: str, *,
                        kernel: bool = False, timeout: float = 60) -> None:
    """Open ``path`` on ``server``'s JupyterLab (``/user/<server>/lab/tree/<path>``) and
    wait until the document is really there: its room synced and its cells drawn.

    ``server`` is a hub user name (its default server): ``olive``, ``rtc-<id>``.
    JupyterLab then picks a kernel: with ``kernel`` False a "Select Kernel"
    dialog is answered "No Kernel"; with ``kernel`` True it is accepted, and
    this waits until the kernel is idle.
    """
    page = user.page
    opened = len(user.log.rooms)
    await page.goto(f"{hub_url}/user/{server}/lab/tree/{quote(path)}")
    await authorize_if_asked(page)
    await wait_synced(user, since=opened, timeout=timeout)
    await settle_kernel(page, kernel, timeout=timeout)


async def wait_synced(user: LabUser, *, since: int = 0, timeout: float = 60) -> str:
    """Wait until a document room opened after the ``since``-th one has synced with the
    server and the notebook shows its cells; returns the room id."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        rooms = [room for room in user.log.rooms[since:] if room in user.log.synced]
        if rooms and await user.page.evaluate(_CELL_COUNT_JS) > 0:
            return rooms[-1]
        if loop.time() > deadline:
            raise TimeoutError(f"{user.name}'s document did not sync in {timeout} s; rooms "
                               f"{user.log.rooms[since:]}, refused {user.log.refused()}")
        await asyncio.sleep(0.1)


async def settle_kernel(page: Page, kernel: bool, *, timeout: float = 60) -> None:
    """Let JupyterLab finish choosing the notebook's kernel (see :func:`open_notebook`)."""
    settled = await page.wait_for_function(_KERNEL_SETTLED_JS, timeout=timeout * 1000)
    if await settled.json_value() != "dialog":
        return
    dialog = page.locator(".jp-Dialog")
    # ("Select Kernel", or "Select kernel for: "nb.ipynb"" in the same JupyterLab)
    if "select kernel" not in (await dialog.inner_text()).lower():
        return  # not ours to answer: dialogs() shows it to the test
    await dialog.locator(".jp-mod-accept" if kernel else ".jp-mod-reject").click()
    await dialog.wait_for(state="detached")
    if kernel:
        await page.wait_for_function(_KERNEL_SETTLED_JS, timeout=timeout * 1000)


async def cell_count(page: Page) -> int:
    return int(await page.evaluate(_CELL_COUNT_JS))


async def cell_text(page: Page, index: int) -> str:
    """The text of cell ``index`` (from 0) of the notebook in front, as its editor shows it."""
    text = await page.evaluate(_CELL_TEXT_JS, [index])
    if text is None:
        raise IndexError(f"the notebook in front has no cell {index}")
    return str(text)


async def wait_for_cell_text(page: Page, index: int, expected: str | Callable[[str], bool], *,
                             timeout: float = 15) -> str:
    """Wait until cell ``index`` shows ``expected`` (a string, or a test of the text)."""
    test = expected if callable(expected) else (lambda text: text == expected)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        text = await cell_text(page, index)
        if test(text):
            return text
        if loop.time() > deadline:
            raise TimeoutError(f"cell {index} shows {text!r} after {timeout} s")
        await asyncio.sleep(0.1)


async def record_cell(page: Page, index: int) -> None:
    """Start keeping every text cell ``index`` shows, however briefly (see :func:`recorded`).

    An edit the server refuses is shown for a moment and then reverted: this is
    how a test sees both."""
    if not await page.evaluate(_RECORD_JS, [index]):
        raise IndexError(f"the notebook in front has no cell {index}")


async def recorded(page: Page, index: int) -> list[str]:
    """Every text cell ``index`` has shown since :func:`record_cell`, in order."""
    return list(await page.evaluate("([i]) => (window.hubRtcSeen || {})[i] || []", [index]))


async def type_into_cell(page: Page, index: int, text: str, *, at_end: bool = False) -> None:
    """Click into cell ``index``'s editor and type ``text`` with the keyboard, at the start
    of the cell (or its end).  CodeMirror may close brackets and quotes as you type."""
    editor = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index)
    await editor.locator(".cm-content").click()
    await page.keyboard.press("Control+End" if at_end else "Control+Home")
    await page.keyboard.type(text)


async def dialogs(page: Page) -> list[str]:
    """The text of every JupyterLab dialog on the page (errors show up here)."""
    return [await d.inner_text() for d in await page.locator(".jp-Dialog").all()]


async def hide_notifications(page: Page) -> None:
    """Hide JupyterLab's toasts (e.g. the news question) so screenshots show the work."""
    for button in await page.locator(".jp-Notification-Toast-Close").all():
        try:
            await button.click(timeout=2000)
        except PlaywrightError:
            pass  # gone by itself meanwhile
    toasts = page.locator(".Toastify__toast")
    while await toasts.count():  # they slide out before they go
        await toasts.first.wait_for(state="detached", timeout=5000)


async def screenshot(page: Page, folder: Path, name: str) -> Path:
    """A full-page PNG ``<folder>/<name>.png`` for people to look at."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") + ".png")
    await page.screenshot(path=str(path), full_page=True)
    return path
