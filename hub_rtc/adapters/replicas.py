"""Pushes across service replicas, over PostgreSQL's LISTEN/NOTIFY.

Several replicas of the service may share one PostgreSQL database.  A shared
server keeps its events channel open with one of them (whichever the balancer
chose), while a change of rights may be made through any.  :class:`Replicas`
is the domain's :class:`~hub_rtc.manager.notify.Notifier` then: it writes an
invalidation to the channels open with this replica (:class:`EventHub`) and
publishes it to the others on one NOTIFY channel; each replica that holds a
channel of that server pushes it there and publishes what the server answered.

- **Who must answer.**  Every replica listens on a connection of its own, named
  ``hub_rtc replica <id>`` once it LISTENs.  The replicas a push waits for are
  those PostgreSQL lists in ``pg_stat_activity`` under that name when the push is
  published: a replica that died, or whose connection dropped, is not waited for.
- **A replica that may have missed pushes** (its listening connection dropped, or
  a heartbeat failed) closes every events channel it holds before it listens
  again: each server reconnects, to it or another replica, and forgets every
  cached right, as it does after any reconnection.  So a push is never lost
  silently: it is confirmed, or the answer names the server as pending.
- **Ready crosses too.**  A server that says ``ready`` to one replica settles what
  every replica had pending for it.

Messages are JSON, at most :data:`MAX_PAYLOAD` bytes (PostgreSQL allows 8000):
an invalidation naming too many users is widened to everyone in the session,
which drops more cached rights than needed and never fewer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ..manager import Invalidation
from ..manager.notify import Outcome
from ..manager.ports import ServerKey
from ..records import Database
from .events import EventHub, message_of

log = logging.getLogger("hub_rtc.replicas")

CHANNEL = "hub_rtc_events"
#: how every replica's listening connection is named, with its id after
NAME_PREFIX = "hub_rtc replica "
MAX_PAYLOAD = 7900
#: how long a push waits for another replica's answer at most; the domain stops
#: waiting sooner (push_ack_seconds) and settles the push when the answer comes
ANSWER_SECONDS = 60.0
#: how often the listening connection is checked when nothing arrives
HEARTBEAT_SECONDS = 5.0
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)

_PEERS = text(
    "SELECT application_name FROM pg_stat_activity"
    " WHERE datname = current_database() AND left(application_name, :n) = :prefix")
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def conninfo(db_url: str) -> str:
    """libpq's form of a SQLAlchemy URL (``postgresql+psycopg://…`` → ``postgresql://…``)."""
    return make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class _Asked:
    """One push published to the other replicas: who must answer, and what they said.

    It is registered before the push is published, because an answer may arrive
    before the publishing transaction's thread hands back who must answer.
    """

    answers: dict[str, Outcome | None] = field(default_factory=dict)
    waiting: set[str] | None = None  # None: not known yet
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def expect(self, replicas: set[str]) -> None:
        self.waiting = replicas - set(self.answers)
        if not self.waiting:
            self.done.set()

    def answer(self, replica: str, outcome: Outcome | None) -> None:
        self.answers[replica] = outcome
        if self.waiting is not None and replica in self.waiting:
            self.waiting.discard(replica)
            if not self.waiting:
                self.done.set()

    def outcomes(self) -> list[Outcome]:
        """What the replicas that held a channel of the server said."""
        expected = set(self.answers) - (self.waiting or set())
        return [o for r, o in self.answers.items() if r in expected and o is not None]


