"""Session hosting with an in-memory hub: announcements, shares that follow
grants, collaboration accounts, the sweep and what servers are told.

Real databases (SQLite and PostgreSQL); the hub is :class:`StaticDirectory`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from hub_rtc.decision import Resource
from hub_rtc.manager import Actor, Manager, StaticDirectory
from hub_rtc.manager.actor import SCOPE_ACTIVITY_WRITE, SCOPE_AUTHORIZE
from hub_rtc.manager.errors import Conflict, Forbidden
from hub_rtc.manager.ports import HostingError, ServerKey
from hub_rtc.records import models
from tests.unit.conftest import actor

ALICE = actor("alice", "cs101")
BOB = actor("bob", "cs101")
ADMIN = actor("root", admin=True)


def server_token(user: str, name: str = "") -> Actor:
    """What a single-user server's own hub token looks like to the service (the
    drop-in's ``server`` role, filtered by the hub to that one server)."""
    server = f"!server={user}/{name}"
    scopes = {SCOPE_AUTHORIZE + server, SCOPE_ACTIVITY_WRITE + server, "access:servers" + server,
              "access:services!service=rtc", "users:activity!user=" + user}
    return Actor(user, scopes=frozenset(scopes))


async def announce(manager: Manager, user: str, name: str = "") -> dict:
    return await manager.servers.announce(
        server_token(user, name), {"server_name": name, "version": "0.1", "base_url": f"/user/{user}/"})


async def owner_session(manager: Manager, directory: StaticDirectory, **body) -> dict:
    """alice's server running and announced, then a session on it."""
    directory.run("alice")
    await announce(manager, "alice")
    return await manager.sessions.create(ALICE, {"title": "Lab", "host": "owner", **body})


def travel(monkeypatch: pytest.MonkeyPatch, hours: float) -> datetime:
    then = datetime.now(UTC) + timedelta(hours=hours)
    monkeypatch.setattr(models, "utcnow", lambda: then)
    return then


def soon(hours: float = 1) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


# -- owner host ------------------------------------------------------------------


async def test_owner_host_needs_a_running_announced_server(hosted: Manager, directory) -> None:
    body = {"title": "Lab", "host": "owner", "members": [{"user": "bob", "role": "editor"}]}
    with pytest.raises(Conflict, match="start alice's server first.*full access"):
        await hosted.sessions.create(ALICE, body)
    directory.run("alice")
    with pytest.raises(Conflict, match="has not announced the hub_rtc extension"):
        await hosted.sessions.create(ALICE, body)
    await announce(hosted, "alice")
    # the server restarts: the announcement was for the previous run
    directory.run("alice", started=models.utcnow() + timedelta(seconds=5))
    with pytest.raises(Conflict, match="has not announced"):
        await hosted.sessions.create(ALICE, body)
    await announce(hosted, "alice")
    s = await hosted.sessions.create(ALICE, body)
    assert s["hosting"]["state"] == "ready"
    assert directory.shared_with("alice") == {("user", "bob")}  # the owner needs no share
    assert await hosted.sessions.list(ALICE, "mine") != []


async def test_new_members_of_an_owner_session_need_the_server_announced(hosted, directory) -> None:
    s = await owner_session(hosted, directory, members=[{"user": "bob", "role": "viewer"}])
    directory.servers.clear()  # alice stops her server
    with pytest.raises(Conflict, match="start alice's server first"):
        await hosted.members.put(ALICE, s["id"], "user", "carol", {"role": "viewer"})
    # changing an existing member's role needs no server
    await hosted.members.put(ALICE, s["id"], "user", "bob", {"role": "editor"})


