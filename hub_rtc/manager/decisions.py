"""``/authorize``: the records and policy fed to the pure decision."""

from __future__ import annotations

from ..decision import Decision, Resource, decide
from ..records import models
from .actor import SCOPE_AUTHORIZE, Actor
from .context import Context
from .errors import Forbidden
from .people import People
from .validate import folder
from .views import load_view


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
        principal = await self.people.principal(subject)
        path = folder(resource.path, "path") if resource.path is not None else None
        clean = Resource(resource.session_id, path, resource.cell_id)
        view = await self.ctx.db.run(
            lambda db: load_view(db, clean.session_id, principal, clean.path, clean.cell_id)
        )
        policy = self.ctx.policy.decision_view()
        return decide(principal, action, clean, view, policy, models.utcnow())
