"""Changes of rights in force before they are answered, and cell rules that protect
something: the logic, with a real database and in-memory servers (no processes).

End to end on a real hub: tests/integration/test_rights_in_force.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field

import pytest

from hub_rtc.decision.access import Access
from hub_rtc.manager import HostingSettings, Invalidation, Manager, StaticDirectory
from hub_rtc.manager.errors import Invalid
from hub_rtc.manager.notify import Enforcement, Outcome, PendingServer, Unconfirmed
from hub_rtc.manager.ports import Found, NotebookProbe, ServerKey
from hub_rtc.manager.sessions.cells import applied, notebook_path, repeated_root
from hub_rtc.policy import RTCPolicy
from hub_rtc.records import Database
from hub_rtc.singleuser.cache import AccessCache
from hub_rtc.singleuser.gate import Gate
from tests.unit.test_hosting import ALICE, announce, owner_session

ALICE_SERVER: ServerKey = ("alice", "")
WAIT = 0.3


# -- the path logic ---------------------------------------------------------------------


@pytest.mark.parametrize(("root", "path", "meant"), [
    ("lab1", "lab1/nb.ipynb", "nb.ipynb"),
    ("lab1", "lab1/sub/nb.ipynb", "sub/nb.ipynb"),
    ("course/lab1", "course/lab1/nb.ipynb", "nb.ipynb"),
    ("course/lab1", "lab1/nb.ipynb", "nb.ipynb"),
    ("lab1", "nb.ipynb", None),
    ("lab1", "lab10/nb.ipynb", None),
    ("", "lab1/nb.ipynb", None),
])
def test_a_path_repeating_the_session_folder_is_recognised(root: str, path: str,
                                                           meant: str | None) -> None:
    assert repeated_root(root, path) == meant


@pytest.mark.parametrize(("raw", "clean"), [("nb.ipynb", "nb.ipynb"), ("/a/./b.ipynb/", "a/b.ipynb"),
                                            ("sub//x.ipynb", "sub/x.ipynb")])
def test_notebook_paths_are_normalised(raw: str, clean: str) -> None:
    assert notebook_path(raw) == clean


@pytest.mark.parametrize(("raw", "words"), [
    ("notes.txt", "not a notebook"), ("sub/.ipynb", "not a notebook"), ("dir", "not a notebook"),
    (".", "name the notebook"), ("", "name the notebook"), ("../x.ipynb", "outside"),
])
def test_paths_that_name_no_notebook_are_refused(raw: str, words: str) -> None:
    with pytest.raises(Invalid, match=words):
        notebook_path(raw)


def test_a_rule_on_a_cell_of_an_existing_notebook_applies() -> None:
    assert applied("lab1", "nb.ipynb", "c1", Found("notebook", frozenset({"c1"}))) == (True, "")


def test_a_rule_ahead_of_its_cell_or_notebook_is_kept_and_says_so() -> None:
    ok, why = applied("lab1", "nb.ipynb", "later", Found("notebook", frozenset({"c1"})))
    assert ok is False and "no cell 'later' in 'nb.ipynb' yet" in why
    ok, why = applied("lab1", "week2.ipynb", "c1", Found("missing"))
    assert ok is False and "does not exist yet in the session folder 'lab1'" in why
    ok, why = applied("", "week2.ipynb", "c1", Found("missing"))
    assert ok is False and "server's top folder" in why


def test_a_missing_path_repeating_the_session_folder_is_refused() -> None:
    with pytest.raises(Invalid, match=r"relative to the session folder 'lab1': did you mean 'nb.ipynb'\?"):
        applied("lab1", "lab1/nb.ipynb", "c1", Found("missing"))
    # it is a notebook of the session after all (lab1/lab1/nb.ipynb exists): kept
    assert applied("lab1", "lab1/nb.ipynb", "c1", Found("notebook", frozenset({"c1"})))[0] is True


def test_an_unreachable_server_means_not_verified_never_refused() -> None:
    ok, why = applied("lab1", "lab1/nb.ipynb", "c1", Found("unknown", why="it is stopped"))
    assert ok is None and why.startswith("not verified: it is stopped")
    assert "did you mean 'nb.ipynb'?" in why


# -- what is still unconfirmed ---------------------------------------------------------


def test_unconfirmed_pushes_clear_by_ticket_or_when_the_server_is_ready() -> None:
    book = Unconfirmed()
    first = book.note("s1", ALICE_SERVER, "late")
    second = book.note("s1", ALICE_SERVER, "later")
    book.note("s2", ("bob", ""), "not connected")
    assert book.of("s1") == Enforcement((PendingServer(ALICE_SERVER, "later"),))
    book.settle("s1", ALICE_SERVER, second)
    assert book.of("s1").pending == (PendingServer(ALICE_SERVER, "late"),)
    book.settle("s1", ALICE_SERVER, first)
    assert book.of("s1").enforced and book.of("s1").json() == {"enforced": True, "pending_servers": []}
    book.server_ready(("bob", ""))
    assert book.of("s2").enforced
    for _ in range(100):  # what only a reconnection settles is kept once, however often
        book.note("s3", ALICE_SERVER, "not connected", until_ready=True)
    assert book._open["s3"][ALICE_SERVER] == {Unconfirmed.UNTIL_READY: "not connected"}


def test_one_entry_per_server_however_many_sessions_a_change_touched() -> None:
    e = Enforcement.of([PendingServer(("b", ""), "x"), PendingServer(("a", ""), "y"),
                        PendingServer(("b", ""), "z")])
    assert [p.server for p in e.pending] == [("a", ""), ("b", "")]
    assert e.json()["pending_servers"][0] == {"user": "a", "name": "", "why": "y"}


# -- the service waits for the servers --------------------------------------------------------


@dataclass
class Servers:
    """In-memory events channels: each push's answer is decided by the test."""

    connected: set[ServerKey] = field(default_factory=set)
    answer: Outcome | None = Outcome(True)  # None: never answers by itself
    pushed: list[tuple[Invalidation, asyncio.Future[Outcome]]] = field(default_factory=list)

    def invalidate(self, change: Invalidation) -> Awaitable[Outcome] | None:
        if change.server not in self.connected:
            return None
        answered: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        if self.answer is not None:
            answered.set_result(self.answer)
        self.pushed.append((change, answered))
        return answered


