"""The hub UI in a real browser (headless Chromium), as issue 4 tells the story.

bea (a student in course cs101) logs in and creates a session with her
teammate cai from the "New session" form; it lives on a dedicated session
server.  cai finds it under "shared with me", opens it in JupyterLab and edits
the notebook while bea's page shows him online.  bea locks a cell from the
session page; cai's edit to it is reverted in his browser.  The instructor
ida sees both students' edits on her dashboard's chart; the admin adele sees
the policy, counts, health and servers.  Every page is screenshotted to
$HUB_RTC_SCREENSHOTS (or the test's tmp_path): docs/img/ holds the ones the
tutorials use.  Nothing a user typed runs as script on any page.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page
from playwright.async_api import Error as PlaywrightError

from hub_rtc.localhub import LocalHub
from tests.integration.browser import (
    LabUser,
    authorize_if_asked,
    browser_fixture,  # noqa: F401  (the `browser` fixture)
    dialogs,
    hide_notifications,
    login,
    open_notebook,
    record_cell,
    recorded,
    screenshot,
    screenshots_fixture,  # noqa: F401  (the `screenshots` fixture)
    type_into_cell,
    wait_for_cell_text,
)
from tests.integration.conftest import code_notebook, start_hub, wait_for
from tests.integration.yclient import YClient

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

STUDENT, MATE, INSTRUCTOR, ADMIN = "bea", "cai", "ida", "adele"
RTC = "/services/rtc/"
TASK, ANSWER = 1, 2  # cell 0 is the markdown introduction
EVIL = "<img src=x onerror=window.pwned=1><script>window.pwned=2</script>"
#: the instructor's time zone: half an hour off any UTC hour, so no match is by chance
IDA_ZONE = "Asia/Kolkata"


def notebook() -> dict[str, Any]:
    return code_notebook({"intro": "# Lab 1: bees\nRead this first.",
                          "task": "# Task: count the bees\nbees = []", "answer": "# Your answer\n"},
                         kernelspec=True, markdown=("intro",))


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    extra = (f'c.JupyterHub.load_groups["cs101"]["users"] += [{STUDENT!r}, {MATE!r}]\n'
             f"c.Authenticator.admin_users = {{{ADMIN!r}}}\n"
             "c.YDocExtension.document_save_delay = 0.2\n")
    hub = start_hub(tmp_path_factory.mktemp("ui"), manage_hub_access=True, extra=extra)
    yield hub
    hub.stop()


async def no_script_ran(page: Page) -> None:
    assert await page.evaluate("window.pwned") is None, page.url


async def create_session(bea: LabUser, hub: LocalHub, shots: Path) -> str:
    page = bea.page
    await page.goto(f"{hub.url}{RTC}sessions/new")
    await page.get_by_label("Title").fill("Lab 1: bees")
    await page.get_by_label("A dedicated session server").check()
    await page.get_by_label("Member 1: user name, team or hub group").fill(MATE)
    await page.get_by_label("Member 1: role").select_option("editor")
    await screenshot(page, shots, "new-session")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Create session").click()
    session_id = page.url.split("/sessions/")[1].split("?")[0]
    token = hub.user_token(STUDENT)

    def ready() -> bool:
        return hub.rtc("GET", f"/sessions/{session_id}", token=token)[1]["hosting"]["state"] == "ready"

    wait_for("the session server", ready, 120)
    server = f"/user/rtc-{session_id}/api/contents"
    assert hub.api("PUT", f"{server}/lab1", {"type": "directory"}, token)[0] in (200, 201)
    assert hub.api("PUT", f"{server}/lab1/bees.ipynb", {"type": "notebook", "format": "json",
                                                        "content": notebook()}, token)[0] in (200, 201)
    return session_id


async def shows_online(watcher: LabUser, session_id: str, name: str, *, within: float) -> None:
    """``watcher``'s open page lists ``name`` under "Online now" within ``within`` s,
    refreshed by live.js (no reload), without one refused request."""
    spot = f'[data-online="{session_id}"]'
    try:
        await watcher.page.wait_for_function(
            "([spot, name]) => document.querySelector(spot).textContent.includes(name)",
            arg=[spot, name], timeout=within * 1000)
    except PlaywrightError:
        raise AssertionError(f"{watcher.name}'s page did not show {name} online within {within} s;"
                             f" refused: {watcher.log.refused()}") from None
    assert await watcher.page.evaluate("window.hubRtcNotReloaded") is True, "the page was reloaded"
    assert watcher.log.refused("/api/v1/") == []


async def lock_task_cell(bea: LabUser, hub: LocalHub, session_id: str, shots: Path) -> None:
    page = bea.page
    await page.goto(f"{hub.url}{RTC}sessions/{session_id}")
    row = page.locator('tr[data-cell="task"]')
    await row.get_by_label("Rule for cell 2 of lab1/bees.ipynb").select_option("locked")
    async with page.expect_navigation():
        await row.get_by_role("button", name="Save the rule of cell 2").click()
    assert await page.locator('tr[data-cell="task"] td.rule').inner_text() == "locked"
    await screenshot(page, shots, "session-page")


async def test_students_collaborate_and_the_instructor_watches(
        browser: Browser, hub: LocalHub, screenshots: Path) -> None:
    bea = await login(browser, hub.url, STUDENT, next_path=RTC)
    cai = await login(browser, hub.url, MATE, next_path=RTC)
    try:
        session_id = await create_session(bea, hub, screenshots)
        # bea keeps her session page open while cai joins: it must show him by itself
        await bea.page.goto(f"{hub.url}{RTC}sessions/{session_id}")
        await bea.page.evaluate("window.hubRtcNotReloaded = true")  # a reload forgets it
        assert MATE not in await bea.page.locator("#online").inner_text()
        state = await bea.page.locator("#hosting").inner_text()
        assert "running with collaboration enabled" in state and "announced" not in state, state
        # cai finds it under "shared with me" and opens it: JupyterLab on the session folder
        await cai.page.goto(f"{hub.url}{RTC}")
        shared = cai.page.locator(f'#shared tr[data-session="{session_id}"]')
        assert "editor" in await shared.inner_text()
        async with cai.page.expect_navigation():
            await shared.get_by_role("link", name="Open Lab 1: bees in JupyterLab").click()
        await authorize_if_asked(cai.page)  # the hub asks once before a shared server
        await cai.page.wait_for_url(re.compile(f"/user/rtc-{session_id}/lab/tree"))
        await open_notebook(cai, hub.url, f"rtc-{session_id}", "lab1/bees.ipynb")
        await shows_online(bea, session_id, MATE, within=10)
        await type_into_cell(cai.page, ANSWER, "bees = 3 ", at_end=True)
        await wait_for_cell_text(cai.page, ANSWER, lambda t: "bees = 3" in t)

        # and her home page shows him on its first load
        await bea.page.goto(f"{hub.url}{RTC}")
        await bea.page.wait_for_function(
            f"document.querySelector('[data-online=\"{session_id}\"]').textContent.includes('{MATE}')",
            timeout=30_000)
        await screenshot(bea.page, screenshots, "student-home")

        await lock_task_cell(bea, hub, session_id, screenshots)
        # his JupyterLab shows the lock without a reload, and the cell is read-only there
        task = cai.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(TASK)
        await task.locator(".hub-rtc-mark").wait_for(state="visible", timeout=5_000)
        await record_cell(cai.page, TASK)
        before = (await recorded(cai.page, TASK))[0]
        await type_into_cell(cai.page, TASK, "cai was here ")
        await asyncio.sleep(0.5)
        assert set(await recorded(cai.page, TASK)) <= {before}  # never shown, nothing to undo
        # an edit forced past his JupyterLab (a raw client) is refused by the server, counted
        forced = await YClient.connect(hub.url, f"rtc-{session_id}", "lab1/bees.ipynb",
                                       hub.user_token(MATE))
        try:
            forced.type_into("task", "forced ")
            await forced.until(lambda: "forced" not in forced.source("task"), timeout=10)
        finally:
            forced.close()
        assert await dialogs(cai.page) == []
        await hide_notifications(cai.page)
        await screenshot(cai.page, screenshots, "jupyterlab-locked-cell-marked")

        # bea edits too, in her own JupyterLab
        await open_notebook(bea, hub.url, f"rtc-{session_id}", "lab1/bees.ipynb")
        await type_into_cell(bea.page, ANSWER, "Bea: ")
        await wait_for_cell_text(cai.page, ANSWER, lambda t: t.startswith("Bea: "), timeout=30)
        await instructor_sees_both(browser, hub, session_id, screenshots)
    finally:
        await bea.close()
        await cai.close()


async def instructor_sees_both(browser: Browser, hub: LocalHub, session_id: str, shots: Path) -> None:
    token = hub.user_token(STUDENT)

    def both_counted() -> bool:
        events = hub.rtc("GET", f"/sessions/{session_id}/activity?kind=edit", token=token)[1]["events"]
        return {STUDENT, MATE} <= {e["user"] for e in events}

    wait_for("both students' edits recorded", both_counted, 30)
    # ida reads the hub from India: times show in her zone, not in UTC
    ida = await login(browser, hub.url, INSTRUCTOR, next_path=f"{RTC}dashboard",
                      timezone_id=IDA_ZONE, locale="en-GB")
    try:
        row = ida.page.locator(f'#watched tr[data-session="{session_id}"]')
        assert "Lab 1: bees" in await row.inner_text()
        await screenshot(ida.page, shots, "instructor-dashboard")
        async with ida.page.expect_navigation():
            await row.get_by_role("link", name="Lab 1: bees").click()
        chart = ida.page.locator("#timeline svg")
        for student in (STUDENT, MATE):
            bars = chart.locator(f'g[data-member="{student}"] rect.bar-edit')
            assert await bars.count() >= 1, student
        refused = await ida.page.locator("#refused").inner_text()
        assert MATE in refused and "task" in refused
        await times_in_the_readers_zone(ida.page)
        await screenshot(ida.page, shots, "instructor-activity")
        await the_chart_grows_without_a_reload(ida.page, hub, session_id)
        async with ida.page.expect_navigation():
            await ida.page.get_by_role("button", name="Join read-only").click()
        assert "You joined read-only" in await ida.page.inner_text("main")
    finally:
        await ida.close()


async def the_chart_grows_without_a_reload(page: Page, hub: LocalHub, session_id: str) -> None:
    """cai edits again while ida's activity page is open: its numbers follow."""
    async def edits() -> int:  # (the table is folded away in <details>: read it, not its look)
        return int(await page.evaluate(
            """([who]) => Array.from(document.querySelectorAll('#timeline-table tbody tr'))
                 .filter((tr) => tr.querySelector('th').textContent === who)
                 .map((tr) => Number(tr.querySelector('td').textContent))[0] || 0""", [MATE]))

    before = await edits()
    await page.evaluate("window.hubRtcNotReloaded = true")  # a reload forgets it
    cai = await YClient.connect(hub.url, f"rtc-{session_id}", "lab1/bees.ipynb", hub.user_token(MATE))
    try:
        for word in ("more ", "work "):
            cai.type_into("answer", word)
        await cai.until(lambda: "work " in cai.source("answer"))
    finally:
        cai.close()
    deadline = asyncio.get_running_loop().time() + 40  # the server sends every 5 s, the page asks every 10
    while await edits() < before + 2:
        assert asyncio.get_running_loop().time() < deadline, "the chart did not follow"
        await asyncio.sleep(0.5)
    assert await page.evaluate("window.hubRtcNotReloaded") is True, "the page was reloaded"
    # the new section's times are in the reader's zone too
    first = page.locator("#refused time").first
    assert "UTC" not in await first.inner_text()


