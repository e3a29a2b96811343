"""The hub UI over HTTP on a real hub: forms, XSRF, errors beside fields,
presence, the instructor's dashboard and join read-only, the admin page, and
escaping of every user-supplied string.  (The real-browser flow is in
test_browser_ui.py.)

One hub for the module: alice (in course group cs101) hosts sessions on her
own server; bob and carol are her teammates; ida is an instructor watching
cs101; adele is a hub admin.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hub_rtc.localhub import LocalHub
from hub_rtc.singleuser.isolation import probe
from tests.integration.conftest import code_notebook, start_hub, start_server, wait_for
from tests.integration.test_browser_auth import browser_login
from tests.integration.yclient import YClient

pytestmark = pytest.mark.integration

OWNER, MATE, VIEWER, INSTRUCTOR, ADMIN = "alice", "bob", "carol", "ida", "adele"
EVIL_USER = "<script>eve"  # hub names may hold "<" (not "/"): an attacker's choice
EVIL_TITLE = "<script>window.pwned=1</script>"
EVIL_TEAM = "<script>pwn()<"
CELLS = ("intro", "task", "answer")


def notebook() -> dict[str, Any]:
    return code_notebook({cid: f"# {cid} of the lab\n" for cid in CELLS}, markdown=("intro",))


class UI:
    """Browser-like sessions (hub login, OAuth cookie) per user, and form posts."""

    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub
        self.base = f"{hub.url}/services/rtc/"
        self._sessions: dict[str, requests.Session] = {}

    def as_(self, name: str) -> requests.Session:
        if name not in self._sessions:
            self._sessions[name] = browser_login(self.hub, name)
        return self._sessions[name]

    def get(self, name: str, path: str = "") -> requests.Response:
        return self.as_(name).get(self.base + path)

    def post(self, name: str, path: str, data: dict[str, Any], xsrf: bool = True) -> requests.Response:
        page = self.get(name)
        token = re.search(r'name="xsrf-token" content="([^"]+)"', page.text)
        assert token, page.text[:500]
        form = {**data, "_xsrf": token.group(1)} if xsrf else dict(data)
        return self.as_(name).post(self.base + path, data=form)

    def api(self, name: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.hub.rtc(method, path, body, self.hub.user_token(name))

    def create(self, title: str, members: list[tuple[str, str, str]], **extra: str) -> str:
        form = {"title": title, "host": "owner", "root": "lab", **extra}
        for i, (kind, name, role) in enumerate(members):
            form |= {f"kind{i}": kind, f"name{i}": name, f"role{i}": role}
        r = self.post(OWNER, "sessions/new", form)
        assert r.status_code == 200 and "/sessions/" in r.url, (r.status_code, r.url, r.text[-2000:])
        return r.url.split("/sessions/")[1].split("?")[0]


def error_beside(html: str, field: str) -> str:
    """The text of the error shown beside ``field`` (empty if none)."""
    found = re.search(rf'id="{field}-error">([^<]*)<', html)
    return found.group(1) if found else ""


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    workdir = tmp_path_factory.mktemp("pages")
    hub = start_hub(workdir, manage_hub_access=True,
                    extra=f"c.Authenticator.admin_users = {{{ADMIN!r}}}\n")
    try:
        assert hub.api("POST", "/hub/api/users", {"usernames": [EVIL_USER]})[0] == 201
        start_server(hub, OWNER)
        token = hub.user_token(OWNER)
        assert hub.api("PUT", f"/user/{OWNER}/api/contents/lab", {"type": "directory"},
                       token)[0] in (200, 201)
        assert hub.api("PUT", f"/user/{OWNER}/api/contents/lab/nb.ipynb",
                       {"type": "notebook", "format": "json", "content": notebook()},
                       token)[0] in (200, 201)
        u = UI(hub)
        # the first session waits until alice's server has announced the extension
        wait_for("alice's server announced", lambda: u.api(OWNER, "GET", "/servers/rights")[0] != 599
                 and hub.rtc("GET", "/servers")[1]["servers"], 60)
        yield u
    finally:
        hub.stop()


@pytest.fixture(scope="module")
def lab(ui: UI) -> str:
    """Session "Lab 1" made from the form: bob edits, carol views."""
    return ui.create("Lab 1", [("user", MATE, "editor"), ("user", VIEWER, "viewer")])


def test_every_state_change_needs_the_xsrf_token(ui: UI, lab: str) -> None:
    before = ui.api(OWNER, "GET", "/sessions?which=mine")[1]["sessions"]
    r = ui.post(OWNER, "sessions/new", {"title": "no token", "host": "owner"}, xsrf=False)
    assert r.status_code == 403
    assert ui.api(OWNER, "GET", "/sessions?which=mine")[1]["sessions"] == before
    r = ui.post(OWNER, f"sessions/{lab}/members", {"kind": "user", "name": "dave",
                                                  "role": "editor"}, xsrf=False)
    assert r.status_code == 403
    names = [m["name"] for m in ui.api(OWNER, "GET", f"/sessions/{lab}")[1]["members"]]
    assert "dave" not in names


def test_refusals_show_beside_their_field_and_change_nothing(ui: UI) -> None:
    before = len(ui.api(OWNER, "GET", "/sessions?which=mine")[1]["sessions"])
    r = ui.post(OWNER, "sessions/new", {"title": "  ", "host": "owner"})
    assert r.status_code == 400 and error_beside(r.text, "title")
    r = ui.post(OWNER, "sessions/new", {"title": "Past", "host": "owner",
                                        "expires_at": "2001-01-01T10:00"})
    assert r.status_code == 422 and "future" in error_beside(r.text, "expires_at")
    r = ui.post(OWNER, "sessions/new", {"title": "Ghost", "host": "owner", "kind0": "user",
                                        "name0": "nobody-here", "role0": "editor"})
    assert r.status_code in (400, 404, 422) and "nobody-here" in error_beside(r.text, "members")
    assert 'value="Ghost"' in r.text  # what was typed comes back
    assert len(ui.api(OWNER, "GET", "/sessions?which=mine")[1]["sessions"]) == before


def test_a_teammate_sees_it_under_shared_with_me(ui: UI, lab: str) -> None:
    home = ui.get(MATE).text
    shared = home.split('id="shared"')[1]
    assert f'data-session="{lab}"' in shared and "Lab 1" in shared
    row = shared.split(f'data-session="{lab}"')[1].split("</tr>")[0]
    assert "<td>editor</td>" in row and f"/user/{OWNER}/lab/tree/lab" in row  # Open lands in the folder
    assert f'data-session="{lab}"' in ui.get(OWNER).text.split('id="mine"')[1]


def test_members_are_added_changed_and_removed_from_the_page(ui: UI, lab: str) -> None:
    assert ui.post(OWNER, f"sessions/{lab}/members",
                   {"kind": "user", "name": "dave", "role": "viewer"}).status_code == 200
    assert _role(ui, lab, "dave") == "viewer"
    assert ui.post(OWNER, f"sessions/{lab}/members",
                   {"kind": "user", "name": "dave", "role": "runner"}).status_code == 200
    assert _role(ui, lab, "dave") == "runner"
    r = ui.post(MATE, f"sessions/{lab}/members/remove", {"kind": "user", "name": "dave"})
    assert r.status_code == 403 and _role(ui, lab, "dave") == "runner"  # editors manage nobody
    assert ui.post(OWNER, f"sessions/{lab}/members/remove",
                   {"kind": "user", "name": "dave"}).status_code == 200
    assert _role(ui, lab, "dave") is None


def _role(ui: UI, session: str, name: str) -> str | None:
    members = ui.api(OWNER, "GET", f"/sessions/{session}")[1]["members"]
    return next((m["role"] for m in members if m["name"] == name), None)


def test_cells_are_picked_from_the_rendered_notebook(ui: UI, lab: str) -> None:
    page = ui.get(OWNER, f"sessions/{lab}").text
    listed = re.findall(r'<tr data-cell="([^"]+)">', page)
    assert listed == list(CELLS)  # read from alice's server, in notebook order
    assert "# task of the lab" in page
    assert ui.post(OWNER, f"sessions/{lab}/cells", {"path": "nb.ipynb", "cell_id": "task",
                                                    "rule": "locked"}).status_code == 200
    rules = ui.api(OWNER, "GET", f"/sessions/{lab}/cells")[1]["cells"]
    assert [(r["cell_id"], r["rule"]) for r in rules] == [("task", "locked")]
    r = ui.post(OWNER, f"sessions/{lab}/cells", {"path": "nb.ipynb", "cell_id": "answer",
                                                 "rule": "assigned", "writers": f"user:{MATE}"})
    assert r.status_code == 200
    assert ui.post(OWNER, f"sessions/{lab}/cells", {"path": "nb.ipynb", "cell_id": "answer",
                                                    "rule": "assigned"}).status_code == 422
    assert ui.post(OWNER, f"sessions/{lab}/cells", {"path": "nb.ipynb", "cell_id": "answer",
                                                    "rule": "free"}).status_code == 200
    rules = ui.api(OWNER, "GET", f"/sessions/{lab}/cells")[1]["cells"]
    assert [(r["cell_id"], r["rule"]) for r in rules] == [("task", "locked")]
    assert ui.post(MATE, f"sessions/{lab}/cells", {"path": "nb.ipynb", "cell_id": "task",
                                                   "rule": "free"}).status_code == 403


async def test_the_home_page_shows_who_is_online(ui: UI, lab: str) -> None:
    def online() -> list[str]:
        return ui.api(OWNER, "GET", f"/sessions/{lab}")[1]["online"]

    assert MATE not in online()
    client = await YClient.connect(ui.hub.url, OWNER, "lab/nb.ipynb", ui.hub.user_token(MATE))
    try:
        wait_for("bob online", lambda: MATE in online(), 15)
        badge = ui.get(OWNER).text.split(f'data-online="{lab}">')[1].split("</td>")[0]
        assert f"</span>{MATE}" in badge
    finally:
        client.close()
    wait_for("bob gone", lambda: MATE not in online(), 15)


async def test_the_instructor_watches_charts_and_joins_read_only(ui: UI, lab: str) -> None:
    client = await YClient.connect(ui.hub.url, OWNER, "lab/nb.ipynb", ui.hub.user_token(MATE))
    try:
        client.type_into("intro", "bob was here ")
        await asyncio.sleep(1)  # let the update leave before the socket closes
    finally:
        client.close()
    def edits() -> list[dict[str, Any]]:
        return ui.api(OWNER, "GET", f"/sessions/{lab}/activity?kind=edit")[1]["events"]

    wait_for("bob's edit counted", lambda: any(e["user"] == MATE for e in edits()), 20)
    board = ui.get(INSTRUCTOR, "dashboard?course=cs101&sort=edit&order=desc")
    assert board.status_code == 200 and f'data-session="{lab}"' in board.text
    assert ui.get(INSTRUCTOR, "dashboard?sort=nonsense").status_code == 422
    activity = ui.get(INSTRUCTOR, f"dashboard/{lab}").text
    chart = activity.split('id="timeline"')[1].split("</svg>")[0]
    assert f'data-member="{MATE}"' in chart and "edits" in chart
    matrix = activity.split('data-notebook="nb.ipynb"')[1].split("</table>")[0]
    assert '<tr data-cell="intro">' in matrix
    assert ui.get(OWNER, f"dashboard/{lab}").status_code == 200  # owners may read their own
    assert ui.get(MATE, f"dashboard/{lab}").status_code == 403
    # join read-only: a share, read access, still no writes.  Each check uses a
    # fresh token: the shared server caches what the hub says of a token.
    nb = f"/user/{OWNER}/api/contents/lab/nb.ipynb"
    assert ui.hub.api("GET", nb, token=ui.hub.user_token(INSTRUCTOR))[0] == 403
    assert ui.post(INSTRUCTOR, f"sessions/{lab}/watch", {}).status_code == 200
    assert ui.api(OWNER, "GET", f"/sessions/{lab}")[1]["watchers"] == [INSTRUCTOR]
    token = ui.hub.user_token(INSTRUCTOR)
    assert wait_for("ida's share", lambda: ui.hub.api("GET", nb, token=token)[0] == 200, 15)
    assert ui.hub.api("PUT", nb, {"type": "notebook", "format": "json", "content": notebook()},
                      token)[0] == 403
    watching = await YClient.connect(ui.hub.url, OWNER, "lab/nb.ipynb", token)
    try:
        assert ui.post(INSTRUCTOR, f"sessions/{lab}/watch", {"leave": "1"}).status_code == 200
        await watching.until(lambda: watching.ws.close_code is not None, 5)  # closed at once
        assert watching.ws.close_code == 4403
    finally:
        watching.close()
    assert ui.hub.api("GET", nb, token=token)[0] == 403
    assert ui.post(MATE, f"sessions/{lab}/watch", {}).status_code == 409  # members are in already


def test_the_admin_page_shows_policy_counts_health_and_servers(ui: UI, lab: str) -> None:
    assert ui.get(OWNER, "admin").status_code == 403
    page = ui.get(ADMIN, "admin")
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    health = page.text.split('id="health"')[1].split("</section>")[0]
    assert health.count("OK</span>") == 2 and "sqlite" in health
    count = re.search(r'data-count="sessions_active">(\d+)<', page.text)
    assert count and int(count.group(1)) >= 1
    assert f"<th scope=\"row\">{OWNER}</th>" in page.text.split('id="servers"')[1]
    assert "<code>max_members_per_session</code>" in page.text


def test_the_session_and_admin_pages_say_how_kernels_run(ui: UI, lab: str) -> None:
    """What the server said at its announcement, against the policy (auto): the same on
    the session's page (for its members) and on the admin's, per server."""
    missing = probe()
    badge, mode = ("sandboxed", "sandbox") if missing is None else ("as the server", "none")
    row = ui.get(MATE, f"sessions/{lab}").text.split('id="kernels">')[1].split("</dd>")[0]
    assert f">{badge}</span>" in row, row
    if missing is not None:  # said plainly, with why
        assert "runs as the server&#39;s account" in row and missing in row, row
    servers = ui.get(ADMIN, "admin").text.split('id="servers"')[1].split("</table>")[0]
    assert f'<td class="kernels"><strong>{mode}</strong>' in servers, servers


def test_teams_are_made_and_managed_from_their_pages(ui: UI) -> None:
    r = ui.post(OWNER, "teams", {"name": "blue", "members": f"{MATE}, {VIEWER}"})
    assert r.status_code == 200 and r.url.endswith("/teams/blue?done=team")
    r = ui.post(OWNER, "teams/blue", {"action": "add", "user": "dave"})
    assert ui.api(OWNER, "GET", "/teams/blue")[1]["members"] == sorted([MATE, VIEWER, "dave"])
    r = ui.post(OWNER, "teams/blue", {"action": "add", "user": "nobody-here"})
    assert r.status_code in (400, 404, 422) and "nobody-here" in error_beside(r.text, "user")
    assert ui.post(OWNER, "teams/blue", {"action": "remove", "user": "dave"}).status_code == 200
    assert ui.post(MATE, "teams/blue", {"action": "delete"}).status_code == 403
    assert ui.post(OWNER, "teams", {"name": "blue"}).status_code == 409
    assert "blue" in ui.get(MATE, "teams").text


OUR_SCRIPTS = re.compile(r'<script src="[^"]+" defer></script>')


def test_no_page_shows_a_script_from_a_title_team_or_name(ui: UI) -> None:
    evil = ui.create(EVIL_TITLE, [("user", EVIL_USER, "editor"), ("user", MATE, "editor")])
    assert ui.post(OWNER, "teams", {"name": EVIL_TEAM, "members": f"{EVIL_USER} {MATE}"}).status_code == 200
    assert ui.post(OWNER, f"sessions/{evil}/members", {"kind": "team", "name": EVIL_TEAM,
                                                      "role": "viewer"}).status_code == 200
    team = requests.utils.quote(EVIL_TEAM, safe="")
    pages = {
        OWNER: ["", "sessions/new", f"sessions/{evil}", "teams", f"teams/{team}", f"dashboard/{evil}"],
        MATE: ["", f"sessions/{evil}", "teams"],
        EVIL_USER: ["", f"sessions/{evil}", "teams", f"teams/{team}"],
        INSTRUCTOR: ["dashboard", f"dashboard/{evil}"],
        ADMIN: ["admin", "dashboard"],
    }
    seen = 0
    for who, paths in pages.items():
        for path in paths:
            r = ui.get(who, path)
            assert r.status_code == 200, (who, path, r.status_code)
            leftover = OUR_SCRIPTS.sub("", r.text)
            assert "<script" not in leftover.lower(), (who, path)
            seen += ("&lt;script&gt;" in r.text)
    assert seen >= 10  # the strings were on the pages, escaped


def test_pages_send_people_to_log_in(ui: UI) -> None:
    r = requests.get(ui.base + "sessions/new", allow_redirects=False)
    assert r.status_code == 302 and "/hub/api/oauth2/authorize" in r.headers["Location"]
    missing = ui.get(OWNER, "sessions/000000000000")
    assert missing.status_code == 404 and "text/html" in missing.headers["Content-Type"]
    assert "no session" in missing.text
