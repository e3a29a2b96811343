"""What the guard says about one client update: what it touched, and what to forward."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PENDING", "Touch", "Verdict", "refused_whole", "root_part"]

#: the :attr:`Touch.part` of a change to these roots; any other root's is ``document``
_ROOT_PARTS = {"meta": "notebook", "state": "state"}


@dataclass(frozen=True)
class Touch:
    """One part of the document an update changed.

    ``cell_id`` is None outside the cells list.  ``part`` is a cell key (``source``,
    ``metadata``, ``outputs``, ``execution_count``, ``id``...), ``insert`` or
    ``delete`` for a whole cell, or for other roots ``notebook`` (``meta``),
    ``state`` (``state``) and ``document`` (any other root).
    """

    cell_id: str | None
    part: str


@dataclass(frozen=True)
class Verdict:
    """What to do with one client update.

    ``forward`` is what the room applies and broadcasts (None: nothing).  When part of
    the update was refused, ``accepted`` is False and ``forward`` carries the update's
    net result with the refused part already reverted.
    """

    accepted: bool
    forward: bytes | None
    touched: tuple[Touch, ...] = ()
    refused: tuple[Touch, ...] = ()
    pending: bool = False
    #: set when the whole update was refused and nothing forwarded: why, for the
    #: close message; the connection should be closed (and the guard reset if stale)
    reason: str = ""
    #: the update was well-formed but beyond a :class:`Limits` bound (close code 4413)
    limit: bool = False


#: an update that cannot be integrated (or checked): nothing forwarded, close the connection
PENDING = Verdict(accepted=False, forward=None, pending=True)


def refused_whole(reason: str, *, limit: bool = False) -> Verdict:
    """Nothing of the update forwarded, for ``reason``."""
    # pending: like an update that cannot be integrated, the connection must go
    return Verdict(accepted=False, forward=None, pending=True, reason=reason, limit=limit)


def root_part(root: str) -> str:
    """What a change to the root ``root`` (not the cells list) touches, as a part."""
    return _ROOT_PARTS.get(root, "document")
