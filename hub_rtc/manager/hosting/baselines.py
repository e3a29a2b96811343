"""The last authorized content of notebooks, kept for the servers that host them.

A shared server's notebook file and update store are within reach of code
run in its kernels, so neither can say what a locked cell last was.  The
guarded room reports it here each time it saves a notebook with ruled
cells, and asks for it each time it loads one: whatever the file says
about a ruled cell is then put back to this.  Only the server hosting the
session may read or write its baselines.

Where someone may run code but not edit (a runner), the file may change
nothing but outputs and execution counts (:func:`~hub_rtc.decision.file_may`
says so), so the whole notebook's shape is kept too, leanly: every cell
without its outputs (they are the file's to change), in the order of
``notebook_baselines.order``, with the notebook's metadata.  Where nobody is
a runner it is not needed, and is forgotten (a stale one would later put
back edits made meanwhile).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ...decision import GrantView, PolicyView, SessionView, file_may
from ...decision.file import RUN, FileRights
from ...guard.rights import RUN_PARTS  # a run's parts are the file's to change: never kept
from ...records import CellBaseline, CellRule, Grant, NotebookBaseline, Team, User, models
from ...records.queries import Hosted, hosted_sessions
from ..access.rights import covering, relative
from ..actor import Actor
from ..context import Context
from ..errors import Invalid
from ..validate import folder
from ..views import iso
from .servers import server_of

log = logging.getLogger("hub_rtc.baselines")

#: a ruled cell's JSON above this is not kept: a baseline is for sources and
#: small outputs, not for megabytes of images (the cell is then unprotected
#: against the file, and the server says so in its log)
MAX_CELL_BYTES = 2 * 1024 * 1024
#: a whole notebook's baseline (its cells without outputs, and its shape) above
#: this is not kept: while its room is closed, the file is then believed for its
#: unruled cells, and both the service and the server say so in their logs
MAX_NOTEBOOK_BYTES = 8 * 1024 * 1024

#: what the whole notebook's baseline is after a PUT
KEPT, NONE, TOO_LARGE = "kept", "none", "too_large"

_NONE: dict[str, Any] = {"session": None, "path": None, "ruled": [], "cells": {},
                         "file_may": "write", "notebook": None}


class Baselines:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def read(self, caller: Actor, body: dict[str, Any]) -> dict[str, Any]:
        """The ruled cells of ``body["path"]`` (server-relative), their baselines, what
        the file may change and, where that is a runner's, the whole notebook's baseline."""
        server = server_of(caller, body["server_name"], body.get("server_user"))
        path = _notebook_path(body["path"])
        policy = self.ctx.policy.decision_view()
        return await self.ctx.db.run(lambda db: self._read(db, server, path, policy))

    def _read(self, db: Session, server: tuple[str, str], path: str, policy: PolicyView
              ) -> dict[str, Any]:
        found = _session(db, server, path)
        if found is None:
            return dict(_NONE)
        rel = relative(path, found.root)
        ruled = _ruled(db, found.id, rel)
        # a baseline from before the cell's rule was made belongs to an older rule
        rows = db.scalars(select(CellBaseline).join(CellRule, (
            CellRule.session_id == CellBaseline.session_id) & (CellRule.path == CellBaseline.path)
            & (CellRule.cell_id == CellBaseline.cell_id)).where(
            CellBaseline.session_id == found.id, CellBaseline.path == rel,
            CellBaseline.updated >= CellRule.created))
        cells = {row.cell_id: _json(row) for row in rows}
        rights = _file_rights(db, found, policy, models.utcnow())
        if rights.may == RUN:
            notebook = _whole(db, found.id, rel)
        else:
            notebook = None
            _forget(db, found.id, rel, ruled)
        return {"session": found.id, "path": rel, "ruled": sorted(ruled), "cells": cells,
                "file_may": rights.may, "notebook": notebook}

    async def record(self, caller: Actor, body: dict[str, Any]) -> dict[str, Any]:
        """Keep what the calling server's room saved: ruled cells always; the other
        cells (without outputs) and the notebook's shape where the file is a runner's."""
        server = server_of(caller, body["server_name"], body.get("server_user"))
        path = _notebook_path(body["path"])
        cells: dict[str, dict[str, Any]] = body["cells"]
        for cell_id, entry in cells.items():
            if len(json.dumps(entry.get("cell") or {})) > MAX_CELL_BYTES:
                raise Invalid(f"cells.{cell_id}: a baseline is at most {MAX_CELL_BYTES} bytes of JSON")
        policy = self.ctx.policy.decision_view()
        return await self.ctx.db.run(lambda db: self._record(db, server, path, body, policy))

    def _record(self, db: Session, server: tuple[str, str], path: str, body: dict[str, Any],
                policy: PolicyView) -> dict[str, Any]:
        found = _session(db, server, path)
        if found is None:
            return {"session": None, "recorded": [], "file_may": "write", "notebook": NONE}
        rel = relative(path, found.root)
        ruled = _ruled(db, found.id, rel)
        cells: dict[str, dict[str, Any]] = body["cells"]
        rights = _file_rights(db, found, policy, models.utcnow())
        kept = sorted(cid for cid in cells if cid in ruled)
        for cell_id in kept:
            _upsert(db, found.id, rel, cell_id, cells[cell_id])
        if rights.may != RUN:
            _forget(db, found.id, rel, ruled)
            return {"session": found.id, "recorded": kept, "file_may": rights.may, "notebook": NONE}
        others = sorted(cid for cid in cells if cid not in ruled)
        for cell_id in others:
            _keep_lean(db, found.id, rel, cell_id, cells[cell_id])
        if "notebook" in body:
            _keep_shape(db, found.id, rel, body["notebook"])
        db.flush()
        size = _lean_size(db, found.id, rel, ruled)
        if size > MAX_NOTEBOOK_BYTES:
            log.warning("session %s: the baseline of %s is %d bytes, above %d: not kept; while its"
                        " room is closed, the file is believed for its unruled cells",
                        found.id, rel, size, MAX_NOTEBOOK_BYTES)
            _forget(db, found.id, rel, ruled)
            state = TOO_LARGE
        else:
            state = KEPT if db.get(NotebookBaseline, (found.id, rel)) is not None else NONE
        recorded = sorted([*kept, *(cid for cid in others if cells[cid].get("present", True))])
        return {"session": found.id, "recorded": recorded, "file_may": rights.may,
                "notebook": state}


def _notebook_path(raw: str) -> str:
    path = folder(raw, "path")
    if not path:
        raise Invalid("path: name a notebook, relative to the server's root")
    return path


def _session(db: Session, server: tuple[str, str], path: str) -> Hosted | None:
    found = covering(hosted_sessions(db, server, models.utcnow()), path)
    return found if found is not None and relative(path, found.root) else None


def _ruled(db: Session, session_id: str, path: str) -> set[str]:
    return set(db.scalars(select(CellRule.cell_id).where(
        CellRule.session_id == session_id, CellRule.path == path)))


def _file_rights(db: Session, s: Hosted, policy: PolicyView, now: datetime) -> FileRights:
    """What the decision says the session's files may change, from every grant it holds."""
    rows = db.execute(
        select(Grant.kind, Grant.principal, Grant.role, Grant.expires_at, User.name, Team.name)
        .outerjoin(User, (Grant.kind == "user") & (User.id == Grant.principal))
        .outerjoin(Team, (Grant.kind == "team") & (Team.id == Grant.principal))
        .where(Grant.session_id == s.id)
    ).all()
    grants = tuple(GrantView.from_record(kind, user or team or principal, role, expires)
                   for kind, principal, role, expires, user, team in rows)
    view = SessionView(id=s.id, owner=s.owner, expires_at=s.expires_at, course=s.course,
                       grants=grants)
    return file_may(view, policy, now)


