"""The batched update store: group commit, durability, and the stock format both ways."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from pycrdt import Doc, Text
from pycrdt.store import SQLiteYStore, YDocNotFound

from hub_rtc.singleuser import updatelog
from hub_rtc.singleuser.updatelog import UpdateLog, on_file

PATH = ".notebook:abc.y"


def edits(count: int) -> tuple[Doc, list[bytes]]:
    """A document typed into ``count`` times, and the update of each keystroke."""
    doc: Doc = Doc()
    doc["text"] = text = Text()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(count):
        text += f"<{i}>"
    return doc, updates


def text_of(doc: Doc) -> str:
    return str(doc.get("text", type=Text))


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "ystore.db")


async def test_updates_that_arrive_during_a_commit_share_the_next(db: str) -> None:
    log = UpdateLog(db)
    _, updates = edits(200)
    try:
        waits = [log.append(PATH, [u]) for u in updates]  # 200 appends before any commit ran
        await asyncio.gather(*waits)
        assert log.rows == 200
        assert log.commits <= 2  # the first takes one, the next takes the 199 that queued
    finally:
        log.close()


async def test_an_update_is_on_disk_once_its_append_is_done(db: str) -> None:
    log = UpdateLog(db)
    _, updates = edits(3)
    try:
        await log.append(PATH, updates)
        other = sqlite3.connect(db)  # another process's view
        count = other.execute("SELECT count(*) FROM yupdates WHERE path = ?", (PATH,)).fetchone()
        other.close()
        assert count == (3,)
    finally:
        log.close()


async def test_what_the_log_wrote_stock_reads_and_the_other_way_round(db: str) -> None:
    doc, updates = edits(30)
    store = on_file(db)(PATH)
    try:
        await store.append(updates)
        stock = SQLiteYStore(PATH)
        stock.db_path = db
        async with stock:
            back: Doc = Doc()
            await stock.apply_updates(back)
            assert text_of(back) == text_of(doc)
            more: Doc = Doc()
            more.apply_update(doc.get_update())
            more.observe(lambda event: asyncio.ensure_future(stock.write(event.update)))
            more.get("text", type=Text).insert(0, "stock wrote this ")
            await asyncio.sleep(0.3)
        again: Doc = Doc()
        assert (await store.load(again)).newest is not None
        assert text_of(again).startswith("stock wrote this <0><1>")
    finally:
        store.updates.close()


async def test_a_long_history_loads_from_its_checkpoint(db: str, monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setattr(updatelog, "CHECKPOINT_EVERY", 25)
    doc, updates = edits(60)
    log = UpdateLog(db)
    try:
        for u in updates:
            await log.append(PATH, [u])
        stored = await log.read(PATH)
        assert stored.newest is not None
        assert len(stored.updates) < 60  # the checkpoint and the updates after it
        back: Doc = Doc()
        for u in stored.updates:
            back.apply_update(u)
        assert text_of(back) == text_of(doc)
        assert len(await log.history(PATH)) == 60  # the timeline keeps every update
    finally:
        log.close()


async def test_timestamps_are_strictly_ordered_within_a_batch(db: str) -> None:
    log = UpdateLog(db)
    _, updates = edits(50)
    try:
        await log.append(PATH, updates)
        stamps = [stamp for _, stamp in await log.history(PATH)]
        assert stamps == sorted(stamps) and len(set(stamps)) == 50
    finally:
        log.close()


async def test_nothing_stored_is_said_as_such(db: str) -> None:
    store = on_file(db)(PATH)
    try:
        assert (await store.load(Doc())).newest is None
        with pytest.raises(YDocNotFound):
            await store.apply_updates(Doc())
    finally:
        store.updates.close()


async def test_a_store_of_another_version_is_not_written_into(db: str) -> None:
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE yupdates (path TEXT, yupdate BLOB, metadata BLOB, timestamp REAL)")
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    log = UpdateLog(db)
    try:
        with pytest.raises(RuntimeError, match="version 1"):
            await log.append(PATH, [b"\x00\x00"])
    finally:
        log.close()


async def test_a_save_mark_says_whether_updates_came_after_the_save(db: str) -> None:
    store = on_file(db)(PATH)
    _, updates = edits(4)
    try:
        await store.append(updates[:2])
        assert (await store.load(Doc())).ahead_of_save is None  # no save marked yet
        stamp = store.updates.stamp()  # taken before the saved content is read
        await store.append(updates[2:3])  # (arrived while the file was written)
        await store.mark_saved(stamp)
        assert (await store.load(Doc())).ahead_of_save is True
        await store.mark_saved(store.updates.stamp())
        stored = await store.load(Doc())
        assert stored.ahead_of_save is False and stored.newest is not None
        back: Doc = Doc()
        for u in stored.updates:  # the marks are empty updates: they change nothing
            back.apply_update(u)
        assert text_of(back) == "<0><1><2>"
    finally:
        store.updates.close()


async def test_stamps_stay_ahead_of_rows_written_with_a_clock_ahead(db: str) -> None:
    raw = sqlite3.connect(db)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.close()
    store = on_file(db)(PATH)
    try:
        await store.append([b"\x00\x00"])
        con = sqlite3.connect(db)
        con.execute("UPDATE yupdates SET timestamp = timestamp + 3600")
        con.commit()
        con.close()
        await store.load(Doc())
        assert store.updates.stamp() > time.time() + 3000
    finally:
        store.updates.close()
