"""What one checked update counts for in the activity log: the rules of an edit and a refusal.

Pure functions of the guard's :class:`~hub_rtc.guard.Verdict`; the guarded room's
connection counts what they say (:mod:`.connection`), and the unit tests hold them
against update streams recorded from a real JupyterLab (``tests/unit/data``).

- **An edit** is a person's change to a cell: its source, outputs or metadata,
  adding, deleting or moving cells.  One update counts one edit per cell it changed
  (a keystroke is one edit, however many parts of the cell it touched).
- JupyterLab writes bookkeeping of its own into the document without anyone typing:
  the ``state`` root (``dirty``, ``path``, ``document_id``...), the notebook's
  metadata when a kernel starts (``language_info``), a cell's ``execution_state``
  while it runs, and the run's ``execution_count`` (the run itself is counted on
  the kernel socket, see :mod:`.executions`).  None of it is an edit, and none of
  it refused is an attempt anyone made.
- **A refusal** is one per refused update, whatever number of parts or cells it
  touched, counted on the first person's cell it touched; an update refused whole
  (beyond a limit, or not revertible) is one too, on no cell.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..guard import Touch, Verdict

__all__ = ["BOOKKEEPING_CELL_PARTS", "Refusal", "edited_cells", "is_persons", "refusal"]

#: cell keys JupyterLab (or the run) writes on its own: not a person's change
BOOKKEEPING_CELL_PARTS = frozenset({"execution_count", "execution_state"})
#: the parts of a :class:`Touch` outside the cells list (``meta``, ``state``, other roots)
_ROOT_PARTS = frozenset({"notebook", "state", "document"})


@dataclass(frozen=True)
class Refusal:
    """One refused attempt, counted on ``cell_id`` (None: on no cell)."""

    cell_id: str | None


def is_persons(touch: Touch) -> bool:
    """Whether ``touch`` is a change to a cell a person makes (see the module docstring)."""
    return touch.part not in _ROOT_PARTS and touch.part not in BOOKKEEPING_CELL_PARTS


def edited_cells(verdict: Verdict) -> list[str | None]:
    """The cells ``verdict``'s update changed as a person, once each, in order (None: a
    cell that has no id)."""
    cells: dict[str | None, None] = {}
    for touch in verdict.touched:
        if is_persons(touch):
            cells.setdefault(touch.cell_id)
    return list(cells)


def refusal(verdict: Verdict) -> Refusal | None:
    """The one refusal ``verdict``'s update counts for, or None when it is no refused
    attempt (accepted, out of order, or only JupyterLab's bookkeeping refused)."""
    if verdict.pending:
        # refused whole says why; without a reason it was out of order, which is no attempt
        return Refusal(None) if verdict.reason else None
    attempted = [t for t in verdict.refused if is_persons(t) or t.part == "notebook"]
    if not attempted:
        return None
    on_cells = [t.cell_id for t in attempted if t.cell_id is not None]
    return Refusal(on_cells[0] if on_cells else None)