@pytest.fixture
def servers() -> Servers:
    return Servers()


@pytest.fixture
async def waiting(db_url: str, directory: StaticDirectory, policy: RTCPolicy,
                  servers: Servers) -> AsyncIterator[Manager]:
    db = Database(db_url)
    db.check()
    settings = HostingSettings(manage_hub_access=True, push_ack_seconds=WAIT)
    manager = Manager(db, directory, policy, hosting=settings, notifier=servers)
    yield manager
    await manager.hosting.close()
    db.dispose()


async def bobs_session(manager: Manager, directory: StaticDirectory) -> str:
    s = await owner_session(manager, directory, members=[{"user": "bob", "role": "editor"}])
    return str(s["id"])


async def test_a_confirmed_change_is_answered_in_force(waiting, directory, servers) -> None:
    sid = await bobs_session(waiting, directory)
    servers.connected.add(ALICE_SERVER)
    member, _ = await waiting.members.put(ALICE, sid, "user", "bob", {"role": "viewer"})
    assert (member["enforced"], member["pending_servers"]) == (True, [])
    assert [(c.users, c.reason) for c, _ in servers.pushed] == [(("bob",), "role changed")]
    assert (await waiting.members.delete(ALICE, sid, "user", "bob")).enforced


async def test_a_server_that_does_not_confirm_in_time_is_named_until_it_does(
        waiting, directory, servers) -> None:
    sid = await bobs_session(waiting, directory)
    servers.connected.add(ALICE_SERVER)
    servers.answer = None
    started = asyncio.get_running_loop().time()
    rule, _ = await waiting.cells.put(ALICE, sid, {"path": "nb.ipynb", "cell_id": "c1", "rule": "locked"})
    assert WAIT <= asyncio.get_running_loop().time() - started < WAIT + 1
    assert rule["enforced"] is False
    assert rule["pending_servers"] == [{"user": "alice", "name": "", "why":
                                        "alice's server did not confirm within 0.3 s that the"
                                        " change is in force"}]
    assert not waiting.hosting.unconfirmed.of(sid).enforced
    _, answered = servers.pushed[-1]
    answered.set_result(Outcome(True))  # the late acknowledgement
    await asyncio.sleep(0)
    assert waiting.hosting.unconfirmed.of(sid).enforced
    # a push whose channel closes after the answer stays pending until the server is ready
    await waiting.cells.delete(ALICE, sid, "nb.ipynb", "c1")
    _, answered = servers.pushed[-1]
    answered.set_result(Outcome(False, "its events channel closed"))
    await asyncio.sleep(0)
    assert [p.why for p in waiting.hosting.unconfirmed.of(sid).pending] == [
        "alice's server: its events channel closed"]
    waiting.hosting.server_ready(ALICE_SERVER)
    assert waiting.hosting.unconfirmed.of(sid).enforced


