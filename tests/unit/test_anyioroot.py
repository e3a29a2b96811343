"""anyio's root task pinned (hub_rtc.singleuser.anyioroot): found at once, not by
scanning every task, under a loop that runs forever as tornado's does."""

from __future__ import annotations

import asyncio
import logging
import threading

import anyio.to_thread
from anyio._backends import _asyncio as anyio_asyncio

from hub_rtc.singleuser import anyioroot


def run_forever_style(main: object) -> object:
    """Run ``main()`` the way tornado runs a server: a task on a loop that runs forever
    (anyio finds no run_until_complete root there)."""
    loop = asyncio.new_event_loop()
    out: list[object] = []

    async def wrapper() -> None:
        try:
            out.append(await main())  # type: ignore[operator]
        finally:
            loop.stop()

    loop.create_task(wrapper())
    loop.run_forever()
    # let the root task's done callbacks run: they stop anyio's worker threads, which
    # are not daemons and would keep the interpreter from exiting
    loop.run_until_complete(asyncio.sleep(0.1))
    loop.close()
    return out[0]


def test_without_a_pin_every_lookup_scans_and_with_one_it_does_not(monkeypatch) -> None:
    scans: list[int] = []
    real = anyio_asyncio.all_tasks
    monkeypatch.setattr(anyio_asyncio, "all_tasks", lambda: scans.append(1) or real())

    async def unpinned() -> None:
        for _ in range(3):
            await anyio.to_thread.run_sync(lambda: None)

    run_forever_style(unpinned)
    assert len(scans) >= 3  # the cost the pin removes: a scan per call

    async def pinned() -> tuple[bool, int]:
        root = anyioroot.pin(logging.getLogger("test"))
        assert root is not None
        scans.clear()
        for _ in range(3):
            await anyio.to_thread.run_sync(lambda: None)
        found = anyio_asyncio.find_root_task() is root
        root.cancel()
        await asyncio.gather(root, return_exceptions=True)  # (its end stops the workers)
        return found, len(scans)

    assert run_forever_style(pinned) == (True, 0)
    # and no worker thread outlives its root: they are not daemons (a CI run hung on one)
    for thread in threading.enumerate():
        if thread.name == "AnyIO worker thread":
            thread.join(5)
            assert not thread.is_alive()