class Replicas:
    """This replica's events channels, and every other replica's through PostgreSQL."""

    def __init__(self, local: EventHub, db: Database, *, name: str | None = None) -> None:
        self.local = local
        self.db = db
        self.id = name or uuid.uuid4().hex[:16]
        self.name = NAME_PREFIX + self.id
        #: what to do when a server said ``ready`` to another replica
        self.on_ready: Callable[[ServerKey], None] = lambda server: None
        #: set while this replica listens (tests and the start-up log wait for it)
        self.listening = asyncio.Event()
        self._asked: dict[str, _Asked] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._conninfo = conninfo(db.url)

    # -- the Notifier -----------------------------------------------------------------

    def invalidate(self, change: Invalidation) -> Awaitable[Outcome | None]:
        message = message_of(change)
        here = self.local.send(change.server, message)  # written now, before any await
        return asyncio.ensure_future(self._everywhere(change.server, message, here))

    async def _everywhere(self, server: ServerKey, message: dict[str, Any],
                          here: Awaitable[Outcome] | None) -> Outcome | None:
        asked = _Asked()
        self._asked[message["id"]] = asked
        outcomes: list[Outcome] = []
        try:
            payload = self._payload({"kind": "invalidate", "server": list(server), "message": message})
            asked.expect(await self.db.run(lambda db: self._publish(db, payload)))
        except Exception as e:  # the database went away: the others could not be told
            log.warning("replicas: could not publish a push for %s: %s", server, e)
            asked.expect(set())
            outcomes.append(Outcome(False, "the other service replicas could not be told"
                                           f" ({type(e).__name__})"))
        try:
            if here is not None:
                outcomes.append(await here)
            await asyncio.wait_for(asked.done.wait(), ANSWER_SECONDS)
        except TimeoutError:
            outcomes.append(Outcome(False, f"{len(asked.waiting or ())} other service replica(s)"
                                           " did not answer"))
        finally:
            self._asked.pop(message["id"], None)
        outcomes += asked.outcomes()
        if not outcomes:
            return None
        return next((o for o in outcomes if not o.confirmed), Outcome(True))

    def _publish(self, db: Session, payload: str) -> set[str]:
        """Publish at commit; the replicas listening now, which must answer."""
        rows = db.execute(_PEERS, {"n": len(NAME_PREFIX), "prefix": NAME_PREFIX}).scalars()
        peers = {str(name)[len(NAME_PREFIX):] for name in rows} - {self.id}
        db.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})
        return peers

    def ready(self, server: ServerKey) -> None:
        """``server`` said ``ready`` here: tell the other replicas."""
        self._spawn(self._tell({"kind": "ready", "server": list(server)}))

    async def _tell(self, body: dict[str, Any]) -> None:
        payload = self._payload(body)
        try:
            await self.db.run(lambda db: db.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload}))
        except Exception as e:
            log.warning("replicas: could not tell the others (%s): %s", body.get("kind"), e)

    def _payload(self, body: dict[str, Any]) -> str:
        body = {**body, "from": self.id}
        payload = json.dumps(body, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD and body.get("kind") == "invalidate":
            body["message"] = {**body["message"], "users": None}  # everyone: never fewer
            payload = json.dumps(body, separators=(",", ":"))
        return payload

    # -- what the others publish --------------------------------------------------------

    def receive(self, payload: str) -> None:
        """One notification from the channel (our own come back too, and are ignored)."""
        try:
            body = json.loads(payload)
            kind, sender = body["kind"], str(body["from"])
            server: ServerKey = (str(body["server"][0]), str(body["server"][1])) \
                if "server" in body else ("", "")
        except (ValueError, KeyError, TypeError, IndexError):
            log.warning("replicas: ignored a malformed notification %.200r", payload)
            return
        if sender == self.id:
            return
        if kind == "invalidate":
            self._spawn(self._push_here(sender, server, body.get("message") or {}))
        elif kind == "answer" and body.get("to") == self.id:
            asked = self._asked.get(str(body.get("id")))
            if asked is not None:
                held = body.get("held")
                asked.answer(sender, Outcome(bool(body.get("confirmed")), str(body.get("why", "")))
                             if held else None)
        elif kind == "ready":
            self.on_ready(server)

    async def _push_here(self, sender: str, server: ServerKey, message: dict[str, Any]) -> None:
        here = self.local.send(server, message)
        answer: dict[str, Any] = {"kind": "answer", "to": sender, "id": message.get("id"),
                                  "held": here is not None}
        if here is not None:
            outcome = await here
            answer.update(confirmed=outcome.confirmed, why=outcome.why)
        await self._tell(answer)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- listening ------------------------------------------------------------------------

    async def run(self) -> None:
        """Listen until cancelled, reconnecting; each time it starts, drop every channel held here."""
        attempt = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self._conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    # Pushes published while this replica did not listen did not wait
                    # for it: whatever channel it held then may have missed one.
                    dropped = self.local.drop_all("the service may have missed pushes")
                    if dropped:
                        log.warning("replicas: closed %d events channel(s) that may have missed"
                                    " pushes; their servers reconnect and forget what they"
                                    " cached", dropped)
                    # Named only now, so that whoever counts us as listening is heard.
                    await conn.execute("SELECT set_config('application_name', %s, false)",
                                       (self.name,))
                    attempt = 0
                    self.listening.set()
                    log.info("replicas: %s listening on %s", self.id, CHANNEL)
                    await self._listen(conn)
            except (psycopg.Error, OSError) as e:
                self.listening.clear()
                log.warning("replicas: the listening connection failed (%s); again in %g s",
                            e, RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                attempt += 1

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            async for note in conn.notifies(timeout=HEARTBEAT_SECONDS):
                self.receive(note.payload)
            await conn.execute("SELECT 1")  # a dead connection raises here, not never

    async def close(self, grace: float = 2.0) -> None:
        """Let answers being published finish (a cancelled one would leave its
        transaction running in a worker thread), then cancel what is left."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
