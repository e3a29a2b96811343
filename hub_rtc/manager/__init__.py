"""The domain operations behind the REST API: sessions, members, cell rules,
teams, activity, decisions, hosting and the server-facing side.  No tornado
here: the web layer calls these and turns
:class:`~hub_rtc.manager.errors.RTCError` into HTTP statuses."""

from __future__ import annotations

from ..policy import RTCPolicy
from ..records import Database
from .activity import Activity
from .actor import Actor
from .baselines import Baselines
from .cells import Cells
from .context import Context, HostingSettings
from .decisions import Decisions
from .directory import Hub, HubDirectory, HubHosting, HubUser, ServerState, StaticDirectory
from .documents import Documents, RoomOpener
from .errors import RTCError
from .hosting import Hosting
from .members import Members
from .notify import Invalidation, Notifier, NullNotifier
from .overview import Overview
from .people import People
from .presence import PresenceBook
from .principals import Principals
from .servers import Servers
from .sessions import Sessions
from .shares import Shares
from .status import Status
from .sweep import Sweeper
from .teams import Teams
from .watching import Watching


class Manager:
    """Everything the service can do, wired to one database, hub, policy and notifier."""

    def __init__(
        self, db: Database, directory: Hub, policy: RTCPolicy, hub_base_url: str = "/",
        hosting: HostingSettings | None = None, notifier: Notifier | None = None,
    ) -> None:
        self.ctx = Context(db, directory, policy, hub_base_url,
                           hosting or HostingSettings(), notifier or NullNotifier())
        self.people = People(self.ctx)
        principals = Principals(self.ctx, self.people)
        self.hosting = Hosting(self.ctx, Shares(self.ctx))
        self.sessions = Sessions(self.ctx, self.people, principals, self.hosting)
        self.members = Members(self.sessions, principals)
        self.cells = Cells(self.sessions, principals)
        self.teams = Teams(self.ctx, self.people, self.hosting)
        self.activity = Activity(self.sessions, self.people)
        self.decisions = Decisions(self.ctx, self.people)
        self.documents = Documents(self.sessions, self.decisions)
        self.servers = Servers(self.ctx, self.people, self.hosting)
        self.baselines = Baselines(self.ctx)
        self.sweeper = Sweeper(self.ctx, self.hosting)
        self.presence = PresenceBook(self.ctx, self.people)
        self.watching = Watching(self.sessions)
        self.status = Status(self.ctx, self.presence)
        self.overview = Overview(self.sessions, self.activity)


__all__ = [
    "Actor", "HostingSettings", "Hub", "HubDirectory", "HubHosting", "HubUser", "Invalidation",
    "Manager", "Notifier", "RTCError", "RoomOpener", "ServerState", "StaticDirectory",
]