async def test_shares_follow_user_team_and_group_grants(hosted, directory, told) -> None:
    await hosted.teams.create(ALICE, {"name": "bees", "members": ["carol"]})
    s = await owner_session(hosted, directory, members=[
        {"user": "bob", "role": "editor"}, {"team": "bees", "role": "viewer"}])
    assert directory.shared_with("alice") == {("user", "bob"), ("user", "carol")}
    await hosted.members.put(ALICE, s["id"], "group", "empty-group", {"role": "viewer"})
    assert ("group", "empty-group") in directory.shared_with("alice")
    await hosted.teams.put_member(ALICE, "bees", "dave")
    assert ("user", "dave") in directory.shared_with("alice")
    told.take()
    await hosted.teams.delete_member(ALICE, "bees", "carol")
    assert ("user", "carol") not in directory.shared_with("alice")
    assert told.take() == [(s["id"], ("carol",), "team membership changed")]
    await hosted.members.delete(ALICE, s["id"], "user", "bob")
    assert told.take() == [(s["id"], ("bob",), "member removed")]
    await hosted.teams.delete(ALICE, "bees")
    assert told.take() == [(s["id"], ("dave",), "team membership changed")]
    assert directory.shared_with("alice") == {("group", "empty-group")}
    await hosted.members.delete(ALICE, s["id"], "group", "empty-group")
    assert told.take() == [(s["id"], None, "member removed")]
    assert directory.shared_with("alice") == set()
    rows = await hosted.ctx.db.run(lambda db: db.execute(text("select count(*) from hub_shares")).scalar())
    assert rows == 0


async def test_two_sessions_on_one_server_share_one_share(hosted, directory) -> None:
    one = await owner_session(hosted, directory, root="a", members=[{"user": "bob", "role": "editor"}])
    await hosted.sessions.create(ALICE, {"title": "B", "host": "owner", "root": "b",
                                         "members": [{"user": "bob", "role": "viewer"}]})
    assert directory.shared_with("alice") == {("user", "bob")}
    await hosted.sessions.end(ALICE, one["id"])
    assert directory.shared_with("alice") == {("user", "bob")}  # the other session still wants bob
    assert [c for c in directory.calls if c[0] == "unshare"] == []


async def test_role_changes_and_cell_rules_tell_the_server(hosted, directory, told) -> None:
    s = await owner_session(hosted, directory, members=[{"user": "bob", "role": "editor"}])
    told.take()
    await hosted.members.put(ALICE, s["id"], "user", "carol", {"role": "viewer"})
    # a new member only gains access, but a new runner changes what the session's files
    # may change on their own (hub_rtc.decision.file): the server hears of it
    assert told.take() == [(s["id"], ("carol",), "member added")]
    await hosted.members.put(ALICE, s["id"], "user", "bob", {"role": "viewer"})
    assert told.take() == [(s["id"], ("bob",), "role changed")]
    rule = {"path": "nb.ipynb", "cell_id": "c1", "rule": "locked"}
    await hosted.cells.put(ALICE, s["id"], rule)
    await hosted.cells.delete(ALICE, s["id"], "nb.ipynb", "c1")
    assert {c.server for c in told.seen} == {("alice", "")}  # the hosting server is told
    assert told.take() == [(s["id"], None, "cell rules changed")] * 2
    await hosted.sessions.end(ALICE, s["id"])
    assert told.take() == [(s["id"], None, "session ended")]
    assert directory.shared_with("alice") == set()


# -- account host ------------------------------------------------------------------


async def test_account_is_set_up_then_members_are_let_in_on_announce(hosted, directory) -> None:
    s = await hosted.sessions.create(ALICE, {"title": "Lab", "members": [{"user": "bob", "role": "editor"}]})
    account = s["server"]["user"]
    assert s["host"] == "account" and s["hosting"]["state"] == "starting"
    for _ in range(20):  # the background start reaches "waiting for the announcement"
        got = await hosted.sessions.get(ALICE, s["id"])
        if "announce" in got["hosting"]["message"]:
            break
        await _tick()
    assert ("create_user", account) in directory.calls
    assert ("start_server", account, "") in directory.calls
    assert directory.shared_with(account) == set()  # nobody before the extension is there
    answer = await announce(hosted, account)
    assert answer == {"sessions": [s["id"]], "cache_seconds": 7}
    await hosted.hosting.settle()
    got = await hosted.sessions.get(ALICE, s["id"])
    assert got["hosting"]["state"] == "ready" and "announced itself" in got["hosting"]["message"]
    assert directory.shared_with(account) == {("user", "alice"), ("user", "bob")}
    await hosted.sessions.end(ALICE, s["id"])
    ended = await hosted.sessions.get(ALICE, s["id"])
    assert ended["hosting"]["state"] == "stopped"
    assert directory.shared_with(account) == set() and (account, "") not in directory.servers
    assert account in directory.users  # the hub user stays, and so do the records


