"""Unit fixtures: a real database and an in-memory hub directory, no servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub_rtc.manager import Actor, Manager, StaticDirectory
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
