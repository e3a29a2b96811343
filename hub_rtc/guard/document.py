"""Per-update write checks for one collaborative document.

The guard keeps a *mirror*: a plain ``pycrdt.Doc`` replica of the room's document.
A client's update is applied to the mirror first, inside a transaction whose deep
events say which cells and keys it touched.  What the user may not change is then
reverted on the mirror in a second transaction, and the room receives the net
result, ``mirror.get_update(state_before)``:

- the client's items are in it, so later updates that build on them integrate;
- the refused items are already deleted and garbage-collected, so their content is
  not in the bytes the room applies, stores, or sends to anyone;
- the revert is in it too, so every replica, the sender's included, converges on
  the authorized state.

The mirror is never wrapped in ``jupyter_ydoc.YNotebook`` and never given an
UndoManager: an UndoManager keeps deleted items alive, so rejected text would stay
encoded in the document.

Before any of that, :mod:`._scan` reads the update whole (pycrdt would size buffers
from counts it declares), and updates beyond :class:`~.rights.Limits`, malformed
ones, and formatting or embeds from restricted writers (no revert removes them) are
refused whole.  A reader's update never reaches the mirror as sent: its items arrive
stripped of all content (:func:`._scan.strip`), so there is nothing of it to revert.

Typical use by the room adapter, one guard per room::

    guard = DocumentGuard(room_doc.get_update())
    room_doc.observe(lambda event: guard.follow(event.update))
    verdict = guard.check(update, rights)      # per SYNC_STEP2 / SYNC_UPDATE
    if verdict.pending:                        # close that connection, then
        guard.reset(room_doc.get_update())
    elif verdict.forward is not None:
        room_doc.apply_update(verdict.forward)

Where each step lives (this module only runs them in order):

- :mod:`._screen`: the bounds that refuse an update whole, before and after integrating;
- :mod:`._readers`: what of a reader's or runner's update reaches the mirror;
- :mod:`._mirror`: the replica, its observers, the cells' ids and the cached copies;
- :mod:`._cell_rules` and :mod:`._root_rules`: each change judged against the rights;
- :mod:`._revert`: the plan, and the edits that revert its refused part;
- :mod:`.verdict`: what comes back (a :class:`Verdict` naming each :class:`Touch`);
- :mod:`._cells`, :mod:`._events`, :mod:`._content`: walking the cells list's deltas,
  reading deep events, typed copies of content.
"""

from __future__ import annotations

from collections.abc import Mapping

from pycrdt import Doc

from ._cell_rules import plan_cells
from ._cells import CELLS
from ._mirror import DEFAULT_ROOTS, Batch, Before, Mirror, RootType, Shared
from ._readers import withhold
from ._revert import Plan, revert
from ._root_rules import plan_new_roots, plan_root
from ._screen import NESTING_KINDS, screen, too_deep
from .rights import Limits, Rights
from .verdict import PENDING, Touch, Verdict, refused_whole

__all__ = ["DEFAULT_ROOTS", "DocumentGuard", "RootType", "Touch", "Verdict"]


class DocumentGuard:
    """Checks client updates to one document against per-user rights.

    ``initial`` is the room document's full update.  ``roots`` names the type of root
    types beyond :data:`DEFAULT_ROOTS` (e.g. ``{"source": Text}`` for a text file);
    the adapter can take them from the room doc.  Roots it does not name are typed by
    looking at their content when the guard first needs them.
    """

    def __init__(
        self,
        initial: bytes | None = None,
        *,
        roots: Mapping[str, RootType] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self._hints: dict[str, RootType] = {**DEFAULT_ROOTS, **(roots or {})}
        self.limits = limits or Limits()
        self._mirror = Mirror(initial, self._hints)

    # -- lifecycle ----------------------------------------------------------------

    def reset(self, full_update: bytes) -> None:
        """Rebuild the mirror from the room doc's full update (after a pending verdict)."""
        self._mirror = Mirror(full_update, self._hints)

    @property
    def stale(self) -> bool:
        """True once the mirror may differ from the room; checks then return pending."""
        return self._mirror.stale

    @property
    def doc(self) -> Doc[Shared]:
        """The mirror (for tests and diagnostics; do not edit it)."""
        return self._mirror.doc

    def state(self) -> bytes:
        """The mirror's full update."""
        return self._mirror.doc.get_update()

    # -- following the room -------------------------------------------------------

    def follow(self, update: bytes) -> None:
        """Apply an update the room already holds (its own, or one the guard forwarded).

        Idempotent: an echo of a forwarded update changes nothing.
        """
        self._mirror.follow(update)

    # -- checking a client --------------------------------------------------------

    def check(self, update: bytes, rights: Rights) -> Verdict:
        """Integrate a client's SYNC_STEP2 / SYNC_UPDATE payload and judge it.

        An update that cannot be integrated (missing dependencies) or decoded comes
        back ``pending``, with nothing to forward; the connection should be closed.
        After a pending verdict the guard may be :attr:`stale` and then needs
        :meth:`reset` before it checks anything again.
        """
        mirror = self._mirror
        if mirror.stale:
            return PENDING
        screened = screen(update, rights, self.limits, mirror)
        if isinstance(screened, Verdict):
            return screened
        mirror.highs.update(screened.highs)
        created: list[Touch] = []
        payload = update
        if not rights.write:
            if screened.items:
                update, created = withhold(update, screened, rights, mirror)
            mirror.watch_unknown_roots()
        before = Before() if rights.unrestricted else mirror.prepare(rights)
        state_before = mirror.doc.get_state()
        batches = mirror.integrate(update, state_before)
        if batches is None:
            return PENDING
        deep = too_deep(batches, self.limits.max_depth, bool(screened.kinds & NESTING_KINDS))
        if deep:
            mirror.stale = True  # the mirror holds it: only a rebuild from the room undoes that
            return refused_whole(deep, limit=True)
        if rights.write and not batches and mirror.doc.get_state() != state_before:
            # New content but no event: it went to a root nobody watches yet (a text
            # file's source that loaded after the guard was built).  Allowed for a
            # writer; watch it from now on.  (A reader's check watched every root first.)
            batches = [Batch(name, []) for name in mirror.watch_unknown_roots()]
        if update is not payload and not created and mirror.doc.get_state() != state_before:
            created = [Touch(None, "document")]  # new, yet nothing anyone can see
        plan = self._plan(batches, rights, before)
        for touch in created:
            plan.note(touch, False)
        if not plan.refused:
            # (a reader's update then held only what the mirror already had)
            return Verdict(accepted=True, forward=payload, touched=tuple(plan.touched))
        return self._refuse(plan, state_before)

    def _plan(self, batches: list[Batch], rights: Rights, before: Before) -> Plan:
        """Every touch judged, and the reverts of the refused ones."""
        mirror = self._mirror
        plan = Plan()
        for batch in batches:
            if batch.root == CELLS and mirror.cells is not None:
                plan_cells(mirror, batch, rights, before, plan)
            else:
                plan_root(mirror, batch, rights, before, plan)
        if not rights.write:
            plan_new_roots(mirror, plan)
        return plan

    def _refuse(self, plan: Plan, state_before: bytes) -> Verdict:
        """Revert the refused part of the update on the mirror; forward the net result."""
        mirror = self._mirror
        try:
            revert(mirror, plan)
        except BaseException as e:
            if type(e).__name__ != "PanicException":  # pycrdt's panics are BaseExceptions
                raise
            mirror.stale = True
            return refused_whole("the update could not be reverted")
        forward = mirror.doc.get_update(state_before)
        return Verdict(False, forward, tuple(plan.touched), tuple(plan.refused))