async def test_an_account_session_is_ready_only_once_its_members_are_let_in(hosted, directory,
                                                                            monkeypatch) -> None:
    """Whoever reads "ready" can reach the server: the shares come first."""
    s = await hosted.sessions.create(ALICE, {"title": "Lab", "members": [{"user": "bob", "role": "editor"}]})
    account = s["server"]["user"]
    states_when_shared = []
    share = directory.share

    async def noting_state(server: ServerKey, kind: str, principal: str) -> None:
        got = await hosted.sessions.get(ALICE, s["id"])
        states_when_shared.append((principal, got["hosting"]["state"]))
        await share(server, kind, principal)

    monkeypatch.setattr(directory, "share", noting_state)
    for _ in range(20):  # the background start reaches "waiting for the announcement"
        if "announce" in (await hosted.sessions.get(ALICE, s["id"]))["hosting"]["message"]:
            break
        await _tick()
    await announce(hosted, account)
    await hosted.hosting.settle()
    assert (await hosted.sessions.get(ALICE, s["id"]))["hosting"]["state"] == "ready"
    assert sorted(states_when_shared) == [("alice", "starting"), ("bob", "starting")]
    assert directory.shared_with(account) == {("user", "alice"), ("user", "bob")}


async def test_account_without_the_extension_fails_and_says_why(hosted, directory) -> None:
    s = await hosted.sessions.create(ALICE, {"title": "Lab"})
    await hosted.hosting.settle()
    got = await hosted.sessions.get(ALICE, s["id"])
    assert got["hosting"]["state"] == "failed"
    assert "did not announce itself within 0.6 s" in got["hosting"]["message"]
    assert directory.shared_with(s["server"]["user"]) == set()
    await announce(hosted, s["server"]["user"])  # a late announcement still lets members in
    got = await hosted.sessions.get(ALICE, s["id"])
    assert got["hosting"]["state"] == "ready"
    assert directory.shared_with(s["server"]["user"]) == {("user", "alice")}


async def test_account_the_hub_cannot_start_fails(hosted, directory) -> None:
    directory.start_error = "spawner exploded"
    s = await hosted.sessions.create(ALICE, {"title": "Lab"})
    await hosted.hosting.settle()
    hosting = (await hosted.sessions.get(ALICE, s["id"]))["hosting"]
    assert hosting == {"state": "failed", "message":
                       f"could not start the server of collaboration account {s['server']['user']}:"
                       " spawner exploded"}


async def test_ending_while_starting_stops_the_start(hosted, directory) -> None:
    s = await hosted.sessions.create(ALICE, {"title": "Lab"})
    await hosted.sessions.end(ALICE, s["id"])
    await hosted.hosting.settle()
    got = await hosted.sessions.get(ALICE, s["id"])
    assert got["hosting"]["state"] == "stopped"
    assert (s["server"]["user"], "") not in directory.servers


async def test_unmanaged_hosting_touches_nothing(manager: Manager, directory) -> None:
    s = await manager.sessions.create(ALICE, {"title": "Lab", "host": "owner",
                                              "members": [{"user": "bob", "role": "editor"}]})
    assert s["hosting"]["state"] == "unmanaged"
    assert directory.calls == [] and directory.shares == set()


# -- who may speak for a server -------------------------------------------------------


