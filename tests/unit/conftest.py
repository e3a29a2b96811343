"""Unit fixtures: a real database and an in-memory hub directory, no servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from hub_rtc.manager import Actor, HostingSettings, Invalidation, Manager, StaticDirectory
from hub_rtc.manager.actor import SCOPE_ADMIN, SCOPE_SESSIONS
from hub_rtc.policy import RTCPolicy
from hub_rtc.records import Database


@pytest.fixture
def directory() -> StaticDirectory:
    d = StaticDirectory()
    for name in ("alice", "bob", "carol", "dave"):
        d.add(name, "cs101")
    d.add("ida", "cs101-staff")
    d.groups.add("empty-group")
    return d


@pytest.fixture
def policy() -> RTCPolicy:
    return RTCPolicy(instructor_groups={"cs101-staff": ["cs101"]})


@pytest.fixture
def manager(db_url: str, directory: StaticDirectory, policy: RTCPolicy) -> Iterator[Manager]:
    db = Database(db_url)
    db.check()
    yield Manager(db, directory, policy)
    db.dispose()


def actor(name: str, *groups: str, admin: bool = False) -> Actor:
    scopes = {SCOPE_SESSIONS} | ({SCOPE_ADMIN} if admin else set())
    return Actor(name, frozenset(groups), frozenset(scopes))


class Recorder:
    """A notifier that remembers what servers would have been told."""

    def __init__(self) -> None:
        self.seen: list[Invalidation] = []

    def invalidate(self, change: Invalidation) -> None:
        self.seen.append(change)

    def take(self) -> list[tuple[str, tuple[str, ...] | None, str]]:
        out = [(c.session_id, c.users, c.reason) for c in self.seen]
        self.seen.clear()
        return out


@pytest.fixture
def told() -> Recorder:
    return Recorder()


@pytest.fixture
async def hosted(db_url: str, directory: StaticDirectory, policy: RTCPolicy,
                 told: Recorder) -> AsyncIterator[Manager]:
    """A manager that hosts sessions: it shares servers and sets up accounts."""
    db = Database(db_url)
    db.check()
    settings = HostingSettings(manage_hub_access=True, announce_timeout=0.6, announce_grace=30,
                               rights_cache_seconds=7)
    manager = Manager(db, directory, policy, hosting=settings, notifier=told)
    yield manager
    await manager.hosting.close()
    db.dispose()
