"""The hub restarted under a running shared server (issue 15, item 4).

In production the hub is restarted (an upgrade, a config change, a pod moved)
while single-user servers keep running: ``c.JupyterHub.cleanup_servers = False``,
as zero-to-jupyterhub sets it.  The hub stops its proxy and the service with it;
the shared server stays up, and so do its rooms, in memory.  Then the hub
starts again on the same workdir, ports and database.

What a restart could break, each tested below:

- the service's records: sessions, teams, grants and cell rules (its database is
  opened again; a start-up that recreated or "repaired" anything would show);
- the hub's shares, which the service reconciles at start-up: members still get in,
  a member removed before the restart stays out, nobody else gets in;
- the server's announcement: the restarted service must hear from the server again
  before it counts it as hosting (a new member of an owner-hosted session is
  refused with 409 until then);
- the events channel: it must reconnect to the restarted service, or changes made
  afterwards wait ``cache_seconds`` on the server: a lock must be in force before
  its answer, and a rule from before the restart must still hold;
- document edits: made before the stop, and made while the proxy was gone (a
  client keeps its replica and sends it on reconnecting, as y-websocket does);
- the service's log: no traceback, from the stop or the start.

The service's database is PostgreSQL (a fresh one, from ``tests.conftest``): a
restart there also means the service LISTENs again for pushes made through any
replica, and reconnects its pool; with SQLite the database is a file in the
workdir, which a restart cannot lose.  The hub's own database stays SQLite in
the workdir, as :class:`~hub_rtc.localhub.LocalHub` keeps it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from hub_rtc.localhub import LocalHub
from tests.conftest import _postgres_url
from tests.integration.conftest import (
    code_notebook,
    host_session,
    saved_notebook,
    start_hub,
    start_server,
    wait_for,
)
from tests.integration.yclient import YClient, close_socket, notebook_socket, refused_status

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

OWNER, EDITOR, GONE, CREW, STRANGER, LATE = "pia", "eve", "gus", "tia", "sam", "lou"
ROOT = "lab"
NOTEBOOK = f"{ROOT}/nb.ipynb"
CELLS = ("free", "locked", "fresh")
ACK_SECONDS = 2.0
#: servers outlive the hub, as in production; quick saves so the disk can be checked
EXTRA = (
    "c.JupyterHub.cleanup_servers = False\n"
    "c.YDocExtension.document_save_delay = 0.2\n"
    f"c.RTCService.push_ack_seconds = {ACK_SECONDS}\n"
)


@dataclass
class World:
    hub: LocalHub
    tokens: dict[str, str]
    session_id: str = ""
    #: what the service and the hub held just before the stop
    records: dict[str, Any] = field(default_factory=dict)
    shared_with: set[str] = field(default_factory=set)
    #: the replicas of the owner and the editor as they were when the proxy went away
    #: (the editor's with an edit made while the hub was down)
    replicas: dict[str, bytes] = field(default_factory=dict)
    #: hub.log offsets: where the stop began, where the second start began
    stopped_at: int = 0
    restarted_at: int = 0
    #: time.monotonic() at the second start; seconds until a change was confirmed again
    restarted_clock: float = 0.0
    reconnected_after: float | None = None

    def rtc(self, method: str, path: str, body: Any = None, user: str = OWNER) -> tuple[int, Any]:
        return self.hub.rtc(method, path, body, self.tokens[user])

    def log(self) -> str:
        return (self.hub.workdir / "hub.log").read_text(errors="replace")

    def disk(self) -> str:
        return json.dumps(saved_notebook(self.hub.workdir / "home" / OWNER / NOTEBOOK))

    async def client(self, user: str, replica: bytes | None = None) -> YClient:
        """``user`` in the notebook's room; with ``replica``, a client that reconnects
        with the document it kept, sending what the room may have missed."""
        client = YClient(await notebook_socket(self.hub.url, OWNER, NOTEBOOK, self.tokens[user]))
        if replica is not None:
            client.doc.apply_update(replica)  # goes out as one update (the client observes its doc)
        await client.hello()
        await asyncio.wait_for(client.synced.wait(), 15)
        return client


def records(w: World) -> dict[str, Any]:
    """What the service keeps of the session: the session, its members, rules and teams."""
    found: dict[str, Any] = {}
    for key, path in (("session", f"/sessions/{w.session_id}"),
                      ("members", f"/sessions/{w.session_id}/members"),
                      ("cells", f"/sessions/{w.session_id}/cells"), ("teams", "/teams")):
        status, body = w.rtc("GET", path)
        assert status == 200, (path, body)
        found[key] = body
    session = found["session"]
    # what may move by itself: activity, presence, the hosting message's time of announcement
    for moving in ("hosting", "online", "last_activity", "activity", "presence"):
        session.pop(moving, None)
    return found


def shares(hub: LocalHub) -> set[str]:
    """Who the hub lets into the owner's default server, through a share."""
    status, body = hub.api("GET", f"/hub/api/shares/{OWNER}/")
    assert status == 200, body
    return {item["user"]["name"] for item in body["items"] if item.get("user")}


