"""What one connection may change in one document, as the guard sees it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rights:
    """Edit rights of one user in one document.

    ``write=False`` means the user may change nothing at all.  With ``write=True``,
    ``protected`` holds the ids of the cells this user may not change (locked cells,
    cells assigned to others); everything else in the document is theirs to edit.
    """

    write: bool
    protected: frozenset[str] = frozenset()

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


_FULL = Rights(write=True)
_READ_ONLY = Rights(write=False)
