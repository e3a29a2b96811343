"""Freezing the start-up objects: what is frozen is out of every later collection."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest

from hub_rtc.singleuser.gcpause import freeze_startup


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test run collects as usual


def test_what_exists_at_start_up_is_frozen_and_later_objects_are_not(unfrozen: None) -> None:
    kept = [[n] for n in range(1000)]  # (lists are always tracked; small dicts may not be)
    assert all(gc.is_tracked(o) for o in kept)
    frozen = freeze_startup(logging.getLogger("test"))
    assert frozen >= 1000 and gc.get_freeze_count() == frozen
    tracked = {id(o) for o in gc.get_objects()}
    assert not any(id(d) in tracked for d in kept)  # no longer walked by collections
    later = [[n] for n in range(10)]
    tracked = {id(o) for o in gc.get_objects()}
    assert all(id(d) in tracked for d in later)


def test_garbage_made_before_is_collected_first(unfrozen: None) -> None:
    class Cycle:
        pass

    a, b = Cycle(), Cycle()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    del a, b
    before = sum(isinstance(o, Cycle) for o in gc.get_objects())
    freeze_startup(logging.getLogger("test"))
    gc.unfreeze()
    after = sum(isinstance(o, Cycle) for o in gc.get_objects())
    assert before == 2 and after == 0  # collected, not frozen for the life of the process
