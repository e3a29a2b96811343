"""The last authorized content of ruled cells, kept for the servers that host them.

A shared server's notebook file and update store are within reach of code
run in its kernels, so neither can say what a locked cell last was.  The
guarded room reports it here each time it saves a notebook with ruled
cells, and asks for it each time it loads one: whatever the file says
about a ruled cell is then put back to this.  Only the server hosting the
session may read or write its baselines, and only for cells that have a
rule now.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..records import CellBaseline, CellRule, models
from .actor import Actor
from .context import Context
from .errors import Invalid
from .rights import Hosted, covering, hosted_sessions, relative
from .servers import server_of
from .validate import folder
from .views import iso

#: a ruled cell's JSON above this is not kept: a baseline is for sources and
#: small outputs, not for megabytes of images (the cell is then unprotected
#: against the file, and the server says so in its log)
MAX_CELL_BYTES = 2 * 1024 * 1024

_NONE: dict[str, Any] = {"session": None, "path": None, "ruled": [], "cells": {}}


class Baselines:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def read(self, caller: Actor, body: dict[str, Any]) -> dict[str, Any]:
        """The ruled cells of ``body["path"]`` (server-relative) and their baselines."""
        server = server_of(caller, body["server_name"], body.get("server_user"))
        path = _notebook_path(body["path"])
        return await self.ctx.db.run(lambda db: self._read(db, server, path))

    def _read(self, db: Session, server: tuple[str, str], path: str) -> dict[str, Any]:
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
        return {"session": found.id, "path": rel, "ruled": sorted(ruled),
                "cells": {row.cell_id: _json(row) for row in rows}}

    async def record(self, caller: Actor, body: dict[str, Any]) -> dict[str, Any]:
        """Keep what the calling server's room saved for ruled cells; others are ignored."""
        server = server_of(caller, body["server_name"], body.get("server_user"))
        path = _notebook_path(body["path"])
        cells: dict[str, dict[str, Any]] = body["cells"]
        for cell_id, entry in cells.items():
            if len(json.dumps(entry.get("cell") or {})) > MAX_CELL_BYTES:
                raise Invalid(f"cells.{cell_id}: a baseline is at most {MAX_CELL_BYTES} bytes of JSON")
        return await self.ctx.db.run(lambda db: self._record(db, server, path, cells))

    def _record(self, db: Session, server: tuple[str, str], path: str,
                cells: dict[str, dict[str, Any]]) -> dict[str, Any]:
        found = _session(db, server, path)
        if found is None:
            return {"session": None, "recorded": []}
        rel = relative(path, found.root)
        ruled = _ruled(db, found.id, rel)
        kept = sorted(cid for cid in cells if cid in ruled)
        for cell_id in kept:
            _upsert(db, found.id, rel, cell_id, cells[cell_id])
        return {"session": found.id, "recorded": kept}


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


def _upsert(db: Session, session_id: str, path: str, cell_id: str, entry: dict[str, Any]) -> None:
    row = db.get(CellBaseline, (session_id, path, cell_id))
    if row is None:
        row = CellBaseline(session_id=session_id, path=path, cell_id=cell_id)
        db.add(row)
    row.cell = json.dumps(entry.get("cell") or {}, sort_keys=True)
    row.after = entry.get("after")
    row.present = bool(entry.get("present", True))
    row.updated = models.utcnow()


def _json(row: CellBaseline) -> dict[str, Any]:
    return {"cell": json.loads(row.cell), "after": row.after, "present": row.present,
            "updated": iso(row.updated)}