def set_up(hub: LocalHub) -> World:
    """pia's own server hosts "Restart" (folder ``lab``): eve editor, gus editor (removed
    before the restart), team crew (tia) viewer; cell ``locked`` locked."""
    w = World(hub, {name: hub.user_token(name)
                    for name in (OWNER, EDITOR, GONE, CREW, STRANGER, LATE)})
    start_server(hub, OWNER)
    for path, body in ((ROOT, {"type": "directory"}),
                       (NOTEBOOK, {"type": "notebook", "format": "json",
                                   "content": code_notebook(CELLS)})):
        status, reply = hub.api("PUT", f"/user/{OWNER}/api/contents/{path}", body, w.tokens[OWNER])
        assert status in (200, 201), reply
    status, team = w.rtc("POST", "/teams", {"name": "crew", "members": [CREW]})
    assert status == 201, team
    w.session_id = host_session(lambda m, p, body: w.rtc(m, p, body), {
        "title": "Restart", "host": "owner", "root": ROOT,
        "members": [{"user": EDITOR, "role": "editor"}, {"user": GONE, "role": "editor"},
                    {"team": "crew", "role": "viewer"}]})
    status, rule = w.rtc("PUT", f"/sessions/{w.session_id}/cells",
                         {"path": "nb.ipynb", "cell_id": "locked", "rule": "locked"})
    assert status == 201 and rule["enforced"] is True, rule
    status, body = w.rtc("DELETE", f"/sessions/{w.session_id}/members/user/{GONE}")
    assert status == 204, body
    wait_for("the removed member's share gone", lambda: shares(hub) == {EDITOR, CREW})
    return w


async def through_the_stop(w: World) -> None:
    """Edit, stop the hub with both clients connected, edit on while it is down."""
    owner, editor = await w.client(OWNER), await w.client(EDITOR)
    try:
        editor.type_into("free", "before-restart ")
        await owner.until(lambda: "before-restart " in owner.source("free"))
        await asyncio.to_thread(wait_for, "the edit saved", lambda: "before-restart" in w.disk(), 15)
        w.records, w.shared_with = records(w), shares(w.hub)
        w.stopped_at = len(w.log())
        # A clean shutdown (SIGTERM, the hub's own clean-up), the servers left running
        await asyncio.to_thread(w.hub.stop, 30, leftovers=False)
        for client in (owner, editor):  # the proxy went with the hub
            await asyncio.wait_for(client.closed, 10)
        editor.type_into("free", "while-down ")  # kept in the replica, as a browser keeps it
        w.replicas = {OWNER: owner.doc.get_update(), EDITOR: editor.doc.get_update()}
    finally:
        owner.close()
        editor.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    urls = _postgres_url()
    db_url = next(urls)
    hub = start_hub(tmp_path_factory.mktemp("restart"), EXTRA, db_url=db_url, manage_hub_access=True)
    try:
        w = set_up(hub)
        asyncio.run(through_the_stop(w))
        w.restarted_at, w.restarted_clock = len(w.log()), time.monotonic()
        hub.start()  # the same LocalHub: same workdir, ports, database, config
        yield w
    finally:
        hub.stop()
        next(urls, None)


