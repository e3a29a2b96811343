"""Shorter garbage-collection pauses for a shared server's event loop.

A full (generation 2) collection walks every tracked object of the process, and
the server's event loop stands still meanwhile.  Measured with 300 viewers in a
lecture (``benchmarks/bench_lecture.py``): the single-user server holds about
270,000 objects once it has started (modules, classes, functions, traitlets),
a full collection of it took 130-210 ms here, and it came every few seconds,
so every edit sent meanwhile reached all 300 viewers that much later.

Objects that exist once the server has started are its code and configuration:
they live as long as the process.  :func:`freeze_startup` collects once and moves
them to the collector's permanent generation (``gc.freeze``), so later
collections walk only what was made since (rooms, connections, documents).
"""

from __future__ import annotations

import gc
import logging
import time

__all__ = ["freeze_startup"]


def freeze_startup(log: logging.Logger) -> int:
    """Collect, then freeze every object left; how many were frozen."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("hub_rtc: %d start-up objects moved out of the garbage collector's way "
             "(%.0f ms)", frozen, (time.perf_counter() - started) * 1000)
    return frozen