async def times_in_the_readers_zone(page: Page) -> None:
    """The activity page shows its times in the browser's zone (IDA_ZONE), and its
    chart's axis ends now (the close of the minute it was drawn in, not half an hour on)."""
    first = page.locator("#refused time").first
    moment = datetime.fromisoformat((await first.get_attribute("datetime") or "").replace("Z", "+00:00"))
    shown = await first.inner_text()
    assert f"{moment.astimezone(ZoneInfo(IDA_ZONE)):%H:%M}" in shown and "UTC" not in shown, shown
    assert (await first.get_attribute("title") or "").endswith(" UTC")  # the server's text, on hover
    ticks = page.locator("#timeline svg text.tick")
    end = datetime.fromisoformat(await ticks.last.get_attribute("data-datetime") or "")
    assert abs(end - datetime.now(UTC)) <= timedelta(minutes=2), end  # not half an hour ahead
    assert f"{end.astimezone(ZoneInfo(IDA_ZONE)):%H:%M}" == await ticks.last.text_content()


async def test_the_admin_page(browser: Browser, hub: LocalHub, screenshots: Path) -> None:
    adele = await login(browser, hub.url, ADMIN, next_path=f"{RTC}admin")
    try:
        health = await adele.page.locator("#health").inner_text()
        assert health.count("OK") == 2
        assert re.search(r"Active sessions\s+\d", await adele.page.locator("#counts").inner_text())
        await screenshot(adele.page, screenshots, "admin")
    finally:
        await adele.close()


