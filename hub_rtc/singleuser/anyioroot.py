"""anyio's root task, named once for the server's event loop.

jupyter_server's contents manager saves, reads and checkpoints through anyio's
``to_thread``, which asks ``find_root_task()`` each time for the task whose end
stops its worker threads.  Under tornado's loop (``run_forever``, not
``run_until_complete``) anyio never finds one, so every call scans every asyncio
task of the server, and ties its new worker thread to whatever request task is
running, whose end stops it again.  With 200 rooms autosaving, the scans were a
quarter of the event loop's time (py-spy, benchmarks/bench_load.py), and every
broadcast waited behind them.

:func:`pin` names a task of the server's own lifetime as the root: the lookup is
then one variable, and worker threads live until the server stops (and are
pruned when idle, as anyio does).  The name anyio keeps it under is private, so
where it is missing nothing is pinned and anyio works as it did.
"""

from __future__ import annotations

import asyncio
import logging


async def _until_stopped() -> None:
    await asyncio.Event().wait()


def pin(log: logging.Logger) -> asyncio.Task[None] | None:
    """Make a task that lasts until cancelled anyio's root task; it, or None."""
    try:
        from anyio._backends._asyncio import _root_task  # type: ignore[attr-defined]
    except ImportError:
        log.debug("hub_rtc: anyio's root task is not where it was; not pinned")
        return None
    root = asyncio.ensure_future(_until_stopped())
    root.set_name("hub_rtc: anyio's root task")
    _root_task.set(root)
    return root
