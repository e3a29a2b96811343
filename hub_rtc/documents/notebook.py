"""A notebook as jupyter-ydoc lays it out in a CRDT document, read and edited on a
plain ``pycrdt.Doc``.

The schema is jupyter_ydoc's ``YNotebook`` (document version 2.0.0)::

    meta:  Map   {nbformat, nbformat_minor, metadata: Map}
    cells: Array of Map
           {id: str, cell_type: "code" | "markdown" | "raw", source: Text, metadata: Map,
            code cells also: outputs: Array of Map, execution_count: int | None,
                             execution_state: str (runtime only, not saved),
            markdown and raw cells: attachments (only when there are some)}
    state: Map   (the room's own bookkeeping: dirty, path, document_id; not notebook content)

The document is never wrapped in ``YNotebook``: its UndoManager keeps every deleted
item alive (docs/architecture.md, why the mirror is a plain Doc).  Every edit here
runs in one transaction and returns a
:class:`Change`: the update to send to the room, and what to look at afterwards to
tell whether the room kept it.

Text offsets in pycrdt are UTF-8 byte offsets; this module counts characters and
converts, so an edit never lands inside a multi-byte character.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Array, Doc, Map, Text

__all__ = [
    "CELL_ID",
    "CELL_TYPES",
    "BadEdit",
    "CellNotFound",
    "Change",
    "DocumentError",
    "NotebookView",
    "append_source",
    "cell_ids",
    "cell_json",
    "delete_cell",
    "find_cell",
    "insert_cell",
    "new_cell_id",
    "notebook_json",
    "replace_source",
]

CELL_TYPES = ("code", "markdown", "raw")
#: nbformat 4.5's cell id: 1 to 64 letters, digits, '-' and '_'
CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class DocumentError(Exception):
    """A document operation that cannot be done, with a message for a person."""


class CellNotFound(DocumentError):
    """No cell with that id in the notebook."""


class BadEdit(DocumentError):
    """The edit does not fit the document (index out of range, unknown cell type, …)."""


# -- reading -----------------------------------------------------------------------


def _cells(doc: Doc) -> Array:
    return doc.get("cells", type=Array)


def _meta(doc: Doc) -> Map:
    return doc.get("meta", type=Map)


def _as_ints(value: Any) -> Any:
    """Whole floats back to ints: Yjs stores every number as a float (execution counts,
    nbformat versions, metadata), and nbformat wants integers there."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_ints(v) for v in value]
    return value


def _cell_to_py(cell: Map) -> dict[str, Any]:
    """One cell as nbformat JSON, the way ``YNotebook.get_cell`` writes it to disk."""
    out: dict[str, Any] = _as_ints(cell.to_py() or {})
    out.pop("execution_state", None)  # runtime state, never saved
    out.setdefault("metadata", {})
    out.setdefault("source", "")
    if out.get("cell_type") == "code":
        out.setdefault("outputs", [])
        out.setdefault("execution_count", None)
    elif "attachments" in out and not out["attachments"]:
        del out["attachments"]
    return out


def notebook_json(doc: Doc) -> dict[str, Any]:
    """The live notebook as nbformat JSON, cells in document order.

    Unlike ``YNotebook.get`` this keeps cell ids for notebooks that say they are
    nbformat 4.0–4.4 (and reports them as 4.5, the first minor version with ids):
    the live document has ids, and they are how the API names cells.  It also
    leaves duplicate ids alone rather than renaming them in the document.
    """
    with doc.transaction():  # one for all the reads: each read would otherwise make its own
        meta: dict[str, Any] = _as_ints(_meta(doc).to_py() or {})
        cells = [_cell_to_py(cell) for cell in _cells(doc)]
    return _notebook(meta, cells)


def _notebook(meta: dict[str, Any], cells: list[dict[str, Any]]) -> dict[str, Any]:
    major, minor = int(meta.get("nbformat", 4)), int(meta.get("nbformat_minor", 5))
    if major == 4 and minor < 5 and any("id" in c for c in cells):
        minor = 5
    return {"cells": cells, "metadata": meta.get("metadata", {}), "nbformat": major,
            "nbformat_minor": minor}