async def test_server_identity_and_admin_override(hosted, directory) -> None:
    body = {"server_name": "", "version": "0.1", "base_url": "/user/alice/"}
    with pytest.raises(Forbidden, match="belongs to alice's server, not to server 'gpu'"):
        await hosted.servers.announce(server_token("alice"), {**body, "server_name": "gpu"})
    with pytest.raises(Forbidden, match="custom:rtc:admin"):
        await hosted.servers.announce(server_token("alice"), {**body, "server_user": "bob"})
    with pytest.raises(Forbidden, match="authorize"):
        await hosted.servers.announce(BOB, body)  # a user token without the scope
    service = Actor("srv", scopes=frozenset({SCOPE_AUTHORIZE}), kind="service")
    with pytest.raises(Forbidden, match="must name server_user"):
        await hosted.servers.announce(service, body)
    # a user's own token holds the scopes for their own servers only
    own = Actor("bob", scopes=frozenset({SCOPE_AUTHORIZE + "!user=bob"}))
    assert (await hosted.servers.hello(own, "gpu"))[0] == ("bob", "gpu")
    with pytest.raises(Forbidden):
        await hosted.servers.hello(own, "", server_user="alice")
    directory.run("bob")
    assert (await hosted.servers.announce(ADMIN, {**body, "server_user": "bob"}))["sessions"] == []
    listed = await hosted.servers.list(ADMIN)
    assert [(x["user"], x["name"], x["version"]) for x in listed] == [("bob", "", "0.1")]
    with pytest.raises(Forbidden):
        await hosted.servers.list(BOB)
    server, sessions = await hosted.servers.hello(server_token("bob"), "")
    assert server == ("bob", "") and sessions == []


async def test_only_the_hosting_server_records_activity(hosted, directory) -> None:
    s = await owner_session(hosted, directory, members=[{"user": "bob", "role": "editor"}])
    event = [{"ts": "2026-11-21T10:00:00Z", "user": "bob", "kind": "edit"}]
    assert await hosted.activity.record(server_token("alice"), s["id"], event) == 1
    assert await hosted.activity.record(ADMIN, s["id"], event) == 1
    with pytest.raises(Forbidden, match="only the server hosting"):
        await hosted.activity.record(server_token("alice", "other"), s["id"], event)


async def test_a_batch_sent_again_is_counted_once(hosted, directory) -> None:
    """A server killed after sending (or that never heard the answer) sends the same
    batch id again; at once too (two deliveries racing)."""
    s = await owner_session(hosted, directory, members=[{"user": "bob", "role": "editor"}])
    server = server_token("alice")
    event = [{"ts": "2026-11-21T10:00:00Z", "user": "bob", "kind": "edit", "count": 4}]
    assert await hosted.activity.record(server, s["id"], event, "b1-0") == 4
    assert await hosted.activity.record(server, s["id"], event, "b1-0") == 0
    twice = await asyncio.gather(*(hosted.activity.record(server, s["id"], event, "b2-0")
                                   for _ in range(2)))
    assert sorted(twice) == [0, 4]
    summary = await hosted.activity.summary(ALICE, s["id"])
    assert [m["edit"] for m in summary if m["user"] == "bob"] == [8]  # b1 once, b2 once
    assert await hosted.activity.record(server, s["id"], event) == 4  # no id: counted each time


async def test_the_sweep_forgets_batch_ids_after_a_week(hosted, directory, monkeypatch) -> None:
    s = await owner_session(hosted, directory, members=[{"user": "bob", "role": "editor"}])
    server = server_token("alice")
    event = [{"ts": "2026-11-21T10:00:00Z", "user": "bob", "kind": "edit"}]
    assert await hosted.activity.record(server, s["id"], event, "old-0") == 1
    travel(monkeypatch, 24 * 6)
    await hosted.sweeper.sweep()
    assert await hosted.activity.record(server, s["id"], event, "old-0") == 0  # still known
    travel(monkeypatch, 24 * 8)
    await hosted.sweeper.sweep()
    assert await hosted.activity.record(server, s["id"], event, "old-0") == 1  # forgotten


# -- the sweep -------------------------------------------------------------------------


