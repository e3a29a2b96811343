"""``/servers/rights`` through the manager: the decision world of
tests/decision_cases.py asked as a server asks, and which session a path
falls in.  Real databases; hosting off (rights do not depend on it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from hub_rtc.manager import Manager, StaticDirectory
from hub_rtc.records import models
from tests import decision_cases as W
from tests.unit.conftest import actor
from tests.unit.test_hosting import server_token

ADMIN = actor("root", admin=True)
ALICE, CAROL, DAVE = actor("alice", "cs101"), actor("carol", "cs101"), actor("dave", "cs101")
ACTIONS = ("read", "write", "execute", "manage", "terminal")


@pytest.fixture
def directory() -> StaticDirectory:
    d = StaticDirectory()
    for name in ("alice", "bob", "carol", "dave"):
        d.add(name, "cs101")
    for name in W.ALL_USERS:
        d.add(name, *([W.COURSE] if name == W.OWNER else []),
              *([W.GROUP[0]] if name in W.GROUP[1] else []),
              *([W.WATCHER[1]] if name == W.WATCHER[0] else []))
    return d


async def rights(manager: Manager, server: str, user: str, path: str | None) -> dict:
    return await manager.servers.rights(
        server_token(server), {"user": user, "server_name": "", "path": path})


async def build_world(manager: Manager, monkeypatch: pytest.MonkeyPatch) -> str:
    """The decision world as a dedicated session server; returns that server's user."""
    olive = actor(W.OWNER, W.COURSE)
    await manager.teams.create(olive, {"name": W.TEAM[0], "members": list(W.TEAM[1])})
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    members = [{"user": u, "role": r} for u, r in W.USER_GRANTS.items() if r != "manager"]
    members += [{"team": W.TEAM[0], "role": W.TEAM[2]}, {"group": W.GROUP[0], "role": W.GROUP[2]},
                {"user": W.EXPIRED[0], "role": W.EXPIRED[1], "expires_at": soon},
                {"user": W.REMOVED, "role": "editor"}]
    s = await manager.sessions.create(olive, {"title": "world", "course": W.COURSE, "members": members})
    await manager.members.put(ADMIN, s["id"], "user", "max", {"role": "manager"})
    await manager.members.delete(olive, s["id"], "user", W.REMOVED)
    await manager.cells.put(olive, s["id"], {"path": W.NOTEBOOK, "cell_id": W.CELLS["locked"],
                                             "rule": "locked"})
    await manager.cells.put(olive, s["id"], {
        "path": W.NOTEBOOK, "cell_id": W.CELLS["assigned"], "rule": "assigned",
        "writers": [{kind: name} for kind, name in W.ASSIGNED_TO]})
    later = datetime.now(UTC) + timedelta(hours=2)  # exp's grant has lapsed
    monkeypatch.setattr(models, "utcnow", lambda: later)
    return s["server"]["user"]


def row(answer: dict) -> tuple[bool, ...]:
    return tuple(answer[a] for a in ACTIONS)


async def test_every_person_of_the_world_on_its_server(manager: Manager, monkeypatch) -> None:
    server = await build_world(manager, monkeypatch)
    # a watching instructor opens the session's documents only once joined read-only
    before = await rights(manager, server, W.WATCHER[0], W.NOTEBOOK)
    assert before["role"] == "observer" and not any(row(before)), before["reason"]
    session_id = before["session"]["id"]
    await manager.watching.join(actor(W.WATCHER[0], W.WATCHER[1]), session_id)
    ruled = {W.CELLS["locked"], W.CELLS["assigned"]}
    for user, expected in W.EXPECTED.items():
        for path in (W.NOTEBOOK, None):
            answer = await rights(manager, server, user, path)
            assert row(answer) == expected, (user, path, answer["reason"])
        cells = W.EXPECTED_CELLS.get(user)
        if cells is not None:  # protected: the ruled cells this person may not write
            mine = {W.CELLS[c] for c, ok in zip(W.CELLS, cells, strict=True) if not ok} & ruled
            answer = await rights(manager, server, user, W.NOTEBOOK)
            assert set(answer["protected_cells"]) == mine, user
    assert (await rights(manager, server, "ida", W.NOTEBOOK))["role"] == "observer"
    assert "not a member" in (await rights(manager, server, "zed", None))["reason"]


async def test_another_policy_narrows_the_answers(manager: Manager, monkeypatch) -> None:
    server = await build_world(manager, monkeypatch)
    for trait, value in W.OTHER_POLICY.items():
        setattr(manager.ctx.policy, trait, value)
    for user, expected in W.EXPECTED_OTHER.items():
        assert row(await rights(manager, server, user, W.NOTEBOOK)) == expected, user


async def _folders(manager: Manager) -> dict[str, str]:
    """alice's server: sessions on the whole server, lab1 and lab1/deep, bob in each."""
    ids = {}
    for root, role in (("", "viewer"), ("lab1", "editor"), ("lab1/deep", "manager")):
        s = await manager.sessions.create(ALICE, {"title": root or "all", "host": "owner", "root": root,
                                                  "members": [{"user": "bob", "role": role}]})
        ids[root] = s["id"]
    return ids


