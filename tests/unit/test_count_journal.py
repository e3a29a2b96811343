"""Attribution kept with the updates (UpdateLog.count / take_counts / confirm_counts):
a count is committed with the update it counts, survives the process, and is sent
under one batch id until the service has it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from hub_rtc.singleuser import updatelog
from hub_rtc.singleuser.tally import Tally
from hub_rtc.singleuser.updatelog import UpdateLog

PATH = ".notebook:abc.y"
KEY = ("s1", "ed", "edit", "nb.ipynb", "c1", "2026-12-04T10:00:00Z")


def on_disk(db: str, sql: str) -> list[tuple]:
    other = sqlite3.connect(db)  # another process's view: only what was committed
    try:
        return other.execute(sql).fetchall()
    finally:
        other.close()


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "ystore.db")


async def test_a_count_is_committed_with_the_update_it_counts(db: str) -> None:
    log = UpdateLog(db)
    try:
        log.count(KEY)  # the connection counts first, then the room appends the update
        await log.append(PATH, [b"\x00\x00"])
        assert log.commits == 1
        assert on_disk(db, "SELECT count(*) FROM yupdates") == [(1,)]
        assert on_disk(db, "SELECT kind, cell, count FROM hub_rtc_counts") == [("edit", "c1", 1)]
    finally:
        log.close()


async def test_counts_with_no_update_are_committed_on_their_own_soon(
        db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(updatelog, "COUNT_SECONDS", 0.05)
    log = UpdateLog(db)
    try:
        log.count(("s1", "vi", "refused", "nb.ipynb", "", KEY[5]), 2)
        await asyncio.sleep(0.01)
        # not yet: waiting a moment for an update to ride with (the log has not even
        # made its tables)
        assert on_disk(db, "SELECT count(*) FROM sqlite_master WHERE name='hub_rtc_counts'") == [(0,)]
        await asyncio.sleep(0.2)
        await log.flushed()
        assert on_disk(db, "SELECT user, count FROM hub_rtc_counts") == [("vi", 2)]
        assert on_disk(db, "SELECT count(*) FROM yupdates") == [(0,)]
    finally:
        log.close()


async def test_a_batch_keeps_its_id_until_confirmed_and_counts_after_it_wait(db: str) -> None:
    log = UpdateLog(db)
    try:
        for _ in range(3):
            log.count(KEY)
            await log.append(PATH, [b"\x00\x00"])
        first = await log.take_counts()
        assert first is not None
        assert first.events == {"s1": [{"ts": KEY[5], "user": "ed", "kind": "edit",
                                        "path": "nb.ipynb", "cell_id": "c1", "count": 3}]}
        log.count(KEY)  # counted while the batch is on its way
        await log.append(PATH, [b"\x00\x00"])
        again = await log.take_counts()  # not confirmed: the same batch, nothing added
        assert again == first
        await log.confirm_counts(first.id)
        second = await log.take_counts()
        assert second is not None and second.id != first.id
        assert second.events["s1"][0]["count"] == 1
        await log.confirm_counts(second.id)
        assert await log.take_counts() is None
    finally:
        log.close()


async def test_counts_and_the_batch_in_flight_outlive_the_process(db: str) -> None:
    log = UpdateLog(db)
    log.count(KEY, 5)
    await log.append(PATH, [b"\x00\x00"])
    sent = await log.take_counts()
    log.close()  # (a kill after the commit leaves the same on disk)
    again = UpdateLog(db)
    try:
        after = await again.take_counts()
        assert after == sent  # the same id again: the service counts it once
    finally:
        again.close()


async def test_a_tally_with_a_journal_keeps_nothing_in_memory(db: str) -> None:
    log = UpdateLog(db)
    try:
        tally = Tally(journal=log)
        tally.add("s1", "ed", "edit", "nb.ipynb", "c1")
        assert len(tally) == 0 and tally.drain() == {}
        await log.append(PATH, [b"\x00\x00"])
        batch = await log.take_counts()
        assert batch is not None and batch.events["s1"][0]["count"] == 1
    finally:
        log.close()