def _upsert(db: Session, session_id: str, path: str, cell_id: str, entry: dict[str, Any]) -> None:
    row = db.get(CellBaseline, (session_id, path, cell_id))
    if row is None:
        row = CellBaseline(session_id=session_id, path=path, cell_id=cell_id)
        db.add(row)
    row.cell = json.dumps(entry.get("cell") or {}, sort_keys=True)
    row.after = entry.get("after")
    row.present = bool(entry.get("present", True))
    row.updated = models.utcnow()


def _keep_lean(db: Session, session_id: str, path: str, cell_id: str, entry: dict[str, Any]
               ) -> None:
    """An unruled cell: its content without outputs, or no row once it is gone."""
    if not entry.get("present", True):
        row = db.get(CellBaseline, (session_id, path, cell_id))
        if row is not None:
            db.delete(row)
        return
    _upsert(db, session_id, path, cell_id, {"cell": _lean(entry.get("cell") or {}), "after": None})


def _keep_shape(db: Session, session_id: str, path: str, shape: dict[str, Any] | None) -> None:
    row = db.get(NotebookBaseline, (session_id, path))
    if shape is None:  # the server has none to give (it found the notebook too large)
        if row is not None:
            db.delete(row)
        return
    if row is None:
        row = NotebookBaseline(session_id=session_id, path=path)
        db.add(row)
    row.notebook = json.dumps({key: shape.get(key) for key in (
        "metadata", "nbformat", "nbformat_minor", "order")}, sort_keys=True)
    row.updated = models.utcnow()


