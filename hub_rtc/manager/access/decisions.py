"""``/authorize``: the records and policy fed to the pure decision."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ...decision import Decision, Principal, Resource, SessionView, decide
from ...records import models
from ..actor import SCOPE_AUTHORIZE, Actor
from ..context import Context
from ..errors import Forbidden
from ..validate import folder
from ..views import load_view
from .people import People


class Decisions:
    def __init__(self, ctx: Context, people: People) -> None:
        self.ctx = ctx
        self.people = people

    async def authorize(
        self, caller: Actor, subject: Actor, action: str, resource: Resource
    ) -> Decision:
        """May ``subject`` do ``action`` on ``resource``?  Asked by ``caller``."""
        if subject.name != caller.name and not caller.has(SCOPE_AUTHORIZE):
            raise Forbidden(f"asking about other users needs the {SCOPE_AUTHORIZE} scope")
        path = folder(resource.path, "path") if resource.path is not None else None
        clean = Resource(resource.session_id, path, resource.cell_id)
        # One transaction for the principal and the records: this is the hot path.
        found = await self.ctx.db.run(lambda db: self.load(db, subject, clean))
        if found is None:  # first sight of this user: register them, then decide
            await self.people.principal(subject)
            found = await self.ctx.db.run(lambda db: self.load(db, subject, clean))
        assert found is not None
        principal, view = found
        return self.decide(principal, action, clean, view)

    def decide(self, principal: Principal, action: str, resource: Resource,
               view: SessionView | None) -> Decision:
        """The decision on records already loaded (``resource``'s path cleaned, ``view``
        loaded for it, as :meth:`load` does)."""
        return decide(principal, action, resource, view, self.ctx.policy.decision_view(),
                      models.utcnow())

    def load(
        self, db: Session, subject: Actor, resource: Resource
    ) -> tuple[Principal, SessionView | None] | None:
        """The principal and the session's view that decide on ``resource``, in one
        transaction; None for a user never seen before (register them first)."""
        principal = self.people.principal_in(db, subject)
        if principal is None:
            return None
        view = load_view(db, resource.session_id, principal, resource.path, resource.cell_id)
        return principal, view
