"""The domain operations behind the REST API: sessions, members, cell rules,
teams, activity, decisions, hosting and the server-facing side.  No tornado
here: the web layer calls these and turns
:class:`~hub_rtc.manager.errors.RTCError` into HTTP statuses."""

from __future__ import annotations

from ..policy import RTCPolicy
from ..records import Database
from .access.decisions import Decisions
from .access.people import People
from .access.principals import Principals
from .activity.activity import Activity
from .activity.overview import Overview
from .activity.presence import PresenceBook
from .activity.status import Status
from .actor import Actor
from .context import Context, HostingSettings
from .documents.documents import Documents
from .errors import RTCError
from .hosting.baselines import Baselines
from .hosting.hosting import Hosting
from .hosting.servers import Servers
from .hosting.shares import Shares
from .notify import Invalidation, Notifier, NullNotifier
from .ports import Hub, HubDirectory, HubHosting, HubUser, RoomOpener, ServerState, StaticDirectory
from .sessions.cells import Cells
from .sessions.members import Members
from .sessions.sessions import Sessions
from .sessions.sweep import Sweeper
from .sessions.teams import Teams
from .sessions.watching import Watching


class Manager:
    """Everything the service can do, wired to one database, hub, policy and notifier."""

    def __init__(
        self, db: Database, directory: Hub, policy: RTCPolicy, hub_base_url: str = "/",
        hosting: HostingSettings | None = None, notifier: Notifier | None = None,
        replica_seconds: float = 30.0,
    ) -> None:
        self.ctx = Context(db, directory, policy, hub_base_url,
                           hosting or HostingSettings(), notifier or NullNotifier())
        self.people = People(self.ctx)
        principals = Principals(self.ctx, self.people)
        shares = Shares(self.ctx)
        self.hosting = Hosting(self.ctx, shares)
        self.decisions = Decisions(self.ctx, self.people)
        self.sessions = Sessions(self.ctx, self.people, principals, self.hosting, shares,
                                 self.decisions)
        self.members = Members(self.ctx, self.sessions, principals, self.people, self.hosting, shares)
        self.cells = Cells(self.ctx, self.sessions, principals, self.people, self.hosting)
        self.teams = Teams(self.ctx, self.people, self.hosting)
        self.activity = Activity(self.ctx, self.sessions, self.people)
        self.documents = Documents(self.ctx, self.sessions, self.decisions,
                                   replica_seconds=replica_seconds, activity=self.activity)
        self.servers = Servers(self.ctx, self.people, self.hosting, shares)
        self.baselines = Baselines(self.ctx)
        self.sweeper = Sweeper(self.ctx, self.hosting, shares)
        self.presence = PresenceBook(self.ctx, self.people)
        self.watching = Watching(self.ctx, self.sessions, self.people, self.hosting, shares)
        self.status = Status(self.ctx, self.presence)
        self.overview = Overview(self.ctx, self.sessions, self.activity)


__all__ = [
    "Actor", "HostingSettings", "Hub", "HubDirectory", "HubHosting", "HubUser", "Invalidation",
    "Manager", "Notifier", "RTCError", "RoomOpener", "ServerState", "StaticDirectory",
]