async def test_no_page_runs_script_from_titles_teams_or_names(browser: Browser, hub: LocalHub) -> None:
    evil_user = "<script>eve"
    assert hub.api("POST", "/hub/api/users", {"usernames": [evil_user]})[0] in (201, 409)
    bea = await login(browser, hub.url, STUDENT, next_path=RTC)
    try:
        page = bea.page
        await page.goto(f"{hub.url}{RTC}teams")
        await page.get_by_label("Name").fill("<svg onload=window.pwned=3>")
        await page.get_by_label("Members").fill(f"{evil_user} {MATE}")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Create team").click()
        await no_script_ran(page)
        await page.goto(f"{hub.url}{RTC}sessions/new")
        await page.get_by_label("Title").fill(EVIL)
        await page.get_by_label("A folder of my server").check()
        await page.get_by_label("Member 1: user name, team or hub group").fill(evil_user)
        async with page.expect_navigation():
            await page.get_by_role("button", name="Create session").click()
        # no server of bea's runs: the form comes back with the refusal, the title escaped
        await no_script_ran(page)
        assert await page.get_by_label("Title").input_value() == EVIL
        await page.get_by_label("A dedicated session server").check()
        async with page.expect_navigation():
            await page.get_by_role("button", name="Create session").click()
        assert "/sessions/" in page.url
        session_id = page.url.split("/sessions/")[1].split("?")[0]
        for path in ("", f"sessions/{session_id}", "teams", "sessions/new"):
            await page.goto(f"{hub.url}{RTC}{path}")
            await no_script_ran(page)
            assert EVIL in await page.inner_text("main") or path in ("teams", "sessions/new")
    finally:
        await bea.close()
    ida = await login(browser, hub.url, INSTRUCTOR, next_path=f"{RTC}dashboard")
    try:
        await no_script_ran(ida.page)
        assert EVIL in await ida.page.inner_text("main")
    finally:
        await ida.close()
