"""Pushes across service replicas (hub_rtc.adapters.replicas) on a real PostgreSQL.

Two :class:`Replicas` on one database stand for two service processes: each has
its own engine, its own listening connection and its own events channels (here
in memory, answering as each test says).  No servers, no hub.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text

from hub_rtc.adapters.events import RECONNECT, EventHub
from hub_rtc.adapters.replicas import MAX_PAYLOAD, NAME_PREFIX, Replicas, _Asked, conninfo
from hub_rtc.manager import Invalidation
from hub_rtc.manager.notify import Outcome
from hub_rtc.records import Database
from tests.conftest import _postgres_url

pytestmark = pytest.mark.postgres

SERVER = ("alice", "")
CHANGE = Invalidation(SERVER, "s1", ("bob",), "member removed")


@dataclass(eq=False)  # one channel is one object, as a websocket is
class Channel:
    """One server's events channel, in memory: answers each push with ``answer``
    (None: never, until the test says)."""

    answer: Outcome | None = Outcome(True)
    pushed: list[dict[str, Any]] = field(default_factory=list)
    futures: list[asyncio.Future[Outcome]] = field(default_factory=list)
    closed: list[tuple[int | None, str | None]] = field(default_factory=list)

    def push(self, message: dict[str, Any]) -> asyncio.Future[Outcome]:
        answered: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        if self.answer is not None:
            answered.set_result(self.answer)
        self.pushed.append(message)
        self.futures.append(answered)
        return answered

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closed.append((code, reason))


@dataclass
class Replica:
    events: EventHub
    replicas: Replicas
    task: asyncio.Task[None]
    ready: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _postgres_url()


async def start(url: str, name: str) -> Replica:
    db = Database(url)
    db.check()
    events = EventHub()
    replicas = Replicas(events, db, name=name)
    replica = Replica(events, replicas, asyncio.ensure_future(replicas.run()))
    replicas.on_ready = replica.ready.append
    await asyncio.wait_for(replicas.listening.wait(), 10)
    return replica


async def stop(replica: Replica) -> None:
    replica.task.cancel()
    await asyncio.gather(replica.task, return_exceptions=True)
    await replica.replicas.close()
    replica.replicas.db.dispose()


@pytest.fixture
async def two(pg_url: str) -> AsyncIterator[tuple[Replica, Replica]]:
    a, b = await start(pg_url, "a"), await start(pg_url, "b")
    yield a, b
    await stop(a)
    await stop(b)


async def test_a_push_through_one_replica_reaches_a_channel_on_the_other_and_is_confirmed(
        two: tuple[Replica, Replica]) -> None:
    a, b = two
    channel = Channel()
    a.events.join(SERVER, channel)
    outcome = await asyncio.wait_for(b.replicas.invalidate(CHANGE), 5)
    assert outcome == Outcome(True)
    [message] = channel.pushed
    assert (message["type"], message["session_id"], message["users"], message["reason"]) == (
        "invalidate", "s1", ["bob"], "member removed")


async def test_what_the_server_answered_the_other_replica_is_what_the_push_resolves_to(
        two: tuple[Replica, Replica]) -> None:
    a, b = two
    channel = Channel(answer=None)
    a.events.join(SERVER, channel)
    pending = asyncio.ensure_future(b.replicas.invalidate(CHANGE))
    for _ in range(100):
        if channel.futures:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert not pending.done()  # it waits for the server, not just for the other replica
    channel.futures[0].set_result(Outcome(False, "2 of its sockets could not be re-checked"))
    assert await asyncio.wait_for(pending, 5) == Outcome(
        False, "2 of its sockets could not be re-checked")


async def test_no_replica_holding_the_servers_channel_resolves_to_none(
        two: tuple[Replica, Replica]) -> None:
    a, b = two
    a.events.join(("carol", ""), Channel())  # somebody else's server
    assert await asyncio.wait_for(b.replicas.invalidate(CHANGE), 5) is None


async def test_channels_on_both_replicas_must_both_confirm(two: tuple[Replica, Replica]) -> None:
    a, b = two
    here, there = Channel(), Channel(answer=Outcome(False, "its events channel closed"))
    b.events.join(SERVER, here)
    a.events.join(SERVER, there)
    outcome = await asyncio.wait_for(b.replicas.invalidate(CHANGE), 5)
    assert outcome == Outcome(False, "its events channel closed")
    assert here.pushed and there.pushed
    assert here.pushed[0]["id"] == there.pushed[0]["id"]
    there.answer = Outcome(True)
    assert await asyncio.wait_for(b.replicas.invalidate(CHANGE), 5) == Outcome(True)


async def test_a_server_ready_at_one_replica_is_heard_by_the_others(
        two: tuple[Replica, Replica]) -> None:
    a, b = two
    a.replicas.ready(SERVER)
    for _ in range(100):
        if b.ready:
            break
        await asyncio.sleep(0.02)
    assert b.ready == [SERVER]
    assert a.ready == []  # its own is for its own domain to settle, not an echo


async def test_a_replica_that_stopped_listening_is_not_waited_for(
        two: tuple[Replica, Replica]) -> None:
    a, b = two
    a.events.join(SERVER, Channel())
    await stop(a)
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(b.replicas.invalidate(CHANGE), 5) is None
    assert asyncio.get_running_loop().time() - started < 1.0


async def test_a_replica_that_lost_its_listening_connection_drops_its_channels(
        pg_url: str, two: tuple[Replica, Replica]) -> None:
    """A push published while it was not listening did not reach it: its servers must
    reconnect and forget what they cached."""
    a, _ = two
    channel = Channel()
    a.events.join(SERVER, channel)
    db = Database(pg_url)
    try:
        ended = db.transaction(lambda s: s.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = :name"), {"name": NAME_PREFIX + "a"}).scalars().all())
    finally:
        db.dispose()
    assert ended == [True]
    for _ in range(200):
        if channel.closed:
            break
        await asyncio.sleep(0.05)
    assert channel.closed and channel.closed[0][0] == RECONNECT
    await asyncio.wait_for(a.replicas.listening.wait(), 10)


async def test_an_invalidation_too_big_to_publish_is_widened_to_everyone(
        two: tuple[Replica, Replica]) -> None:
    a, b = two
    channel = Channel()
    a.events.join(SERVER, channel)
    many = tuple(f"student-{i:05d}" for i in range(2000))
    assert len(json.dumps(many)) > MAX_PAYLOAD
    outcome = await asyncio.wait_for(
        b.replicas.invalidate(Invalidation(SERVER, "s1", many, "team membership changed")), 5)
    assert outcome == Outcome(True)
    assert channel.pushed[0]["users"] is None  # everyone in the session: never fewer


async def test_a_notification_from_a_stranger_changes_nothing(
        two: tuple[Replica, Replica]) -> None:
    a, _ = two
    for payload in ("not json", "[]", '{"kind": "ready"}', '{"kind": "ready", "from": "x",'
                    ' "server": 3}', '{"kind": "answer", "from": "x", "to": "a", "id": "nope"}'):
        a.replicas.receive(payload)
    assert a.ready == []


def test_an_answer_may_come_before_the_publisher_knows_who_must_answer() -> None:
    asked = _Asked()
    asked.answer("a", Outcome(True))
    assert not asked.done.is_set()
    asked.expect({"a", "b"})
    assert asked.waiting == {"b"} and not asked.done.is_set()
    asked.answer("b", None)  # b holds no channel of the server
    assert asked.done.is_set() and asked.outcomes() == [Outcome(True)]


def test_the_listening_connection_uses_the_services_own_url() -> None:
    assert conninfo("postgresql+psycopg://rtc:s%40cret@db:5433/rtc?sslmode=require") == (
        "postgresql://rtc:s%40cret@db:5433/rtc?sslmode=require")
