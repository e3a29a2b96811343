"""What one connection may change in one document, as the guard sees it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rights:
    """Edit rights of one user in one document.

    ``write=False`` means the user may change nothing at all.  With ``write=True``,
    ``protected`` holds the ids of the cells this user may not change (locked cells,
    cells assigned to others); everything else in the document is theirs to edit.

    ``run`` is for people who may run code but not edit (the ``runner`` role):
    running a cell in JupyterLab writes its outputs and execution count into the
    shared document from the runner's own client, so those two parts of cells
    that are not protected stay theirs to change.
    """

    write: bool
    protected: frozenset[str] = frozenset()
    run: bool = False

    @classmethod
    def full(cls) -> Rights:
        """May change everything: the guard takes its fast path."""
        return _FULL

    @classmethod
    def read_only(cls) -> Rights:
        """May change nothing."""
        return _READ_ONLY

    @property
    def unrestricted(self) -> bool:
        """True when nothing can be refused, so the guard needs no snapshot."""
        return self.write and not self.protected

    def may_edit(self, cell_id: str | None) -> bool:
        """Whether this user may change (insert, delete, edit) the cell ``cell_id``.

        ``None`` stands for content outside any identified cell.
        """
        return self.write and (cell_id is None or cell_id not in self.protected)

    def may_change(self, cell_id: str | None, part: str) -> bool:
        """Whether this user may make a change of kind ``part`` to the cell ``cell_id``."""
        if self.may_edit(cell_id):
            return True
        return self.run and part in RUN_PARTS and cell_id is not None and cell_id not in self.protected


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one update may cause, whoever sends it.

    Checked before pycrdt decodes an update (its size, every length it declares, the
    nesting of its values) and after the mirror integrated it (the nesting of shared
    types below the document's roots, and the document's size).  Something deeper
    than ``max_depth`` makes jupyter's save path recurse until it fails, for everyone.
    """

    #: bytes of one update
    max_update: int = 16 * 1024 * 1024
    #: containers (maps, arrays, texts, JSON objects and lists) nested below a root
    max_depth: int = 32
    #: bytes of the whole encoded document an update may grow it to
    max_document: int = 128 * 1024 * 1024


#: the parts of a cell that running it changes
RUN_PARTS = frozenset({"outputs", "execution_count"})


_FULL = Rights(write=True)
_READ_ONLY = Rights(write=False)