def test_the_server_outlived_the_hub(world: World) -> None:
    """Else the rest tests a fresh server, not a restart under a running one."""
    log = world.log()[world.stopped_at:world.restarted_at]
    assert "Cleaning up single-user servers" not in log and "Stopping pia" not in log, log[-3000:]
    _, model = world.hub.api("GET", f"/hub/api/users/{OWNER}")
    assert model["servers"][""]["ready"], model


def test_what_was_counted_before_the_stop_reaches_the_service_once(world: World) -> None:
    """Issue 15, item 3: the hub stops its service before anything else, so a count the
    server took shortly before (eve's edit) may find no service to take it; it waits on
    the server's disk and arrives once the service is back, exactly once.  (Her edit
    made while the hub was down is not in the room yet: the next test brings it.)"""
    def edits() -> int:
        status, summary = world.rtc("GET", f"/sessions/{world.session_id}/activity/summary")
        assert status == 200, summary
        return sum(m["edit"] for m in summary["members"] if m["user"] == EDITOR)

    wait_for("eve's edit attributed", lambda: edits() >= 1, 30)
    time.sleep(6)  # another send of the server's: nothing may come twice
    assert edits() == 1


def test_sessions_teams_grants_and_rules_are_all_still_there(world: World) -> None:
    assert records(world) == world.records
    members = {(m["kind"], m["name"]): m["role"] for m in world.records["members"]["members"]}
    # what the comparison above covers (gus was removed before the stop)
    assert members == {("user", EDITOR): "editor", ("team", "crew"): "viewer"}, members
    assert [c["cell_id"] for c in world.records["cells"]["cells"]] == ["locked"]


def reconnected(w: World, timeout: float = 60) -> float:
    """Wait until the server's events channel is on the restarted service (a change is
    confirmed in force); seconds from the hub's second start, measured once.

    Until then a change answers "not yet in force" (the server retries with a back-off
    of up to 30 s, so a long outage can make that wait long): honest, but not yet enforced.
    """
    if w.reconnected_after is None:
        member = f"/sessions/{w.session_id}/members/user/{EDITOR}"

        def confirmed() -> bool:
            status, body = w.rtc("PUT", member, {"role": "editor"})
            assert status == 200, body
            return bool(body["enforced"])

        wait_for("the events channel on the restarted service", confirmed, timeout)
        w.reconnected_after = time.monotonic() - w.restarted_clock
    return w.reconnected_after


def test_the_events_channel_reconnects_and_the_server_announces_itself(world: World,
                                                                       capsys: Any) -> None:
    after = reconnected(world)
    with capsys.disabled():
        print(f"\n[hub restart] events channel confirmed a change {after:.1f} s after the hub's"
              " second start")
    _, session = world.rtc("GET", f"/sessions/{world.session_id}")
    assert session["hosting"]["state"] == "ready", session["hosting"]
    # an owner-hosted session takes a new member only while its server has announced itself
    member = f"/sessions/{world.session_id}/members/user/{LATE}"
    status, body = world.rtc("PUT", member, {"role": "viewer"})
    assert status == 201 and body["enforced"] is True, body
    wait_for("the late member's share", lambda: LATE in shares(world.hub))
    assert world.rtc("DELETE", member)[0] == 204
    wait_for("the late member's share gone", lambda: LATE not in shares(world.hub))


async def test_members_get_in_and_nobody_else(world: World) -> None:
    assert await asyncio.to_thread(shares, world.hub) == world.shared_with == {EDITOR, CREW}
    for member in (EDITOR, CREW):  # in, and synced
        (await world.client(member)).close()
    statuses = {user: await refused_status(world.hub.url, OWNER, NOTEBOOK, world.tokens[user])
                for user in (GONE, STRANGER)}
    assert statuses == {GONE: 403, STRANGER: 403}


