"""The bounds that refuse an update whole: read before pycrdt decodes it (its sizes,
its content kinds, whether it cuts a character in two), and after the mirror
integrated it (the nesting of what it inserted).

Nothing of a refused-whole update is forwarded; the connection is closed, with close
code 4413 when the update was well-formed but beyond a :class:`~.rights.Limits` bound.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Map, Text

from ._events import kind
from ._mirror import Batch, Mirror
from ._scan import ContentKind, Scan, ScanError, scan, splits
from .rights import Limits, Rights
from .verdict import Verdict, refused_whole

__all__ = ["FOREIGN_KINDS", "NESTING_KINDS", "screen", "too_deep"]

#: content kinds no jupyter_ydoc document uses.  Formatting items survive every
#: revert the pycrdt API can make (deleting the text around them leaves them in
#: place), so a restricted user's update carrying any of them is refused whole.
FOREIGN_KINDS = frozenset({ContentKind.JSON, ContentKind.EMBED, ContentKind.FORMAT, ContentKind.DOC})
#: content kinds that can hold containers (shared types, JSON-like values)
NESTING_KINDS = frozenset({ContentKind.JSON, ContentKind.EMBED, ContentKind.TYPE, ContentKind.ANY})


def screen(update: bytes, rights: Rights, limits: Limits, mirror: Mirror) -> Scan | Verdict:
    """Read ``update`` before pycrdt does: its scan, or the verdict refusing it whole."""
    if len(update) > limits.max_update:
        return refused_whole(f"update of {len(update)} bytes exceeds {limits.max_update}", limit=True)
    try:
        scanned = scan(update, max_depth=limits.max_depth)
    except ScanError as e:
        return refused_whole(f"update refused: {e.reason}", limit=e.limit)
    cut = splits(scanned, mirror.highs)
    if cut:
        return refused_whole(f"update refused: {cut}")
    if scanned.items and mirror.size + len(update) > limits.max_document:
        mirror.size = len(mirror.doc.get_update())  # the bound was loose: measure
        if mirror.size + len(update) > limits.max_document:
            return refused_whole(f"the document would exceed {limits.max_document} bytes", limit=True)
    # (what a reader creates never reaches the mirror at all, see DocumentGuard.check)
    restricted = not rights.unrestricted and (rights.write or rights.run)
    if restricted and scanned.kinds & FOREIGN_KINDS:
        return refused_whole("formatting, embeds, subdocuments and JSON content are not allowed")
    return scanned


def too_deep(batches: list[Batch], max_depth: int, nesting: bool) -> str:
    """Why the integrated events nest content deeper than ``max_depth`` ("" if not).

    An event's path gives the depth of the container it changed; what it inserted
    adds its own nesting (prelim content integrates without events of its own), and
    only when the update carried content that nests (``nesting``: typing does not).
    """
    for batch in batches:
        for event in batch.events:
            depth = len(event.path)
            if depth >= max_depth or (
                    nesting and depth + _inserted_depth(event, max_depth - depth) > max_depth):
                return f"content nested deeper than {max_depth} levels"
    return ""


def _inserted_depth(event: Any, budget: int) -> int:
    shape = kind(event)
    if shape == "map":
        values = [change.get("newValue") for change in event.keys.values()]
    else:
        values = [v for op in event.delta if "insert" in op
                  for v in (op["insert"] if shape == "array" else [op["insert"]])]
    return 1 + max((_nesting(value, budget) for value in values), default=0)


def _nesting(value: object, budget: int) -> int:
    """How many containers deep ``value`` goes, counting at most ``budget + 1``."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Map | dict):
            children: Any = node.values()
        elif isinstance(node, Array | list):
            children = node
        elif isinstance(node, Text):
            children = ()
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > budget:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest
