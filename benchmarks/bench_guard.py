"""What the CRDT guard costs per document update, against the unguarded path.

A 50-cell notebook and a stream of one-character inserts, as a typing user sends
them.  In one run, each path gets a fresh receiver per repetition:

- unguarded: ``Doc.apply_update``, what the stock room does with each update;
- ``DocumentGuard.check`` with ``Rights.full()`` (owner: attribution only);
- the same plus following the room's echo, the whole per-update cost in a room;
- ``check`` for an editor whose rights protect 5 cells (typing in free cells);
- ``check`` for a viewer: every update refused, reverted and re-encoded.

Prints medians over the repetitions, edits/s, and each path's cost as a multiple
of the unguarded path measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from jupyter_ydoc import YNotebook
from pycrdt import Array, Doc

sys.path.insert(0, str(Path(__file__).parents[1]))
from hub_rtc.guard import DocumentGuard, Rights  # noqa: E402

CELLS = 50
PROTECTED = frozenset(f"cell-{i}" for i in range(0, CELLS, CELLS // 5))  # 5 cells
CHARS_PER_CELL = 40  # the typist moves on to the next free cell after this many


def notebook() -> bytes:
    """The room doc of a 50-cell notebook with a few lines in each cell."""
    doc: Doc = Doc()
    cells: list[dict[str, object]] = [
        {"id": f"cell-{i}", "cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": f"# cell {i}\nvalue_{i} = compute({i})\nprint(value_{i})\n" * 3}
        for i in range(CELLS)
    ]
    YNotebook(doc).set({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    return doc.get_update()


def typing(initial: bytes, edits: int) -> list[bytes]:
    """``edits`` one-character updates typed into cells nobody protected."""
    doc: Doc = Doc()
    doc.apply_update(initial)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    cells = doc.get("cells", type=Array)
    free = [i for i in range(CELLS) if f"cell-{i}" not in PROTECTED]
    for n in range(edits):
        source = cells[free[(n // CHARS_PER_CELL) % len(free)]]["source"]
        source.insert(len(source), "abcdefghij"[n % 10])
    return updates


def unguarded(initial: bytes) -> Callable[[bytes], object]:
    doc: Doc = Doc()
    doc.apply_update(initial)
    return doc.apply_update


def checked(rights: Rights) -> Callable[[bytes], Callable[[bytes], object]]:
    def make(initial: bytes) -> Callable[[bytes], object]:
        guard = DocumentGuard(initial)
        return lambda update: guard.check(update, rights)

    return make


def checked_and_echoed(rights: Rights) -> Callable[[bytes], Callable[[bytes], object]]:
    def make(initial: bytes) -> Callable[[bytes], object]:
        guard = DocumentGuard(initial)

        def one(update: bytes) -> None:
            forward = guard.check(update, rights).forward
            if forward is not None:
                guard.follow(forward)  # what the room's observer sends back

        return one

    return make


def median_rate(make: Callable[[bytes], Callable[[bytes], object]], initial: bytes,
                updates: list[bytes], repeats: int) -> float:
    """Median updates per second over ``repeats`` fresh receivers."""
    rates = []
    for _ in range(repeats):
        apply = make(initial)
        start = time.perf_counter()
        for update in updates:
            apply(update)
        rates.append(len(updates) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=2000, help="one-character updates per repetition")
    parser.add_argument("--repeats", type=int, default=7, help="repetitions; medians are printed")
    args = parser.parse_args()
    initial = notebook()
    updates = typing(initial, args.edits)
    paths = [
        ("unguarded Doc.apply_update", unguarded),
        ("check, Rights.full()", checked(Rights.full())),
        ("check + echo, Rights.full()", checked_and_echoed(Rights.full())),
        ("check, editor (5 cells protected)", checked(Rights(write=True, protected=PROTECTED))),
        ("check + echo, editor (5 protected)", checked_and_echoed(Rights(write=True, protected=PROTECTED))),
        ("check, viewer (every edit refused)", checked(Rights.read_only())),
    ]
    print(f"== guard: {CELLS}-cell notebook, {len(updates)} one-character edits, "
          f"median of {args.repeats} runs")
    print(f"  {'path':<38} {'µs/edit':>9} {'edits/s':>10} {'x unguarded':>12}")
    baseline = None
    for label, make in paths:
        per_s = median_rate(make, initial, updates, args.repeats)
        baseline = baseline or per_s
        print(f"  {label:<38} {1e6 / per_s:>9.1f} {per_s:>10,.0f} {baseline / per_s:>12.1f}")


if __name__ == "__main__":
    main()
