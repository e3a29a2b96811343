"""The shared server's :class:`Gate`: its cache of the service's answers, the
invalidation that drops them and re-checks live sockets, the epoch rule, and
failing closed.

The service is another process; what the gate needs of it is one call,
``rights(user, path)``.  :class:`Service` below stands in for the
:class:`~hub_rtc.singleuser.service.ServiceClient` with that call answering
from a dict (the real client's HTTP is tested against a real service in the
integration tests): enough for the gate's own logic, which is all here.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from hub_rtc.decision.access import Access
from hub_rtc.singleuser import gate as gate_module
from hub_rtc.singleuser.cache import AccessCache
from hub_rtc.singleuser.gate import Gate, Recheck, Rechecked
from hub_rtc.singleuser.service import ServiceUnavailable

EDITOR = Access(read=True, write=True, role="editor", session_id="s1")
VIEWER = Access(read=True, role="viewer", session_id="s1")
OTHER = Access(read=True, write=True, role="editor", session_id="s2")


class Service:
    """``ServiceClient.rights`` answering from :attr:`answers`; counts what it was asked.

    ``hold`` makes every answer wait until it is set (an answer on its way);
    ``down`` makes it fail as an unreachable service does.
    """

    def __init__(self, answers: dict[tuple[str, str | None], Access]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str | None]] = []
        self.hold: asyncio.Event | None = None
        self.down = False

    async def rights(self, user: str, path: str | None) -> Access:
        self.asked.append((user, path))
        answer = self.answers.get((user, path), Access.none("not a member"))  # as of asking
        if self.hold is not None:
            await self.hold.wait()
        if self.down:
            raise ServiceUnavailable("POST /servers/rights: 503")
        return answer


def gate_of(service: Service | None, ttl: float = 60) -> Gate:
    return Gate(service, "owner", AccessCache(ttl), logging.getLogger("test"))  # type: ignore[arg-type]


def service() -> Service:
    return Service({("bob", "lab1/nb.ipynb"): EDITOR, ("bob", "lab2/nb.ipynb"): OTHER,
                    ("carol", "lab1/nb.ipynb"): VIEWER, ("bob", None): EDITOR})


# -- caching ---------------------------------------------------------------------------


async def test_an_answer_is_asked_for_once_and_then_taken_from_the_cache() -> None:
    svc = service()
    gate = gate_of(svc)
    assert await gate.access("bob", "lab1/nb.ipynb") == EDITOR
    assert await gate.access("bob", "lab1/nb.ipynb") == EDITOR
    assert await gate.access("bob", "lab2/nb.ipynb") == OTHER  # another path: asked
    assert svc.asked == [("bob", "lab1/nb.ipynb"), ("bob", "lab2/nb.ipynb")]


async def test_fresh_asks_again_and_keeps_the_new_answer() -> None:
    svc = service()
    gate = gate_of(svc)
    await gate.access("bob", "lab1/nb.ipynb")
    svc.answers[("bob", "lab1/nb.ipynb")] = VIEWER
    assert await gate.access("bob", "lab1/nb.ipynb") == EDITOR  # cached
    assert await gate.access("bob", "lab1/nb.ipynb", fresh=True) == VIEWER
    assert await gate.access("bob", "lab1/nb.ipynb") == VIEWER
    assert len(svc.asked) == 2


async def test_a_no_is_cached_too_but_briefly() -> None:
    svc = service()
    now = [0.0]
    gate = Gate(svc, "owner", AccessCache(60, clock=lambda: now[0]),  # type: ignore[arg-type]
                logging.getLogger("test"))
    assert not (await gate.access("dave", "lab1/nb.ipynb")).read
    assert not (await gate.access("dave", "lab1/nb.ipynb")).read
    assert len(svc.asked) == 1
    now[0] = 3.0  # a new member should not wait a minute
    svc.answers[("dave", "lab1/nb.ipynb")] = VIEWER
    assert (await gate.access("dave", "lab1/nb.ipynb")).read


async def test_sockets_asking_together_share_one_question() -> None:
    svc = service()
    svc.hold = asyncio.Event()
    gate = gate_of(svc)
    asking = [asyncio.ensure_future(gate.access("bob", "lab1/nb.ipynb")) for _ in range(3)]
    await asyncio.sleep(0)
    svc.hold.set()
    assert await asyncio.gather(*asking) == [EDITOR] * 3
    assert svc.asked == [("bob", "lab1/nb.ipynb")]


async def test_identity_is_the_answer_for_anywhere_on_the_server() -> None:
    gate = gate_of(service())
    assert await gate.identity_of("bob") == EDITOR
    assert gate.owner == "owner"


# -- invalidation ----------------------------------------------------------------------


async def cache_everyone(gate: Gate) -> None:
    for user, path in (("bob", "lab1/nb.ipynb"), ("bob", "lab2/nb.ipynb"), ("carol", "lab1/nb.ipynb")):
        await gate.access(user, path)


@pytest.mark.parametrize(("session", "users", "asked_again"), [
    ("s1", ["bob"], [("bob", "lab1/nb.ipynb")]),
    ("s1", None, [("bob", "lab1/nb.ipynb"), ("carol", "lab1/nb.ipynb")]),
    (None, ["bob"], [("bob", "lab1/nb.ipynb"), ("bob", "lab2/nb.ipynb")]),
    (None, None, [("bob", "lab1/nb.ipynb"), ("bob", "lab2/nb.ipynb"), ("carol", "lab1/nb.ipynb")]),
])
async def test_invalidation_drops_the_answers_of_the_named_users_and_session(
        session: str | None, users: list[str] | None, asked_again: list[tuple[str, str]]) -> None:
    svc = service()
    gate = gate_of(svc)
    await cache_everyone(gate)
    await gate.invalidate(session, users)
    svc.asked.clear()
    await cache_everyone(gate)
    assert svc.asked == asked_again


async def test_invalidation_rechecks_the_affected_live_sockets() -> None:
    gate = gate_of(service())
    rechecked: list[str] = []

    def socket(name: str) -> Recheck:
        async def recheck() -> None:
            rechecked.append(name)
        return recheck

    gate.watch("bob", "s1", socket("bob in s1"))
    gate.watch("bob", None, socket("bob in the global room"))  # in no session: any may matter
    gate.watch("bob", "s2", socket("bob in s2"))
    gate.watch("carol", "s1", socket("carol in s1"))
    gone = gate.watch("bob", "s1", socket("bob, closed"))
    gate.unwatch(gone)
    assert await gate.invalidate("s1", ["bob"]) == Rechecked(2, 0)
    assert sorted(rechecked) == ["bob in s1", "bob in the global room"]
    rechecked.clear()
    assert await gate.forget_all() == Rechecked(4, 0)
    assert len(rechecked) == 4


async def test_failed_rechecks_are_counted_and_spare_no_other_socket() -> None:
    gate = gate_of(service())
    done: list[str] = []

    async def broken() -> None:
        raise RuntimeError("socket gone wrong")

    async def fine() -> None:
        done.append("fine")

    gate.watch("bob", "s1", broken)
    gate.watch("bob", "s1", fine)
    gate.watch("bob", "s1", broken)
    assert await gate.invalidate("s1", None) == Rechecked(3, 2)
    assert done == ["fine"]


async def test_invalidate_returns_only_once_every_recheck_has_finished() -> None:
    gate = gate_of(service())
    finished: list[int] = []

    def slow(n: int) -> Recheck:
        async def recheck() -> None:
            await asyncio.sleep(0.01 * n)
            finished.append(n)
        return recheck

    for n in (3, 1, 2):
        gate.watch("bob", "s1", slow(n))
    await gate.invalidate("s1", ["bob"])
    assert sorted(finished) == [1, 2, 3]


# -- the epoch rule --------------------------------------------------------------------


async def test_an_answer_fetched_across_an_invalidation_is_asked_again_not_cached() -> None:
    svc = service()
    svc.hold = asyncio.Event()
    gate = gate_of(svc)
    asking = asyncio.ensure_future(gate.access("bob", "lab1/nb.ipynb"))
    await asyncio.sleep(0)
    # the change commits and its push arrives while the first answer travels
    svc.answers[("bob", "lab1/nb.ipynb")] = VIEWER
    await gate.invalidate("s1", ["bob"])
    svc.hold.set()
    assert await asking == VIEWER
    assert len(svc.asked) == 2
    assert await gate.access("bob", "lab1/nb.ipynb") == VIEWER  # cached: the current answer
    assert len(svc.asked) == 2


async def test_while_pushes_keep_coming_the_latest_answer_is_used_and_none_cached() -> None:
    svc = service()
    gate = gate_of(svc)
    real = svc.rights

    async def pushed_meanwhile(user: str, path: str | None) -> Access:
        answer = await real(user, path)
        await gate.invalidate("s1", [user])  # a push arrives with every answer
        return answer

    svc.rights = pushed_meanwhile  # type: ignore[method-assign]
    assert await gate.access("bob", "lab1/nb.ipynb") == EDITOR
    asked = len(svc.asked)
    assert asked == gate_module._ASK_AGAIN  # asked again, and again: but not forever
    svc.rights = real  # type: ignore[method-assign]
    await gate.access("bob", "lab1/nb.ipynb")
    assert len(svc.asked) == asked + 1  # nothing of it was cached


# -- failing closed ------------------------------------------------------------------


async def test_with_no_service_only_a_no_is_given() -> None:
    answer = await gate_of(None).access("bob", "lab1/nb.ipynb")
    assert not answer.read and not answer.write
    assert "not connected to its service" in answer.reason


async def test_an_unreachable_service_gives_a_no_that_is_not_cached() -> None:
    svc = service()
    svc.down = True
    gate = gate_of(svc)
    answer = await gate.access("bob", "lab1/nb.ipynb")
    assert answer == Access.none(answer.reason) and "could not be reached" in answer.reason
    svc.down = False
    assert await gate.access("bob", "lab1/nb.ipynb") == EDITOR  # asked again, not the old no
    assert len(svc.asked) == 2