async def test_sweep_expires_grants_and_sessions(hosted, directory, told, monkeypatch) -> None:
    s = await owner_session(hosted, directory, expires_at=soon(3), members=[
        {"user": "bob", "role": "editor", "expires_at": soon(1)}, {"user": "carol", "role": "viewer"}])
    told.take()
    await hosted.sweeper.sweep()
    assert told.take() == [] and directory.shared_with("alice") == {("user", "bob"), ("user", "carol")}
    travel(monkeypatch, 2)  # alice's server still runs the run that announced itself
    await hosted.sweeper.sweep()
    assert told.take() == [(s["id"], ("bob",), "grant expired")]
    assert directory.shared_with("alice") == {("user", "carol")}
    await hosted.sweeper.sweep()
    assert told.take() == []  # told once
    travel(monkeypatch, 4)
    await hosted.sweeper.sweep()
    assert told.take() == [(s["id"], None, "session expired")]
    assert directory.shared_with("alice") == set()
    got = await hosted.sessions.get(ALICE, s["id"])
    assert got["hosting"]["state"] == "stopped" and got["state"] == "active"
    decision = await hosted.decisions.authorize(ALICE, ALICE, "read", Resource(s["id"]))
    assert not decision.allowed and "expired" in decision.reason
    # moving the expiry into the future hosts it again
    later = (models.utcnow() + timedelta(hours=1)).isoformat()
    await hosted.sessions.update(ADMIN, s["id"], {"expires_at": later})
    got = await hosted.sessions.get(ALICE, s["id"])
    assert got["hosting"]["state"] == "ready"
    assert directory.shared_with("alice") == {("user", "carol")}


async def test_sweep_withdraws_shares_of_unannounced_runs(hosted, directory, monkeypatch) -> None:
    s = await owner_session(hosted, directory, members=[{"user": "bob", "role": "editor"}])
    directory.servers.clear()  # alice stops her server: shares go at once
    await hosted.sweeper.sweep()
    got = await hosted.sessions.get(ALICE, s["id"])
    assert got["hosting"]["state"] == "waiting" and directory.shared_with("alice") == set()
    await announce(hosted, "alice")  # her next run announces: members are back
    assert directory.shared_with("alice") == {("user", "bob")}
    # a new run that does not announce keeps its shares during the grace period only
    directory.run("alice", started=models.utcnow() + timedelta(seconds=1))
    await hosted.sweeper.sweep()
    assert directory.shared_with("alice") == {("user", "bob")}
    travel(monkeypatch, 1 / 60)  # a minute later, past the 30 s grace
    await hosted.sweeper.sweep()
    got = await hosted.sessions.get(ALICE, s["id"])
    assert got["hosting"]["state"] == "waiting" and "within 30 s" in got["hosting"]["message"]
    assert directory.shared_with("alice") == set()


async def test_sweep_starts_a_stopped_session_server_again(hosted, directory) -> None:
    s = await hosted.sessions.create(ALICE, {"title": "Lab"})
    account = s["server"]["user"]
    await _until_started(hosted, directory, account)
    await announce(hosted, account)
    await hosted.hosting.settle()
    assert directory.shared_with(account) == {("user", "alice")}
    directory.servers.clear()  # e.g. the idle culler stopped it
    await hosted.sweeper.sweep()
    assert (await hosted.sessions.get(ALICE, s["id"]))["hosting"]["state"] == "starting"
    assert directory.shared_with(account) == set()  # nobody in until the new run announces
    await _until_started(hosted, directory, account)
    assert [c for c in directory.calls if c[0] == "start_server"] == [("start_server", account, "")] * 2
    await hosted.hosting.settle()  # this run never announces itself
    assert (await hosted.sessions.get(ALICE, s["id"]))["hosting"]["state"] == "failed"
    assert directory.shared_with(account) == set()


async def test_failed_hub_calls_are_retried_by_the_sweep(hosted, directory) -> None:
    s = await owner_session(hosted, directory)
    real = directory.share

    async def down(server: ServerKey, kind: str, principal: str) -> None:
        raise HostingError("hub restarting")

    directory.share = down  # type: ignore[method-assign]
    await hosted.members.put(ALICE, s["id"], "user", "bob", {"role": "editor"})
    assert directory.shared_with("alice") == set() and hosted.hosting.shares.retry == {("alice", "")}
    directory.share = real  # type: ignore[method-assign]
    await hosted.sweeper.sweep()
    assert directory.shared_with("alice") == {("user", "bob")} and hosted.hosting.shares.retry == set()