async def test_no_edit_is_lost_across_the_restart(world: World) -> None:
    owner = await world.client(OWNER, world.replicas[OWNER])
    editor = await world.client(EDITOR, world.replicas[EDITOR])
    try:
        await owner.until(lambda: "while-down " in owner.source("free"))
        text = owner.source("free")
        assert text.count("before-restart ") == 1 and text.count("while-down ") == 1, text
        fresh = await world.client(CREW)  # a replica that starts from nothing
        assert fresh.source("free") == text
        fresh.close()
    finally:
        owner.close()
        editor.close()
    await asyncio.to_thread(wait_for, "the edit made while down saved",
                            lambda: "while-down" in world.disk(), 15)


async def test_rules_before_and_after_the_restart_are_in_force(world: World) -> None:
    await asyncio.to_thread(reconnected, world)
    cells = f"/sessions/{world.session_id}/cells"
    watcher, editor = await world.client(OWNER), await world.client(EDITOR)
    try:
        editor.type_into("locked", "SECRET-old-rule ")  # the rule set before the restart
        status, rule = await asyncio.to_thread(
            world.rtc, "PUT", cells, {"path": "nb.ipynb", "cell_id": "fresh", "rule": "locked"})
        editor.type_into("fresh", "SECRET-new-rule ")  # the very next thing after the answer
        assert status == 201, rule
        assert rule["enforced"] is True and rule["pending_servers"] == [], rule
        for secret in ("SECRET-old-rule", "SECRET-new-rule"):
            await editor.until(lambda s=secret: s not in json.dumps(editor.state()), timeout=5)
        editor.type_into("free", "allowed ")
        await watcher.until(lambda: "allowed " in watcher.source("free"))
        assert "SECRET" not in json.dumps(watcher.state())
    finally:
        watcher.close()
        editor.close()
    assert (await asyncio.to_thread(world.rtc, "DELETE", cells + "?path=nb.ipynb&cell_id=fresh")
            )[0] == 204


async def test_a_member_removed_after_the_restart_is_out_at_once(world: World) -> None:
    await asyncio.to_thread(reconnected, world)
    member = f"/sessions/{world.session_id}/members/user/{EDITOR}"
    editor = await world.client(EDITOR)
    try:
        status, body = await asyncio.to_thread(world.rtc, "DELETE", member)
        assert status == 204, body
        code, _ = await asyncio.wait_for(editor.closed, 1.0)
        assert code == 4403
    finally:
        close_socket(editor.ws)
    assert await refused_status(world.hub.url, OWNER, NOTEBOOK, world.tokens[EDITOR]) == 403
    status, body = await asyncio.to_thread(world.rtc, "PUT", member, {"role": "editor"})
    assert status == 201, body


def test_no_traceback_in_the_log(world: World) -> None:
    """The hub, the service and the server all write to hub.log (the service and the
    server inherit its output)."""
    log = world.log()
    tracebacks = [m.start() for m in re.finditer(r"Traceback \(most recent call last\)", log)]
    assert not tracebacks, log[max(0, tracebacks[0] - 2000):tracebacks[0] + 3000]
    assert not re.search(r"\b500 (GET|POST|PUT|PATCH|DELETE) /services/rtc", log)


def test_what_the_server_said_while_the_service_was_away(world: World, capsys: Any) -> None:
    """Issue 15's note: the servers' last activity send fails while the service is
    stopped.  Reported, not judged here (attribution durability is item 3's)."""
    window = world.log()[world.stopped_at:]
    notes = sorted({re.sub(r"\d+", "N", line.split("]", 1)[-1].strip())
                    for line in window.splitlines()
                    if "activity" in line and "Connection refused" in line})
    with capsys.disabled():
        print(f"\n[hub restart] activity-send failures while the service was away: {notes or 'none'}")
