"""Domain operations on a real database (SQLite and PostgreSQL), hub faked in memory."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hub_rtc.manager import Manager
from hub_rtc.manager.errors import Conflict, Forbidden, Invalid, NotFound
from hub_rtc.records import models
from tests.unit.conftest import actor

ALICE = actor("alice", "cs101")
BOB = actor("bob", "cs101")
CAROL = actor("carol", "cs101")
ADMIN = actor("root", admin=True)


def in_hours(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def new_session(manager: Manager, who=ALICE, **body) -> dict:
    return await manager.sessions.create(who, {"title": "Lab", **body})


async def test_create_returns_members_host_and_url(manager: Manager) -> None:
    s = await new_session(manager, members=[
        {"user": "bob", "role": "editor"}, {"group": "cs101", "role": "viewer"},
    ], host="owner", root="/lab1/")
    assert s["owner"] == "alice" and s["my_role"] == "owner"
    assert s["root"] == "lab1" and s["host"] == "owner"
    assert s["url"] == "/user/alice/lab/tree/lab1"
    assert s["course"] == "cs101"  # the one watched group alice is in
    assert {(m["kind"], m["name"], m["role"]) for m in s["members"]} == {
        ("user", "bob", "editor"), ("group", "cs101", "viewer")}


async def test_account_host_gets_a_collaboration_account(manager: Manager) -> None:
    s = await new_session(manager)
    assert s["host"] == "account"
    assert s["server"]["user"] == f"rtc-{s['id']}"


@pytest.mark.parametrize("members,error", [
    ([{"user": "nobody", "role": "viewer"}], Invalid),
    ([{"team": "no-team", "role": "viewer"}], Invalid),
    ([{"group": "no-group", "role": "viewer"}], Invalid),
    ([{"user": "bob", "role": "viewer"}, {"user": "bob", "role": "editor"}], Conflict),
    ([{"user": "alice", "role": "viewer"}], Invalid),
    ([{"user": "bob", "team": "x", "role": "viewer"}], Invalid),
])
async def test_bad_members_refuse_the_whole_session(manager: Manager, members, error) -> None:
    with pytest.raises(error):
        await new_session(manager, members=members)
    assert await manager.sessions.list(ALICE) == []


async def test_policy_limits(manager: Manager) -> None:
    manager.ctx.policy.max_members_per_session = 1
    with pytest.raises(Forbidden, match="at most 1 members"):
        await new_session(manager, members=[{"user": "bob", "role": "viewer"},
                                            {"user": "carol", "role": "viewer"}])
    manager.ctx.policy.max_sessions_per_user = 1
    await new_session(manager)
    with pytest.raises(Forbidden, match="at most 1 active sessions"):
        await new_session(manager)
    manager.ctx.policy.grantable_roles = ["viewer"]
    with pytest.raises(Forbidden, match="may not be granted"):
        await new_session(manager, who=BOB, members=[{"user": "carol", "role": "editor"}])
    manager.ctx.policy.allow_all_to_create = False
    with pytest.raises(Forbidden, match="may not create"):
        await new_session(manager, who=CAROL)
    manager.ctx.policy.creator_groups = {"cs101"}
    assert (await new_session(manager, who=CAROL))["owner"] == "carol"


async def test_concurrent_creates_never_pass_the_session_limit_together(manager: Manager) -> None:
    """Each create counts its owner's sessions, then inserts: two at once must not
    both count the same number (on PostgreSQL they did, on SQLite too)."""
    manager.ctx.policy.max_sessions_per_user = 1
    for who in (ALICE, BOB, CAROL):
        results = await asyncio.gather(*(new_session(manager, who=who) for _ in range(4)),
                                       return_exceptions=True)
        made = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if isinstance(r, Forbidden)]
        assert (len(made), len(refused)) == (1, 3), results
        assert len(await manager.sessions.list(who)) == 1


async def test_concurrent_grants_never_pass_the_member_limit_or_grant_twice(manager: Manager) -> None:
    manager.ctx.policy.max_members_per_session = 1
    s = await new_session(manager)
    put = manager.members.put
    results = await asyncio.gather(*(put(ALICE, s["id"], "user", name, {"role": "viewer"})
                                     for name in ("bob", "carol", "dave")), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Forbidden", "Forbidden", "tuple"], results
    assert len(await manager.members.list(ALICE, s["id"])) == 1
    # the same new member twice at once: one grant, made once, then changed
    manager.ctx.policy.max_members_per_session = 5
    results = await asyncio.gather(*(put(ALICE, s["id"], "user", "ida", {"role": role})
                                     for role in ("viewer", "editor")), return_exceptions=True)
    assert sorted(created for _member, created in results) == [False, True], results
    assert len(await manager.members.list(ALICE, s["id"])) == 2


async def test_lifetime_policy(manager: Manager) -> None:
    manager.ctx.policy.max_lifetime_hours = 2
    with pytest.raises(Forbidden, match="at most 2 hours"):
        await new_session(manager, expires_at=in_hours(3))
    with pytest.raises(Invalid, match="future"):
        await new_session(manager, expires_at=in_hours(-1))
    with pytest.raises(Invalid, match="ISO 8601"):
        await new_session(manager, expires_at="next tuesday")
    s = await new_session(manager, expires_at=in_hours(1))
    assert s["expires_at"].endswith("Z")


async def test_another_students_session_is_forbidden(manager: Manager) -> None:
    s = await new_session(manager)
    with pytest.raises(Forbidden):
        await manager.sessions.get(BOB, s["id"])
    with pytest.raises(Forbidden):
        await manager.members.put(BOB, s["id"], "user", "bob", {"role": "manager"})
    with pytest.raises(NotFound):
        await manager.sessions.get(BOB, "does-not-exist")
    assert (await manager.sessions.get(ADMIN, s["id"]))["id"] == s["id"]


async def test_members_add_change_remove(manager: Manager) -> None:
    s = await new_session(manager)
    member, created = await manager.members.put(ALICE, s["id"], "user", "bob", {"role": "viewer"})
    assert created and member["role"] == "viewer" and member["granted_by"] == "alice"
    member, created = await manager.members.put(ALICE, s["id"], "user", "bob", {"role": "manager"})
    assert not created and member["role"] == "manager"
    # bob, now a manager, may add carol but not end the session
    await manager.members.put(BOB, s["id"], "user", "carol", {"role": "editor"})
    with pytest.raises(Forbidden, match="only the owner"):
        await manager.sessions.end(BOB, s["id"])
    await manager.members.delete(ALICE, s["id"], "user", "bob")
    with pytest.raises(Forbidden):
        await manager.sessions.get(BOB, s["id"])
    with pytest.raises(NotFound):
        await manager.members.delete(ALICE, s["id"], "user", "bob")


async def test_viewer_sees_but_cannot_change(manager: Manager) -> None:
    s = await new_session(manager, members=[{"user": "bob", "role": "viewer"}])
    assert (await manager.sessions.get(BOB, s["id"]))["my_role"] == "viewer"
    with pytest.raises(Forbidden):
        await manager.sessions.update(BOB, s["id"], {"title": "mine now"})
    assert [x["id"] for x in await manager.sessions.list(BOB, "shared")] == [s["id"]]
    assert await manager.sessions.list(BOB, "mine") == []


async def test_ended_session_keeps_records_and_refuses_changes(manager: Manager) -> None:
    s = await new_session(manager, members=[{"user": "bob", "role": "editor"}])
    await manager.sessions.end(ALICE, s["id"])
    again = await manager.sessions.get(ALICE, s["id"])
    assert again["state"] == "ended" and again["ended_at"] and again["members"]
    with pytest.raises(Conflict):
        await manager.members.put(ALICE, s["id"], "user", "carol", {"role": "viewer"})


async def test_team_grants_follow_team_membership(manager: Manager) -> None:
    await manager.teams.create(ALICE, {"name": "bees", "members": ["bob"]})
    s = await new_session(manager, members=[{"team": "bees", "role": "editor"}])
    assert (await manager.sessions.get(BOB, s["id"]))["my_role"] == "editor"
    await manager.teams.put_member(ALICE, "bees", "carol")
    assert (await manager.sessions.get(CAROL, s["id"]))["my_role"] == "editor"
    await manager.teams.delete_member(ALICE, "bees", "bob")
    with pytest.raises(Forbidden):
        await manager.sessions.get(BOB, s["id"])
    with pytest.raises(Forbidden):
        await manager.teams.put_member(BOB, "bees", "bob")
    with pytest.raises(Conflict):
        await manager.teams.create(BOB, {"name": "bees"})
    await manager.teams.delete(ALICE, "bees")
    assert (await manager.sessions.get(ALICE, s["id"]))["members"] == []


async def test_cell_rules(manager: Manager) -> None:
    s = await new_session(manager, members=[{"user": "bob", "role": "editor"}])
    rule, created = await manager.cells.put(ALICE, s["id"], {
        "path": "nb.ipynb", "cell_id": "c1", "rule": "assigned", "writers": [{"user": "bob"}]})
    assert created and rule["writers"] == [{"kind": "user", "name": "bob"}]
    locked = {"path": "nb.ipynb", "cell_id": "c1", "rule": "locked"}
    rule, created = await manager.cells.put(ALICE, s["id"], locked)
    assert not created and rule["rule"] == "locked" and rule["writers"] == []
    with pytest.raises(Invalid, match="at least one"):
        await manager.cells.put(ALICE, s["id"], {"path": "nb.ipynb", "cell_id": "c2", "rule": "assigned"})
    with pytest.raises(Invalid, match="outside"):
        await manager.cells.put(ALICE, s["id"], {"path": "../x.ipynb", "cell_id": "c2", "rule": "locked"})
    with pytest.raises(Forbidden):
        await manager.cells.put(BOB, s["id"], {"path": "nb.ipynb", "cell_id": "c3", "rule": "locked"})
    assert len(await manager.cells.rules(BOB, s["id"])) == 1
    await manager.cells.delete(ALICE, s["id"], "nb.ipynb", "c1")
    assert await manager.cells.rules(ALICE, s["id"]) == []


async def test_activity_aggregates_per_minute(manager: Manager) -> None:
    from hub_rtc.manager.actor import SCOPE_ACTIVITY_WRITE, Actor

    s = await new_session(manager, members=[{"user": "bob", "role": "editor"}])
    host = s["server"]["user"]  # the session's own server, speaking with its token
    server = Actor(host, scopes=frozenset({SCOPE_ACTIVITY_WRITE, f"access:servers!server={host}/"}))
    t = "2026-11-21T10:00:05Z"
    events = [
        {"ts": t, "user": "bob", "kind": "edit", "path": "nb.ipynb", "cell_id": "c1", "count": 3},
        {"ts": "2026-11-21T10:00:50Z", "user": "bob", "kind": "edit", "path": "nb.ipynb", "cell_id": "c1"},
        {"ts": t, "user": "carol", "kind": "refused", "path": "nb.ipynb", "cell_id": "c1"},
        {"ts": "2026-11-21T10:03:00Z", "user": "bob", "kind": "execute", "path": "nb.ipynb"},
    ]
    assert await manager.activity.record(server, s["id"], events) == 6
    with pytest.raises(Forbidden):
        await manager.activity.record(BOB, s["id"], events)
    # another server, or a service without custom:rtc:admin, is not the host
    other = Actor("bob", scopes=frozenset({SCOPE_ACTIVITY_WRITE, "access:servers!server=bob/"}))
    service = Actor("srv", scopes=frozenset({SCOPE_ACTIVITY_WRITE}), kind="service")
    for stranger in (other, service):
        with pytest.raises(Forbidden, match="only the server hosting"):
            await manager.activity.record(stranger, s["id"], events)
    rows = await manager.activity.read(ALICE, s["id"], {"user": "bob", "kind": "edit"})
    assert rows == [{"ts": "2026-11-21T10:00:00Z", "user": "bob", "kind": "edit",
                     "path": "nb.ipynb", "cell_id": "c1", "count": 4}]
    later = await manager.activity.read(ALICE, s["id"], {"since": "2026-11-21T10:01:00Z"})
    assert [r["kind"] for r in later] == ["execute"]
    summary = {m["user"]: m for m in await manager.activity.summary(ALICE, s["id"])}
    assert summary["bob"]["edit"] == 4 and summary["bob"]["execute"] == 1
    assert summary["bob"]["cells_edited"] == 1 and summary["carol"]["refused"] == 1
    with pytest.raises(Forbidden, match="activity"):
        await manager.activity.read(BOB, s["id"], {})


async def test_instructor_watches_course_sessions(manager: Manager) -> None:
    s = await new_session(manager)
    ida = actor("ida", "cs101-staff")
    assert (await manager.sessions.get(ida, s["id"]))["my_role"] == "observer"
    assert [x["id"] for x in await manager.sessions.list(ida, "watched")] == [s["id"]]
    with pytest.raises(Forbidden):
        await manager.members.put(ida, s["id"], "user", "bob", {"role": "viewer"})


async def test_persistent_id_survives_a_hub_rename(manager: Manager, directory) -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    directory.add("erin", "cs101", created=created)
    before = await manager.people.identity("erin")
    s = await new_session(manager, members=[{"user": "erin", "role": "editor"}])
    # the hub renames erin to erin2: same creation time, old name gone
    del directory.users["erin"]
    directory.add("erin2", "cs101", created=created)
    after = await manager.people.identity("erin2")
    assert after["id"] == before["id"] and after["color"] == before["color"]
    assert (await manager.sessions.get(actor("erin2", "cs101"), s["id"]))["my_role"] == "editor"


async def test_new_user_with_same_created_but_old_name_alive_is_not_a_rename(manager, directory):
    created = datetime(2026, 1, 2, tzinfo=UTC)
    directory.add("fay", created=created)
    directory.add("gil", created=created)
    assert (await manager.people.identity("fay"))["id"] != (await manager.people.identity("gil"))["id"]


async def test_authorize_uses_the_same_decision(manager: Manager) -> None:
    from hub_rtc.decision import Resource
    from hub_rtc.manager.actor import SCOPE_AUTHORIZE, Actor

    s = await new_session(manager, members=[{"user": "bob", "role": "viewer"}])
    d = await manager.decisions.authorize(BOB, BOB, "write", Resource(s["id"]))
    assert not d.allowed and d.role == "viewer"
    with pytest.raises(Forbidden):
        await manager.decisions.authorize(BOB, ALICE, "read", Resource(s["id"]))
    server = Actor("srv", scopes=frozenset({SCOPE_AUTHORIZE}), kind="service")
    assert (await manager.decisions.authorize(server, ALICE, "write", Resource(s["id"]))).allowed


async def test_kept_decision_records_never_outlive_a_change_from_anywhere(
        manager: Manager, db_url: str, monkeypatch) -> None:
    """The records behind ``/authorize`` are kept between calls, and a change made
    outside this service process (another replica, ``hub-rtc`` commands) is seen at
    the next call: the database's triggers move the revision the cache checks."""
    from sqlalchemy import text

    from hub_rtc.decision import Resource
    from hub_rtc.records import Database

    s = await new_session(manager, members=[{"user": "bob", "role": "editor",
                                             "expires_at": in_hours(1)}])
    where = Resource(s["id"])

    async def role() -> str | None:
        return (await manager.decisions.authorize(BOB, BOB, "read", where)).role

    assert [await role() for _ in range(3)] == ["editor"] * 3
    assert len(manager.decisions.kept) == 1  # loaded once, then kept
    elsewhere = Database(db_url)
    try:
        with elsewhere.engine.begin() as db:
            db.execute(text("UPDATE grants SET role = 'viewer'"))
        assert await role() == "viewer"
        later = datetime.now(UTC) + timedelta(hours=2)  # expiry is decided at each call
        monkeypatch.setattr(models, "utcnow", lambda: later)
        assert await role() is None
        monkeypatch.undo()
        with elsewhere.engine.begin() as db:
            db.execute(text("DELETE FROM grants"))
        assert await role() is None
        with elsewhere.engine.begin() as db:
            db.execute(text("UPDATE sessions SET state = 'ended'"))
        assert not (await manager.decisions.authorize(ALICE, ALICE, "write", where)).allowed
    finally:
        elsewhere.dispose()


async def test_time_travel_expires_grants(manager: Manager, monkeypatch) -> None:
    s = await new_session(manager, members=[{"user": "bob", "role": "editor", "expires_at": in_hours(1)}])
    assert (await manager.sessions.get(BOB, s["id"]))["my_role"] == "editor"
    future = datetime.now(UTC) + timedelta(hours=2)
    monkeypatch.setattr(models, "utcnow", lambda: future)
    with pytest.raises(Forbidden):
        await manager.sessions.get(BOB, s["id"])