def _lean_size(db: Session, session_id: str, path: str, ruled: set[str]) -> int:
    """Bytes of JSON the whole notebook's baseline takes beyond its ruled cells."""
    cells = db.scalar(select(func.coalesce(func.sum(func.length(CellBaseline.cell)), 0)).where(
        CellBaseline.session_id == session_id, CellBaseline.path == path,
        CellBaseline.cell_id.not_in(ruled)))
    shape = db.scalar(select(func.coalesce(func.length(NotebookBaseline.notebook), 0)).where(
        NotebookBaseline.session_id == session_id, NotebookBaseline.path == path))
    return int(cells or 0) + int(shape or 0)


def _forget(db: Session, session_id: str, path: str, ruled: set[str]) -> None:
    """Drop the whole notebook's baseline, keeping ruled cells' (needed whoever runs code)."""
    db.execute(delete(NotebookBaseline).where(
        NotebookBaseline.session_id == session_id, NotebookBaseline.path == path))
    db.execute(delete(CellBaseline).where(
        CellBaseline.session_id == session_id, CellBaseline.path == path,
        CellBaseline.cell_id.not_in(ruled)))


def _whole(db: Session, session_id: str, path: str) -> dict[str, Any] | None:
    """The whole notebook's baseline, cells without outputs in order; None if there is
    none or a cell of it is missing (never half a notebook: the file is then believed)."""
    row = db.get(NotebookBaseline, (session_id, path))
    if row is None:
        return None
    shape = json.loads(row.notebook)
    order = [str(cid) for cid in shape.get("order") or ()]
    rows = {r.cell_id: r for r in db.scalars(select(CellBaseline).where(
        CellBaseline.session_id == session_id, CellBaseline.path == path))}
    cells = []
    for cell_id in order:
        found = rows.get(cell_id)
        if found is None or not found.present:
            return None
        cells.append(_lean(json.loads(found.cell)))
    return {"metadata": shape.get("metadata") or {}, "nbformat": shape.get("nbformat"),
            "nbformat_minor": shape.get("nbformat_minor"), "order": order, "cells": cells}


def _lean(cell: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in cell.items() if key not in RUN_PARTS}


def _json(row: CellBaseline) -> dict[str, Any]:
    return {"cell": json.loads(row.cell), "after": row.after, "present": row.present,
            "updated": iso(row.updated)}
