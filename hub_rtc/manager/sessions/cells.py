"""Cell rules: lock a cell, or assign it to users and teams.

A rule names a notebook *relative to the session folder* and a cell id.  A
rule that can never protect anything (not a notebook, or a path that repeats
the session folder, so it points one folder too deep) is refused; one set
ahead of its notebook or cell is kept, and the answer says it is not applied
yet.  Whether the notebook and cell exist is read from the session's server
through a :data:`~hub_rtc.manager.ports.NotebookProbe` the web layer passes in
(nothing here speaks HTTP); when that server cannot be asked, the answer says
"not verified".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...decision import WRITER_KINDS
from ...decision.grants import writers_refusal
from ...records import CellRule, CellRuleWriter, RTCSession, User
from ..access.people import People
from ..access.principals import PrincipalKey, Principals, entry_kind
from ..actor import Actor
from ..context import Context
from ..errors import Invalid, NotFound
from ..hosting.hosting import Hosting, serves
from ..notify import CELL_RULES_CHANGED, Enforcement
from ..ports import Found, NotebookProbe, ServerKey
from ..validate import folder
from ..views import iso, writer_names
from .sessions import Sessions

#: hosting states in which the session's server can be asked about its notebooks


# -- the path logic (pure) ---------------------------------------------------------------


def notebook_path(raw: str) -> str:
    """The rule's path, normalised; 422 unless it names a notebook."""
    path = folder(raw, "path")
    if not path:
        raise Invalid("path: name the notebook the cell is in (relative to the session folder)")
    if not path.endswith(".ipynb") or path.rsplit("/", 1)[-1] == ".ipynb":
        raise Invalid(f"path: {raw!r} is not a notebook (.ipynb): cell rules apply to notebooks")
    return path


def repeated_root(root: str, path: str) -> str | None:
    """``path`` without the session folder it repeats, if it starts with that folder.

    ``lab1/nb.ipynb`` in a session rooted at ``lab1`` (or at ``course/lab1``)
    means ``lab1/lab1/nb.ipynb`` on the server: almost surely meant ``nb.ipynb``.
    """
    if not root:
        return None
    for prefix in (root, root.rsplit("/", 1)[-1]):
        if path.startswith(prefix + "/"):
            return path[len(prefix) + 1:]
    return None


def where(root: str) -> str:
    return f"the session folder {root!r}" if root else "the session's folder (the server's top folder)"


def applied(root: str, path: str, cell_id: str, found: Found) -> tuple[bool | None, str]:
    """Whether a rule on ``cell_id`` of ``path`` protects a cell now, and why not.

    Raises :class:`Invalid` for a rule that points where no notebook of the
    session is and that looks like a slip: a path repeating the session folder.
    """
    hint = repeated_root(root, path)
    if found.kind == "notebook":
        if cell_id in found.cell_ids:
            return True, ""
        return False, (f"no cell {cell_id!r} in {path!r} yet: the rule applies once a cell"
                       " with that id is in the notebook")
    if found.kind == "missing":
        if hint is not None:
            raise Invalid(f"path is relative to the session folder {root!r}: did you mean {hint!r}?")
        return False, (f"{path!r} does not exist yet in {where(root)}: the rule applies once"
                       " that notebook is there")
    why = f"not verified: {found.why or 'the session server could not be asked'}"
    if hint is not None:
        why += f" (the path is relative to the session folder {root!r}: did you mean {hint!r}?)"
    return None, why


# -- the operations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    root: str
    server: ServerKey
    owner: str
    serving: bool
    state_message: str


class Cells:
    def __init__(self, ctx: Context, sessions: Sessions, principals: Principals, people: People,
                 hosting: Hosting) -> None:
        self.sessions = sessions
        self.principals = principals
        self.people = people
        self.hosting = hosting
        self.db = ctx.db

    async def rules(
        self, actor: Actor, session_id: str, path: str | None = None
    ) -> list[dict[str, Any]]:
        await self.sessions.access(actor, session_id)
        where_ = folder(path, "path") if path is not None else None
        return await self.db.run(lambda db: _rules_json(db, session_id, where_))

    async def put(self, actor: Actor, session_id: str, body: dict[str, Any],
                  notebooks: NotebookProbe | None = None) -> tuple[dict[str, Any], bool]:
        """Set the rule of one cell; returns it and whether it is new.

        The rule carries ``applied``/``why`` (does it protect a cell now?) and
        ``enforced``/``pending_servers`` (is it in force on the server yet?).
        """
        await self.sessions.manageable(actor, session_id)
        path, cell_id, rule = notebook_path(body["path"]), body["cell_id"], body["rule"]
        writers = await self._writers(rule, body.get("writers", []))
        is_applied, why = await self.check(session_id, path, cell_id, notebooks)
        me = await self.people.user_id_of(actor)

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
        enforcement = await self.hosting.tell([session_id], None, CELL_RULES_CHANGED,
                                                       reconcile=False)
        rules = await self.db.run(lambda db: _rules_json(db, session_id, path, cell_id))
        return {**rules[0], "applied": is_applied, "why": why, **enforcement.json()}, created

    async def check(self, session_id: str, path: str, cell_id: str,
                    notebooks: NotebookProbe | None) -> tuple[bool | None, str]:
        """Whether a rule on ``cell_id`` of ``path`` would protect a cell now (see :func:`applied`)."""
        at = await self.db.run(lambda db: _where(db, session_id))
        if notebooks is None:
            found = Found("unknown", why="the service cannot read the session's notebooks here")
        elif not at.serving:
            found = Found("unknown", why=f"the session's server is not ready ({at.state_message})")
        else:
            on_server = f"{at.root}/{path}" if at.root else path
            found = await notebooks(at.server, on_server, at.owner)
        return applied(at.root, path, cell_id, found)

    async def _writers(self, rule: str, entries: list[dict[str, Any]]) -> list[PrincipalKey]:
        refused = writers_refusal(rule, len(entries))
        if refused is not None:
            raise Invalid(refused)
        keys = []
        for entry in entries:
            kind, name = entry_kind(entry)
            keys.append(await self.principals.resolve(kind, name, WRITER_KINDS))
        if len({(k.kind, k.key) for k in keys}) != len(keys):
            raise Invalid("writers: a writer is listed twice")
        return keys

    async def delete(self, actor: Actor, session_id: str, path: str, cell_id: str) -> Enforcement:
        """Lift one rule; answered once the session's server confirms (or says it did not)."""
        await self.sessions.manageable(actor, session_id)
        clean = folder(path, "path")

        def remove(db: Session) -> None:
            row = _find(db, session_id, clean, cell_id)
            if row is None:
                raise NotFound(f"no rule for cell {cell_id!r} of {path!r}")
            db.delete(row)

        await self.db.run(remove)
        return await self.hosting.tell([session_id], None, CELL_RULES_CHANGED,
                                       reconcile=False)


def _where(db: Session, session_id: str) -> _Where:
    row = db.get(RTCSession, session_id)
    assert row is not None  # manageable() found it
    serving = row.state == "active" and serves(row.hosting_state)
    message = row.hosting_message if row.state == "active" else "the session has ended"
    return _Where(row.root or "", (row.server_user, row.server_name), row.owner.name, serving,
                  message or row.hosting_state)


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