@pytest.mark.parametrize("path,root,role", [
    ("lab1/deep/x.ipynb", "lab1/deep", "manager"),
    ("lab1/deep", "lab1/deep", "manager"),
    ("lab1/x.ipynb", "lab1", "editor"),
    ("/lab1/x.ipynb", "lab1", "editor"),
    ("lab10/x.ipynb", "", "viewer"),  # a folder that only starts like lab1
    ("x.ipynb", "", "viewer"),
    (None, "lab1/deep", "manager"),  # anywhere: the strongest role wins
])
async def test_the_deepest_root_holding_the_path_wins(manager, path, root, role) -> None:
    ids = await _folders(manager)
    answer = await rights(manager, "alice", "bob", path)
    assert answer["session"]["id"] == ids[root] and answer["session"]["root"] == root
    assert answer["role"] == role and answer["read"]


async def test_only_sessions_on_the_asking_server_count(manager: Manager) -> None:
    ids = await _folders(manager)
    await manager.sessions.create(CAROL, {"title": "carol's", "host": "owner", "root": "mine",
                                          "members": [{"user": "bob", "role": "manager"}]})
    answer = await rights(manager, "alice", "bob", "mine/a.ipynb")
    assert answer["session"]["id"] == ids[""] and answer["role"] == "viewer"
    await manager.sessions.create(DAVE, {"title": "dave's", "host": "owner", "root": "lab1",
                                         "members": [{"user": "bob", "role": "editor"}]})
    outside = await rights(manager, "dave", "bob", "x.ipynb")
    assert outside["session"] is None and not any(row(outside))
    assert outside["reason"] == "no session on this server holds 'x.ipynb'"
    nothing = await rights(manager, "dave", "carol", None)
    assert nothing["session"] is None and not any(row(nothing)) and nothing["protected_cells"] == []
    await manager.sessions.end(ALICE, ids["lab1/deep"])  # ended sessions hold nothing
    assert (await rights(manager, "alice", "bob", "lab1/deep/x.ipynb"))["session"]["root"] == "lab1"


async def test_cell_rules_name_notebooks_inside_the_session_folder(manager: Manager) -> None:
    ids = await _folders(manager)
    await manager.cells.put(ALICE, ids["lab1"], {"path": "nb.ipynb", "cell_id": "c1", "rule": "locked"})
    assert (await rights(manager, "alice", "bob", "lab1/nb.ipynb"))["protected_cells"] == ["c1"]
    assert (await rights(manager, "alice", "bob", "nb.ipynb"))["protected_cells"] == []
    # the server's own user owns every session on it: locked cells are theirs to change
    own = await rights(manager, "alice", "alice", "lab1/nb.ipynb")
    assert row(own) == (True,) * 5 and own["protected_cells"] == [] and own["role"] == "owner"
    assert row(await rights(manager, "alice", "alice", "elsewhere/x.ipynb")) == (True,) * 5


async def test_terminals_stay_closed_to_members_on_an_owners_server(manager: Manager) -> None:
    await _folders(manager)
    manager.ctx.policy.collaborators_may_open_terminals = True
    answer = await rights(manager, "alice", "bob", "lab1/x.ipynb")
    assert answer["write"] and not answer["terminal"]


async def test_identity_policy_and_unknown_people(manager: Manager) -> None:
    await _folders(manager)
    manager.ctx.policy.expose_identity_to_kernels = True
    answer = await rights(manager, "alice", "bob", None)
    assert answer["user"] == await manager.people.identity("bob")
    assert answer["user"]["initials"] == "B" and answer["expose_identity"] is True
    assert answer["cache_seconds"] == manager.ctx.hosting.rights_cache_seconds
    ghost = await rights(manager, "alice", "nobody", None)
    assert ghost["user"]["id"] is None and not any(row(ghost)) and "no hub user" in ghost["reason"]
    # someone the service never saw gets a persistent id on first sight
    fresh = await rights(manager, "alice", "dave", "x.ipynb")
    assert fresh["user"]["id"] and not fresh["read"]


async def test_a_rights_answer_takes_few_queries(manager: Manager) -> None:
    ids = await _folders(manager)
    await manager.teams.create(ALICE, {"name": "bees", "members": ["bob"]})
    await manager.members.put(ALICE, ids["lab1"], "team", "bees", {"role": "runner"})
    for cell in ("c1", "c2", "c3"):
        await manager.cells.put(ALICE, ids["lab1"], {"path": "nb.ipynb", "cell_id": cell, "rule": "assigned",
                                                     "writers": [{"team": "bees"}, {"user": "carol"}]})
    await rights(manager, "alice", "bob", "lab1/nb.ipynb")  # warm: bob is known
    statements: list[str] = []
    engine = manager.ctx.db.engine
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        answer = await rights(manager, "alice", "bob", "lab1/nb.ipynb")
        anywhere = len(statements)
        await rights(manager, "alice", "bob", None)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert answer["protected_cells"] == [] and answer["role"] == "editor"
    assert anywhere <= 8, statements
    assert len(statements) - anywhere <= 5, statements[anywhere:]
