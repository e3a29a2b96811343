"""Cell rules: lock a cell, or assign it to users and teams."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..records import CellRule, CellRuleWriter, User
from .actor import Actor
from .errors import Invalid, NotFound
from .notify import CELL_RULES_CHANGED
from .principals import PrincipalKey, Principals, entry_kind
from .sessions import Sessions
from .validate import folder
from .views import iso, writer_names


class Cells:
    def __init__(self, sessions: Sessions, principals: Principals) -> None:
        self.sessions = sessions
        self.principals = principals
        self.db = sessions.ctx.db

    async def rules(
        self, actor: Actor, session_id: str, path: str | None = None
    ) -> list[dict[str, Any]]:
        await self.sessions.access(actor, session_id)
        where = folder(path, "path") if path is not None else None
        return await self.db.run(lambda db: _rules_json(db, session_id, where))

    async def put(self, actor: Actor, session_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Set the rule of one cell; returns it and whether it is new."""
        await self.sessions.manageable(actor, session_id)
        path, cell_id, rule = folder(body["path"], "path"), body["cell_id"], body["rule"]
        if not path:
            raise Invalid("path: name the notebook the cell is in")
        writers = await self._writers(rule, body.get("writers", []))
        me = await self.sessions.people.user_id_of(actor)

        def apply(db: Session) -> bool:
            row = _find(db, session_id, path, cell_id)
            created = row is None
            if row is None:
                row = CellRule(session_id=session_id, path=path, cell_id=cell_id)
                db.add(row)
            row.rule, row.created_by_id = rule, me
            row.writers = [CellRuleWriter(kind=w.kind, principal=w.key) for w in writers]
            return created

        created = await self.db.run(apply)
        await self.sessions.hosting.tell([session_id], None, CELL_RULES_CHANGED, reconcile=False)
        rules = await self.db.run(lambda db: _rules_json(db, session_id, path, cell_id))
        return rules[0], created

    async def _writers(self, rule: str, entries: list[dict[str, Any]]) -> list[PrincipalKey]:
        if rule == "locked" and entries:
            raise Invalid("writers: a locked cell has no writers; use rule 'assigned'")
        if rule == "assigned" and not entries:
            raise Invalid("writers: an assigned cell needs at least one user or team")
        keys = []
        for entry in entries:
            kind, name = entry_kind(entry)
            keys.append(await self.principals.resolve(kind, name, allow_group=False))
        if len({(k.kind, k.key) for k in keys}) != len(keys):
            raise Invalid("writers: a writer is listed twice")
        return keys

    async def delete(self, actor: Actor, session_id: str, path: str, cell_id: str) -> None:
        await self.sessions.manageable(actor, session_id)
        where = folder(path, "path")

        def remove(db: Session) -> None:
            row = _find(db, session_id, where, cell_id)
            if row is None:
                raise NotFound(f"no rule for cell {cell_id!r} of {path!r}")
            db.delete(row)

        await self.db.run(remove)
        await self.sessions.hosting.tell([session_id], None, CELL_RULES_CHANGED, reconcile=False)


def _find(db: Session, session_id: str, path: str, cell_id: str) -> CellRule | None:
    return db.scalar(
        select(CellRule).where(
            CellRule.session_id == session_id, CellRule.path == path, CellRule.cell_id == cell_id
        )
    )


def _rules_json(
    db: Session, session_id: str, path: str | None = None, cell_id: str | None = None
) -> list[dict[str, Any]]:
    query = select(CellRule).where(CellRule.session_id == session_id)
    if path is not None:
        query = query.where(CellRule.path == path)
    if cell_id is not None:
        query = query.where(CellRule.cell_id == cell_id)
    out = []
    for row in db.scalars(query.order_by(CellRule.path, CellRule.id)):
        by = db.scalar(select(User.name).where(User.id == row.created_by_id))
        out.append({
            "path": row.path,
            "cell_id": row.cell_id,
            "rule": row.rule,
            "writers": writer_names(db, row),
            "created_by": by,
            "created": iso(row.created),
        })
    return out