class NotebookView:
    """:func:`notebook_json` of one document, read again only where it changed.

    Converting a cell to JSON is most of what reading a notebook costs (about 30 µs
    a cell here), and between two reads of a kept replica few cells change.  The
    document's deep events say which: a changed cell's copy is forgotten, and cells
    that come, go or move shift the copies with them.  What :meth:`json` returns
    shares those copies: read it, do not change it.
    """

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        #: each cell's JSON, by index; None: to be read
        self._cells: list[dict[str, Any] | None] | None = None
        self._meta: dict[str, Any] | None = None
        cells, meta = _cells(doc), _meta(doc)
        self._subscriptions: list[tuple[Array | Map, Any]] = [
            (cells, cells.observe_deep(self._on_cells)), (meta, meta.observe_deep(self._on_meta))]

    def json(self) -> dict[str, Any]:
        with self.doc.transaction():
            shared = _cells(self.doc)
            copies = self._cells
            if copies is None or len(copies) != len(shared):  # (never, while events arrive)
                copies = self._cells = [None] * len(shared)
            for index, copy in enumerate(copies):
                if copy is None:
                    copies[index] = _cell_to_py(shared[index])
            if self._meta is None:
                self._meta = _as_ints(_meta(self.doc).to_py() or {})
        return _notebook(self._meta, [c for c in copies if c is not None])

    def close(self) -> None:
        for shared, subscription in self._subscriptions:
            shared.unobserve(subscription)
        self._subscriptions = []

    def _on_cells(self, events: list[Any]) -> None:
        if self._cells is None:
            return
        # Paths of nested events are indexes after the transaction: move the copies
        # with the list's own changes first, then forget the cells changed inside.
        for event in events:
            if not event.path:
                self._cells = _shifted(self._cells, event.delta)
        for event in events:
            if event.path and isinstance(event.path[0], int) and 0 <= event.path[0] < len(self._cells):
                self._cells[event.path[0]] = None

    def _on_meta(self, events: list[Any]) -> None:
        self._meta = None


def _shifted(copies: list[dict[str, Any] | None], delta: list[dict[str, Any]]
             ) -> list[dict[str, Any] | None]:
    """The copies after a list change: kept where retained, gone where deleted, and
    to be read where inserted."""
    out: list[dict[str, Any] | None] = []
    at = 0
    for op in delta:
        if "retain" in op:
            out += copies[at:at + op["retain"]]
            at += op["retain"]
        elif "delete" in op:
            at += op["delete"]
        elif "insert" in op:
            out += [None] * len(op["insert"])
    return out + copies[at:]


def cell_ids(doc: Doc) -> list[str | None]:
    """The id of every cell, in order (None for a cell without a string id)."""
    return [_id_of(cell) for cell in _cells(doc)]


def _id_of(cell: Any) -> str | None:
    value = cell.get("id") if isinstance(cell, Map) else None
    return value if isinstance(value, str) else None


def find_cell(doc: Doc, cell_id: str) -> tuple[int, Map]:
    """The index and the shared map of the first cell with id ``cell_id``."""
    for index, cell in enumerate(_cells(doc)):
        if _id_of(cell) == cell_id:
            return index, cell
    raise CellNotFound(f"the notebook has no cell with id {cell_id!r}")


def cell_json(doc: Doc, cell_id: str) -> dict[str, Any]:
    """One cell as nbformat JSON."""
    return _cell_to_py(find_cell(doc, cell_id)[1])


def _source_text(doc: Doc, cell_id: str) -> Text:
    source = find_cell(doc, cell_id)[1].get("source")
    if not isinstance(source, Text):
        raise BadEdit(f"cell {cell_id!r} has no shared text source to edit")
    return source


def _source_or_none(doc: Doc, cell_id: str) -> str | None:
    try:
        return str(_source_text(doc, cell_id))
    except DocumentError:
        return None


# -- what an edit produced -------------------------------------------------------


def _always_holds(doc: Doc) -> bool:
    return True


@dataclass(frozen=True)
class Change:
    """One edit made on a replica.

    ``update`` is what to send to the room (empty: the edit changed nothing).
    ``inserted`` is the clock range ``[start, end)`` of the items this edit created,
    all of them by ``client``.  ``holds`` checks on the replica, once the room has
    answered, what deleted items cannot show: that what the edit removed is still
    gone (a deleted cell, deleted text), or that a new cell is there.

    The guarded room undoes a refused edit by deleting what it inserted and
    re-inserting what it deleted (as new items); :meth:`undone` looks for both.
    """

    update: bytes
    client: int
    inserted: tuple[int, int]
    cell_id: str
    holds: Callable[[Doc], bool] = field(default=_always_holds, compare=False)

    @property
    def empty(self) -> bool:
        return not self.update

    def undone(self, remote_deletions: Iterable[bytes], doc: Doc) -> bool:
        """Whether the room reverted this edit.

        ``remote_deletions`` are the encoded delete sets of the transactions that
        came from the room after the edit was sent (``TransactionEvent.delete_set``).
        """
        start, end = self.inserted
        if end > start and any(_deletes(d, self.client, start, end) for d in remote_deletions):
            return True
        return not self.holds(doc)


def _var_uints(data: bytes) -> Iterator[int]:
    """The lib0 varuints ``data`` is made of, in order."""
    value, shift = 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            yield value
            value, shift = 0, 0


def _deletes(delete_set: bytes, client: int, start: int, end: int) -> bool:
    """Whether an encoded delete set removes any item of ``client`` in ``[start, end)``.

    The encoding (Yjs' delete set, v1): a count of clients, then per client its
    id, a count of ranges and each range as (clock, length).
    """
    numbers = _var_uints(delete_set)
    for _ in range(next(numbers, 0)):
        who = next(numbers)
        for _ in range(next(numbers)):
            clock, length = next(numbers), next(numbers)
            if who == client and clock < end and clock + length > start:
                return True
    return False


