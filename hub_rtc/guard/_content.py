"""Typed copies of CRDT content, and the edits that put such a copy back.

A refused deletion cannot be undone by resurrecting the deleted items: the mirror
garbage-collects their content when the transaction commits.  So the guard keeps
copies of what it may have to restore, and re-inserts that content as new items.
The copies keep the shared type of every level (a cell's ``source`` comes back as a
Text, its ``metadata`` as a Map), so the restored content has the document's shape.

Text offsets are UTF-8 byte offsets here, as pycrdt counts them in both its
methods and its event deltas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pycrdt import Array, Map, Text

Delta = Sequence[Mapping[str, Any]]
Kind = Literal["text", "rich", "map", "array", "value"]


@dataclass(frozen=True, slots=True)
class Snap:
    """A copy of one value: ``text`` holds a str, ``rich`` a text's chunks with their
    formatting (a list of (str or Snap of an embed, attributes)), ``map`` a dict of
    Snaps, ``array`` a list of Snaps, ``value`` a plain JSON-like value."""

    kind: Kind
    value: Any

    def child(self, step: str | int) -> Snap | None:
        if isinstance(step, str):
            return self.value.get(step) if self.kind == "map" else None
        if self.kind == "array" and 0 <= step < len(self.value):
            child: Snap = self.value[step]
            return child
        return None


def take(value: object) -> Snap:
    """A deep, typed copy of a shared value as it is now."""
    if isinstance(value, Text):
        chunks = value.diff()
        if any(attrs or not isinstance(chunk, str) for chunk, attrs in chunks):
            # str() leaves out embeds and formatting (only unrestricted users make them)
            return Snap("rich", [(chunk if isinstance(chunk, str) else take(chunk), attrs)
                                 for chunk, attrs in chunks])
        return Snap("text", str(value))
    if isinstance(value, Map):
        return Snap("map", {key: take(item) for key, item in value.items()})
    if isinstance(value, Array):
        return Snap("array", [take(item) for item in value])
    return Snap("value", value)


def build(snap: Snap) -> Any:
    """New, not yet integrated content equal to ``snap``."""
    if snap.kind == "text":
        return Text(snap.value)
    if snap.kind == "rich":  # the plain text; restore_key and restore_in_place keep the rest
        return Text("".join(chunk for chunk, _ in snap.value if isinstance(chunk, str)))
    if snap.kind == "map":
        return Map({key: build(item) for key, item in snap.value.items()})
    if snap.kind == "array":
        return Array([build(item) for item in snap.value])
    return snap.value


def restore_key(target: Map[Any], key: str, old: Snap | None) -> None:
    """Put ``target[key]`` back to ``old``; None means the key did not exist."""
    if old is None:
        if key in target:
            del target[key]
    elif old.kind == "rich":
        target[key] = Text()
        _fill_rich(target[key], old.value)
    else:
        target[key] = build(old)


def restore_in_place(target: Text | Array[Any] | Map[Any], old: Snap) -> None:
    """Make ``target`` equal to ``old`` without replacing the shared object itself,
    so that editors bound to it (a cell's source) stay bound."""
    if isinstance(target, Text) and old.kind == "text":
        _replace_text(target, old.value)
    elif isinstance(target, Text) and old.kind == "rich":
        target.clear()
        _fill_rich(target, old.value)
    elif isinstance(target, Map) and old.kind == "map":
        _restore_map(target, old.value)
    elif isinstance(target, Array) and old.kind == "array":
        target.clear()
        target.extend([build(item) for item in old.value])
    else:
        target.clear()


def _replace_text(target: Text, old: str) -> None:
    # str() leaves out embeds (a nested shared type) and formatting: compare the chunks
    if str(target) != old or _decorated(target):
        target.clear()
        target.insert(0, old)


def _fill_rich(target: Text, chunks: list[tuple[Any, Any]]) -> None:
    pos = 0
    for chunk, attrs in chunks:
        if isinstance(chunk, str):
            target.insert(pos, chunk, attrs or None)
            pos += len(chunk.encode("utf-8"))
        else:
            target.insert_embed(pos, build(chunk), attrs or None)
            pos += 1


def _decorated(target: Text) -> bool:
    """Whether ``target`` holds anything but plain, unformatted text."""
    return any(attrs or not isinstance(chunk, str) for chunk, attrs in target.diff())


def _restore_map(target: Map[Any], old: dict[str, Snap]) -> None:
    for key in [key for key in target.keys() if key not in old]:
        del target[key]
    for key, snap in old.items():
        if key not in target or take(target[key]) != snap:
            target[key] = build(snap)


def invert_text(target: Text, delta: Delta, old: str) -> None:
    """Undo the change ``delta`` made to ``target``, whose content was ``old`` before.

    Walking the delta keeps the reversal local: edits other people made elsewhere in
    the same text survive.  Formatting or embeds (never in notebook sources) fall back
    to rewriting the whole text.
    """
    steps = _text_steps(delta, old.encode("utf-8"))
    if steps is None:
        _replace_text(target, old)
        return
    pos = 0
    for op, value in steps:
        if op == "retain":
            pos += int(value)
        elif op == "drop":
            del target[pos : pos + int(value)]
        else:
            target.insert(pos, str(value))
            pos += len(str(value).encode("utf-8"))


def _text_steps(delta: Delta, old: bytes) -> list[tuple[str, int | str]] | None:
    """("retain", n) / ("drop", n) / ("restore", text) steps, or None if not plain text."""
    steps: list[tuple[str, int | str]] = []
    old_pos = 0
    for op in delta:
        if "attributes" in op:
            return None
        if "retain" in op:
            steps.append(("retain", op["retain"]))
            old_pos += op["retain"]
        elif "insert" in op:
            if not isinstance(op["insert"], str):
                return None
            steps.append(("drop", len(op["insert"].encode("utf-8"))))
        elif "delete" in op:
            chunk = old[old_pos : old_pos + op["delete"]]
            old_pos += op["delete"]
            try:
                steps.append(("restore", chunk.decode("utf-8")))
            except UnicodeDecodeError:
                return None
    return steps


def invert_array(
    target: Array[Any],
    delta: Delta,
    old: Callable[[int], Snap | None],
    keep: Callable[[int], bool] = lambda _: False,
) -> None:
    """Undo ``delta`` on ``target``: drop inserted elements, re-insert deleted ones.

    ``old(i)`` is the element that was at index ``i`` before the change; ``keep(n)``
    says whether the n-th inserted-or-deleted element of the delta may stay as the
    change left it (an allowed cell insert next to a refused one).
    """
    pos = old_pos = changed = 0
    for op in delta:
        if "retain" in op:
            pos += op["retain"]
            old_pos += op["retain"]
        elif "insert" in op:
            for _ in op["insert"]:
                if keep(changed):
                    pos += 1
                else:
                    del target[pos]
                changed += 1
        elif "delete" in op:
            for _ in range(op["delete"]):
                snap = None if keep(changed) else old(old_pos)
                if snap is not None:
                    target.insert(pos, build(snap))
                    pos += 1
                old_pos += 1
                changed += 1


def old_index(delta: Delta | None, index: int) -> int | None:
    """The index before ``delta`` of the element now at ``index`` (None: inserted)."""
    if delta is None:
        return index
    new = old = 0
    for op in delta:
        if "retain" in op:
            if index < new + op["retain"]:
                return old + index - new
            new += op["retain"]
            old += op["retain"]
        elif "insert" in op:
            if index < new + len(op["insert"]):
                return None
            new += len(op["insert"])
        elif "delete" in op:
            old += op["delete"]
    return old + index - new