async def test_resume_after_a_restart_carries_on(hosted, directory) -> None:
    s = await hosted.sessions.create(ALICE, {"title": "Lab"})
    await hosted.hosting.close()  # the service died while starting the account
    assert (await hosted.sessions.get(ALICE, s["id"]))["hosting"]["state"] == "starting"
    directory.calls.clear()
    await hosted.hosting.resume()
    await _until_started(hosted, directory, s["server"]["user"])
    await announce(hosted, s["server"]["user"])
    await hosted.hosting.settle()  # the start task sees the announcement and lets members in
    assert (await hosted.sessions.get(ALICE, s["id"]))["hosting"]["state"] == "ready"


# -- helpers -------------------------------------------------------------------------


async def _tick() -> None:
    await asyncio.sleep(0.05)


async def _until_started(manager: Manager, directory: StaticDirectory, account: str) -> None:
    for _ in range(40):
        if (account, "") in directory.servers:
            return
        await _tick()
    raise AssertionError(f"{account}'s server never started")


# -- the 0003 migration ------------------------------------------------------------------


def test_0003_keeps_sessions_and_lets_nobody_in_until_announced(db_url: str) -> None:
    from hub_rtc.records.database import downgrade, make_engine, upgrade
    from tests.unit.test_migrations import ROWS_0001, _count, _fill_0001

    _fill_0001(db_url)
    upgrade(db_url, "0002", backup=False)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text(ROWS_0001[2].replace("'s1', 'Lab'", "'s2', 'Old'").replace("'active'", "'ended'")))
    upgrade(db_url, backup=False)
    with engine.connect() as conn:
        states = dict(conn.execute(text("SELECT id, hosting_state FROM sessions")).all())
    engine.dispose()
    assert states == {"s1": "waiting", "s2": "stopped"}
    downgrade(db_url, "0002")
    assert (_count(db_url, "sessions"), _count(db_url, "grants")) == (2, 1)


# -- how session kernels run ----------------------------------------------------------


@pytest.mark.parametrize(("wish", "kernels", "mode"), [
    ("auto", None, "unknown"),  # an older extension says nothing
    ("auto", {"sandbox": True, "missing": ""}, "sandbox"),
    ("auto", {"sandbox": False, "missing": "bwrap (bubblewrap) is not installed"}, "none"),
    ("sandbox", {"sandbox": False, "missing": "bwrap (bubblewrap) is not installed"}, "refused"),
    ("none", {"sandbox": True, "missing": ""}, "none"),
    ("auto", {"sandbox": True, "missing": "", "account": True, "account_missing": ""}, "account"),
    ("account", {"sandbox": True, "missing": "", "account": False,
                 "account_missing": "there is no account 'k' on this host"}, "refused")])
async def test_the_session_and_the_admin_say_how_kernels_run(
        hosted: Manager, directory: StaticDirectory, wish: str, kernels: dict | None,
        mode: str) -> None:
    hosted.ctx.policy.kernel_isolation = wish
    directory.run("alice")
    body = {"server_name": "", "version": "0.1", "base_url": "/user/alice/"}
    said = {"kernels": kernels} if kernels else {}
    await hosted.servers.announce(server_token("alice"), {**body, **said})
    s = await hosted.sessions.create(ALICE, {"title": "Lab", "host": "owner"})
    assert s["kernels"]["mode"] == mode
    if kernels and not kernels["sandbox"]:
        assert kernels["missing"] in s["kernels"]["why"]  # and why the server cannot do better
    if kernels and kernels.get("account_missing") and mode == "refused":
        assert kernels["account_missing"] in s["kernels"]["why"]
    if mode == "none":
        assert "runs as the server's account" in s["kernels"]["why"]
    [server] = await hosted.servers.list(ADMIN)
    assert server["kernels"] == s["kernels"] == (await hosted.sessions.get(ALICE, s["id"]))["kernels"]
