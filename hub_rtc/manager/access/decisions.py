"""``/authorize``: the records and policy fed to the pure decision."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ...decision import Decision, Principal, Resource, SessionView, decide
from ...records import RTCSession, models
from ..actor import SCOPE_AUTHORIZE, Actor
from ..context import Context
from ..errors import Forbidden
from ..validate import folder
from ..views import Serving, load_view
from .kept import Kept
from .people import People


@dataclass(frozen=True)
class Loaded:
    """What decides on one resource, as loaded: kept between requests (:mod:`.kept`)."""

    principal: Principal
    #: None: no such session
    view: SessionView | None
    serving: Serving | None


class Decisions:
    def __init__(self, ctx: Context, people: People) -> None:
        self.ctx = ctx
        self.people = people
        #: the records of recent decisions, while the database's access revision stands
        self.kept: Kept[Loaded] = Kept(ctx.db)

    async def authorize(
        self, caller: Actor, subject: Actor, action: str, resource: Resource
    ) -> Decision:
        """May ``subject`` do ``action`` on ``resource``?  Asked by ``caller``."""
        if subject.name != caller.name and not caller.has(SCOPE_AUTHORIZE):
            raise Forbidden(f"asking about other users needs the {SCOPE_AUTHORIZE} scope")
        path = folder(resource.path, "path") if resource.path is not None else None
        clean = Resource(resource.session_id, path, resource.cell_id)
        found = await self.records(subject, clean)
        return self.decide(found.principal, action, clean, found.view)

    async def records(self, subject: Actor, resource: Resource) -> Loaded:
        """What decides on ``resource`` (its path cleaned) for ``subject``: this is the
        hot path, so the records are kept while the access revision stands and read in
        one transaction otherwise.  A user never seen before is registered first."""
        key = (subject.kind, subject.name, subject.groups, resource)
        found = await self.kept.load(key, lambda db: self._loaded(db, subject, resource))
        if found is None:
            await self.people.principal(subject)
            found = await self.kept.load(key, lambda db: self._loaded(db, subject, resource))
        assert found is not None
        # the principal's watched groups come from the policy, which may have changed
        return Loaded(self.people.in_force(subject, found.principal), found.view, found.serving)

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

    def _loaded(self, db: Session, subject: Actor, resource: Resource) -> Loaded | None:
        found = self.load(db, subject, resource)
        if found is None:
            return None
        principal, view = found
        row = db.get(RTCSession, resource.session_id) if view is not None else None
        return Loaded(principal, view, Serving.of(row) if row is not None else None)
