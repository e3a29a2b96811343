"""Hosting and shares with two service replicas on one PostgreSQL database (issue 15).

Two :class:`Manager` s, each with its own engine, stand for two service processes; they
share one in-memory hub whose calls take a few milliseconds, as a real hub's do, so that
what the replicas do at once interleaves.  The attacks: both set up one session's
collaboration account at once (as both do after a restart), and both change one
server's members at once.  What must hold: one account, and the hub's shares and the
service's record of them both equal to what the grants want.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from hub_rtc.manager import HostingSettings, Manager, StaticDirectory
from hub_rtc.manager.ports import ServerKey, ServerState
from hub_rtc.policy import RTCPolicy
from hub_rtc.records import Database, HubShare, models
from tests.conftest import _postgres_url
from tests.unit.test_hosting import ALICE, announce

pytestmark = pytest.mark.postgres

PEOPLE = [f"student{i}" for i in range(8)]


@dataclass
class SlowHub(StaticDirectory):
    """The in-memory hub, answering after 0–8 ms as a real one does over HTTP."""

    async def _wait(self) -> None:
        await asyncio.sleep(random.uniform(0, 0.008))

    async def create_user(self, name: str) -> None:
        await self._wait()
        await super().create_user(name)

    async def start_server(self, user: str, name: str, timeout: float) -> ServerState:
        await self._wait()
        return await super().start_server(user, name, timeout)

    async def share(self, server: ServerKey, kind: str, principal: str) -> None:
        await self._wait()
        await super().share(server, kind, principal)

    async def unshare(self, server: ServerKey, kind: str, principal: str) -> None:
        await self._wait()
        await super().unshare(server, kind, principal)


@pytest.fixture
def hub() -> SlowHub:
    d = SlowHub()
    for name in ("alice", *PEOPLE):
        d.add(name, "cs101")
    return d


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _postgres_url()


@pytest.fixture
async def replicas(pg_url: str, hub: SlowHub) -> AsyncIterator[tuple[Manager, Manager]]:
    made = []
    for _ in range(2):
        db = Database(pg_url)
        db.check()
        made.append(Manager(db, hub, RTCPolicy(max_members_per_session=50),
                            hosting=HostingSettings(manage_hub_access=True, announce_timeout=5)))
    yield made[0], made[1]
    for m in made:
        await m.hosting.close()
        m.ctx.db.dispose()


def recorded(manager: Manager, server: ServerKey) -> tuple[set[tuple[str, str]], int]:
    """The shares the service recorded for ``server`` (as pairs), and its rows."""
    def read(db):
        rows = db.execute(select(HubShare.kind, HubShare.principal, func.count())
                          .where(HubShare.server_user == server[0],
                                 HubShare.server_name == server[1])
                          .group_by(HubShare.kind, HubShare.principal)).all()
        return {(k, p) for k, p, _ in rows}, sum(n for *_, n in rows)
    return manager.ctx.db.transaction(read)


async def test_both_replicas_setting_up_one_account_make_one_account_and_one_set_of_shares(
        replicas: tuple[Manager, Manager], hub: SlowHub) -> None:
    a, b = replicas
    members = [{"user": name, "role": "editor"} for name in PEOPLE[:3]]
    for _ in range(5):
        s = await a.sessions.create(ALICE, {"title": "Group", "members": members})
        account = s["server"]["user"]
        b.hosting.launch(s["id"])  # as b does for every unfinished account after a restart
        while ("start_server", account, "") not in hub.calls:
            await asyncio.sleep(0.005)
        await asyncio.gather(announce(a, account), announce(b, account))
        await asyncio.gather(a.hosting.settle(), b.hosting.settle())
        assert [u for u in hub.users if u.startswith("rtc-")].count(account) == 1
        want = {("user", "alice")} | {("user", m["user"]) for m in members}
        assert hub.shared_with(account) == want
        assert recorded(a, (account, "")) == (want, len(want))  # one row each, none lost
        got = await b.sessions.get(ALICE, s["id"])
        assert got["hosting"]["state"] == "ready", got["hosting"]


async def test_members_changed_through_both_replicas_at_once_are_shared_as_granted(
        replicas: tuple[Manager, Manager], hub: SlowHub) -> None:
    a, b = replicas
    hub.run("alice")
    await announce(a, "alice")
    s = await a.sessions.create(ALICE, {"title": "Lab", "host": "owner"})
    sid, members = s["id"], set()
    rng = random.Random(15)
    for _ in range(40):
        changes = []
        for replica, name in zip((a, b), rng.sample(PEOPLE, 2), strict=True):  # two people
            if name in members:
                members.discard(name)
                changes.append(replica.members.delete(ALICE, sid, "user", name))
            else:
                members.add(name)
                changes.append(replica.members.put(ALICE, sid, "user", name, {"role": "editor"}))
        results = await asyncio.gather(*changes, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors
        want = {("user", name) for name in members}
        assert hub.shared_with("alice") == want
        assert recorded(b, ("alice", "")) == (want, len(want))


async def test_both_replicas_sweeping_at_once_withdraw_what_expired_once_and_keep_the_rest(
        replicas: tuple[Manager, Manager], hub: SlowHub, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = replicas
    hub.run("alice")
    await announce(a, "alice")
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    members = [{"user": name, "role": "editor", "expires_at": soon} for name in PEOPLE[:4]]
    members += [{"user": name, "role": "viewer"} for name in PEOPLE[4:6]]
    s = await a.sessions.create(ALICE, {"title": "Lab", "host": "owner", "members": members})
    later = datetime.now(UTC) + timedelta(hours=2)  # the server still runs the announced run
    monkeypatch.setattr(models, "utcnow", lambda: later)
    await asyncio.gather(a.sweeper.sweep(), b.sweeper.sweep())
    want = {("user", name) for name in PEOPLE[4:6]}
    assert hub.shared_with("alice") == want
    assert recorded(a, ("alice", "")) == (want, len(want))
    # and a second pass of both changes nothing
    calls = len(hub.calls)
    await asyncio.gather(a.sweeper.sweep(), b.sweeper.sweep())
    assert hub.shared_with("alice") == want and len(hub.calls) == calls
    assert (await a.sessions.get(ALICE, s["id"]))["state"] == "active"
