"""The domain operations behind the REST API: sessions, members, cell rules,
teams, activity and decisions.  No tornado here: the web layer calls these
and turns :class:`~hub_rtc.manager.errors.RTCError` into HTTP statuses."""

from __future__ import annotations

from ..policy import RTCPolicy
from ..records import Database
from .activity import Activity
from .actor import Actor
from .cells import Cells
from .context import Context
from .decisions import Decisions
from .directory import HubDirectory, HubUser, StaticDirectory
from .errors import RTCError
from .members import Members
from .people import People
from .principals import Principals
from .sessions import Sessions
from .teams import Teams


class Manager:
    """Everything the service can do, wired to one database, hub and policy."""

    def __init__(
        self, db: Database, directory: HubDirectory, policy: RTCPolicy, hub_base_url: str = "/"
    ) -> None:
        self.ctx = Context(db, directory, policy, hub_base_url)
        self.people = People(self.ctx)
        principals = Principals(self.ctx, self.people)
        self.sessions = Sessions(self.ctx, self.people, principals)
        self.members = Members(self.sessions, principals)
        self.cells = Cells(self.sessions, principals)
        self.teams = Teams(self.ctx, self.people)
        self.activity = Activity(self.sessions, self.people)
        self.decisions = Decisions(self.ctx, self.people)


__all__ = ["Actor", "HubDirectory", "HubUser", "Manager", "RTCError", "StaticDirectory"]