def _clock(state: bytes, client: int) -> int:
    """``client``'s clock in an encoded state vector (0 if it made nothing yet)."""
    numbers = _var_uints(state)
    for _ in range(next(numbers, 0)):
        who, clock = next(numbers), next(numbers)
        if who == client:
            return clock
    return 0


def _capture(doc: Doc, edit: Callable[[], None]) -> tuple[bytes, tuple[int, int]]:
    """Run ``edit`` in one transaction; the update it made and the clocks it used."""
    updates: list[bytes] = []
    before = _clock(doc.get_state(), doc.client_id)
    subscription = doc.observe(lambda event: updates.append(event.update))
    try:
        with doc.transaction():
            edit()
    finally:
        doc.unobserve(subscription)
    return (updates[0] if updates else b""), (before, _clock(doc.get_state(), doc.client_id))


def _change(doc: Doc, cell_id: str, edit: Callable[[], None],
            holds: Callable[[Doc], bool] = _always_holds) -> Change:
    update, inserted = _capture(doc, edit)
    return Change(update, doc.client_id, inserted, cell_id, holds)


# -- editing -----------------------------------------------------------------------


def _byte_offset(text: str, chars: int) -> int:
    return len(text[:chars].encode("utf-8"))


def _common_ends(old: str, new: str) -> tuple[int, int]:
    """Lengths (in characters) of the common prefix and of the common suffix after it."""
    limit = min(len(old), len(new))
    prefix = 0
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return prefix, suffix


def replace_source(doc: Doc, cell_id: str, text: str) -> Change:
    """Make the cell's source ``text``, changing only the part that differs.

    Only the differing middle is deleted and inserted, so collaborators' cursors
    and concurrent typing elsewhere in the cell survive.
    """
    source = _source_text(doc, cell_id)
    old = str(source)
    prefix, suffix = _common_ends(old, text)
    start = _byte_offset(old, prefix)
    stop = _byte_offset(old, len(old) - suffix)
    middle = text[prefix:len(text) - suffix]

    def edit() -> None:
        if stop > start:
            del source[start:stop]
        if middle:
            source.insert(start, middle)

    def holds(after: Doc) -> bool:
        # a pure deletion inserts nothing to watch: it was undone if the old text is back
        return bool(middle) or old == text or _source_or_none(after, cell_id) != old

    return _change(doc, cell_id, edit, holds)


def append_source(doc: Doc, cell_id: str, text: str) -> Change:
    """Add ``text`` at the end of the cell's source."""
    source = _source_text(doc, cell_id)

    def edit() -> None:
        if text:
            source.insert(len(source), text)

    return _change(doc, cell_id, edit)


def new_cell_id(taken: Iterable[str | None] = ()) -> str:
    """A fresh nbformat cell id, as JupyterLab makes them (a UUID), not in ``taken``."""
    used = set(taken)
    while True:
        candidate = str(uuid.uuid4())
        if candidate not in used:
            return candidate


def _new_cell(cell_id: str, cell_type: str, source: str) -> Map:
    """A cell as ``YNotebook.create_ycell`` builds it."""
    cell: dict[str, Any] = {"id": cell_id, "cell_type": cell_type, "source": Text(source),
                            "metadata": Map()}
    if cell_type == "code":
        cell.update(outputs=Array(), execution_count=None, execution_state="idle")
    return Map(cell)


def insert_cell(doc: Doc, index: int | None, cell_type: str, source: str = "",
                cell_id: str | None = None) -> Change:
    """Insert a new cell before position ``index`` (None: at the end).

    ``cell_id`` defaults to a fresh id; :attr:`Change.cell_id` names the new cell.
    """
    if cell_type not in CELL_TYPES:
        raise BadEdit(f"cell_type must be one of {', '.join(CELL_TYPES)}")
    cells = _cells(doc)
    count = len(cells)
    at = count if index is None else index
    if not 0 <= at <= count:
        raise BadEdit(f"index {at} is outside the notebook (0 to {count})")
    ids = cell_ids(doc)
    if cell_id is None:
        cell_id = new_cell_id(ids)
    elif not CELL_ID.match(cell_id) or cell_id in ids:
        raise BadEdit(f"cell id {cell_id!r} is not a valid, unused nbformat cell id")
    made = cell_id

    def edit() -> None:
        cells.insert(at, _new_cell(made, cell_type, source))

    def holds(after: Doc) -> bool:
        return made in cell_ids(after)

    return _change(doc, made, edit, holds)


def delete_cell(doc: Doc, cell_id: str) -> Change:
    """Remove the cell ``cell_id``."""
    index, _ = find_cell(doc, cell_id)
    cells = _cells(doc)

    def edit() -> None:
        del cells[index]

    def holds(after: Doc) -> bool:
        # the room puts a refused deletion back as a copy with the same id
        return cell_id not in cell_ids(after)

    return _change(doc, cell_id, edit, holds)