async def test_a_channel_that_closed_first_stays_pending_until_the_server_is_ready(
        waiting, directory, servers) -> None:
    sid = await bobs_session(waiting, directory)
    servers.connected.add(ALICE_SERVER)
    servers.answer = Outcome(False, "its events channel closed")
    enforcement = await waiting.members.delete(ALICE, sid, "user", "bob")
    assert [p.why for p in enforcement.pending] == ["alice's server: its events channel closed"]
    waiting.hosting.server_ready(ALICE_SERVER)
    assert waiting.hosting.unconfirmed.of(sid).enforced


async def test_a_server_with_no_channel_here_counts_only_if_it_may_use_older_rights(
        waiting, directory, servers) -> None:
    sid = await bobs_session(waiting, directory)  # alice's server runs, announced, no channel
    member, _ = await waiting.members.put(ALICE, sid, "user", "bob", {"role": "viewer"})
    assert member["enforced"] is False
    assert "not connected to this service's events channel" in member["pending_servers"][0]["why"]
    directory.servers.clear()  # alice stopped her server: nothing there holds older rights
    member, _ = await waiting.members.put(ALICE, sid, "user", "bob", {"role": "runner"})
    assert member["enforced"] is True
    # a server that never announced hub_rtc holds no rights of ours either
    directory.run("carol")
    assert (await waiting.hosting.push([Invalidation(("carol", ""), sid, None, "x")])).enforced


async def test_a_new_member_is_in_force_before_it_is_answered(waiting, directory, servers) -> None:
    """A new member only gains access, but a new runner makes the session's files answer
    to what a runner may change (hub_rtc.decision.file): that is in force first too."""
    sid = await bobs_session(waiting, directory)
    servers.connected.add(ALICE_SERVER)
    servers.answer = None
    member, created = await waiting.members.put(ALICE, sid, "user", "carol", {"role": "runner"})
    assert created and member["enforced"] is False
    assert [c.reason for c, _ in servers.pushed] == ["member added"]


async def test_ending_a_session_waits_for_its_server(waiting, directory, servers) -> None:
    sid = await bobs_session(waiting, directory)
    servers.connected.add(ALICE_SERVER)
    servers.answer = None
    assert not (await waiting.sessions.end(ALICE, sid)).enforced
    assert [c.reason for c, _ in servers.pushed] == ["session ended"]
    assert (await waiting.sessions.end(ALICE, sid)).enforced  # already ended: nothing to push


# -- cell rules checked against the notebook ----------------------------------------------------


def probe_of(files: dict[str, Found]) -> tuple[list[tuple[ServerKey, str, str]], NotebookProbe]:
    asked: list[tuple[ServerKey, str, str]] = []

    async def probe(server: ServerKey, path: str, as_user: str) -> Found:
        asked.append((server, path, as_user))
        return files.get(path, Found("missing"))

    return asked, probe


