"""Updates from people who may not write: what reaches the mirror of them, and what
they tried to change.

A reader's items reach the mirror stripped of all content, a runner's outside the
cells (:mod:`._scan`), so there is nothing of theirs to revert there.  What a reader
tried is read on a throw-away copy of the mirror, for attribution only.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pycrdt import Doc

from ._cells import CELLS, cell_touches
from ._mirror import Mirror, Shared
from ._scan import Scan, strip, strip_outside
from .rights import Rights
from .verdict import Touch, root_part

__all__ = ["ATTRIBUTION_BYTES", "KNOWN_NAME_BYTES", "withhold"]

#: a reader's refused update is attributed to cells by replaying it on a copy of the
#: mirror while the document is smaller than this; beyond, to the document
ATTRIBUTION_BYTES = 2 * 1024 * 1024
#: a reader's map key of up to this many bytes that the document already holds keeps
#: its name in the reader's stripped update (no new bytes), so Yjs can order the
#: reader's entry against concurrent ones everywhere as in the reader's own replica
KNOWN_NAME_BYTES = 256


def withhold(update: bytes, scanned: Scan, rights: Rights, mirror: Mirror) -> tuple[bytes, list[Touch]]:
    """What of a non-writer's ``update`` may reach the mirror, and (a reader's) what
    it would have changed."""
    if not rights.run:
        # Nothing a reader creates may exist anywhere, so the mirror never gets it:
        # the same items without content, and the reader's deletions to judge.
        full = mirror.doc.get_update()
        created = _reader_touches(mirror, update, full)
        return strip(update, scanned, set(mirror.doc.keys()), partial(_known_name, full)), created
    # a runner writes results into the cells, nothing else: what they send
    # elsewhere reaches the mirror without content, key or root names either
    return strip_outside(update, scanned, CELLS, set(mirror.doc.keys()),
                         lambda name: _known_name(mirror.doc.get_update(), name)), []


def _reader_touches(mirror: Mirror, update: bytes, full: bytes) -> list[Touch]:
    """What a reader's update would have changed, for attribution only.

    Read on a throw-away copy of the mirror (the mirror itself never holds a
    reader's content); past :data:`ATTRIBUTION_BYTES` the copy costs too much for
    a refused update, and the touch names the document only.
    """
    if mirror.size > ATTRIBUTION_BYTES:
        return [Touch(None, "document")]
    scratch: Doc[Shared] = Doc()
    scratch.apply_update(full)
    recorded: list[tuple[str, list[Any]]] = []
    subscriptions = [
        scratch.get(name, type=type(root)).observe_deep(partial(_record, recorded, name))
        for name, root in mirror.roots.items()
    ]
    try:
        scratch.apply_update(update)
    except ValueError:
        return [Touch(None, "document")]
    touches = [Touch(None, "document") for name in scratch.keys() if name not in mirror.roots]
    for name, events in recorded:
        if name == CELLS:
            touches += cell_touches(events, mirror.ids)
        else:
            touches.append(Touch(None, root_part(name)))
    del subscriptions
    return touches


def _known_name(full: bytes, name: str) -> bool:
    encoded = name.encode("utf-8")
    return len(encoded) <= KNOWN_NAME_BYTES and encoded in full


def _record(recorded: list[tuple[str, list[Any]]], name: str, events: list[Any]) -> None:
    recorded.append((name, list(events)))