async def test_cell_rules_are_checked_against_the_sessions_notebook(waiting, directory) -> None:
    s = await owner_session(waiting, directory, root="lab1")
    asked, probe = probe_of({"lab1/nb.ipynb": Found("notebook", frozenset({"c1"}))})
    cells = waiting.cells
    rule, _ = await cells.put(ALICE, s["id"], {"path": "nb.ipynb", "cell_id": "c1", "rule": "locked"},
                              probe)
    assert (rule["applied"], rule["why"]) == (True, "")
    assert asked == [(ALICE_SERVER, "lab1/nb.ipynb", "alice")]  # read as the owner, below the root
    rule, _ = await cells.put(ALICE, s["id"], {"path": "nb.ipynb", "cell_id": "c9", "rule": "locked"},
                              probe)
    assert rule["applied"] is False
    with pytest.raises(Invalid, match="did you mean 'nb.ipynb'"):
        await cells.put(ALICE, s["id"], {"path": "lab1/nb.ipynb", "cell_id": "c1", "rule": "locked"},
                        probe)
    with pytest.raises(Invalid, match="not a notebook"):
        await cells.put(ALICE, s["id"], {"path": "nb.txt", "cell_id": "c1", "rule": "locked"}, probe)
    assert {(r["path"], r["cell_id"]) for r in await cells.rules(ALICE, s["id"])} == {
        ("nb.ipynb", "c1"), ("nb.ipynb", "c9")}  # nothing stored for the refused ones
    rule, _ = await cells.put(ALICE, s["id"], {"path": "nb.ipynb", "cell_id": "c1", "rule": "locked"})
    assert rule["applied"] is None and rule["why"].startswith("not verified")


async def test_a_session_whose_server_is_not_ready_is_not_asked(waiting, directory) -> None:
    s = await owner_session(waiting, directory, root="lab1")
    directory.servers.clear()
    await waiting.sweeper.sweep()  # the sweep sees alice's server stopped: the session waits
    asked, probe = probe_of({})
    rule, _ = await waiting.cells.put(ALICE, s["id"], {"path": "lab1/nb.ipynb", "cell_id": "c1",
                                                        "rule": "locked"}, probe)
    assert asked == [] and rule["applied"] is None
    assert "not ready" in rule["why"] and "did you mean 'nb.ipynb'?" in rule["why"]
    await announce(waiting, "alice")  # (keeps the fixture's server state consistent)


# -- the shared server's gate -------------------------------------------------------------------


class SlowService:
    """The service's rights endpoint, answering when the test says (an in-memory stand-in)."""

    def __init__(self) -> None:
        self.asked = 0
        self.role = "editor"
        self.release = asyncio.Event()

    async def rights(self, user: str, path: str | None) -> Access:
        self.asked += 1
        role = self.role  # the answer as of the moment it was asked
        await self.release.wait()
        return Access(read=True, write=role == "editor", role=role, session_id="s1")


def gate_of(service: SlowService) -> Gate:
    return Gate(service, "owner", AccessCache(60), logging.getLogger("test"))  # type: ignore[arg-type]


async def test_an_answer_asked_for_before_a_push_is_asked_for_again() -> None:
    service = SlowService()
    gate = gate_of(service)
    asking = asyncio.ensure_future(gate.access("bob", "nb.ipynb"))
    await asyncio.sleep(0)
    service.role = "viewer"  # the change commits, and its push arrives while the answer travels
    await gate.invalidate("s1", ["bob"])
    service.release.set()
    answer = await asking
    assert (answer.role, service.asked) == ("viewer", 2)
    assert (await gate.access("bob", "nb.ipynb")).role == "viewer"  # and only that is cached


async def test_invalidate_rechecks_every_affected_socket_together_and_counts_failures() -> None:
    service = SlowService()
    service.release.set()
    gate = gate_of(service)
    order: list[str] = []

    async def ok() -> None:
        order.append("start")
        await asyncio.sleep(0.05)
        order.append("end")

    async def broken() -> None:
        raise RuntimeError("socket gone wrong")

    gate.watch("bob", "s1", ok)
    gate.watch("bob", "s1", ok)
    gate.watch("bob", "s1", broken)
    gate.watch("carol", "s1", ok)  # not named: untouched
    gate.watch("bob", "s2", ok)  # another session: untouched
    done = await gate.invalidate("s1", ["bob"])
    assert (done.sockets, done.failed) == (3, 1)
    assert order == ["start", "start", "end", "end"]  # concurrently, all finished before it returns
    assert gate.epoch == 1
