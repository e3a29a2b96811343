"""What the domain needs to know about the hub and the shared servers, and asks
of them, as protocols.

The service's adapters (:mod:`hub_rtc.adapters`) implement them over
JupyterHub's REST API and the servers' HTTP and websocket APIs; unit tests
pass plain in-memory ones.  Keeping them abstract is what keeps tornado out
of the domain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..protocol import Channel
from ..records import models
from ..records.queries import ServerKey


@dataclass(frozen=True)
class HubUser:
    name: str
    groups: frozenset[str] = frozenset()
    created: datetime | None = None


@dataclass(frozen=True)
class ServerState:
    """A server the hub knows as active (starting, running or stopping)."""

    ready: bool
    #: the hub's start time of the current run (the hub's clock)
    started: datetime | None = None
    pending: str | None = None


class HostingError(RuntimeError):
    """The hub refused or failed a hosting step.

    ``retry`` is False when asking again cannot help (the hub said 4xx, e.g.
    the user to share with no longer exists).
    """

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class HubDirectory(Protocol):
    async def user(self, name: str, *, fresh: bool = False) -> HubUser | None:
        """The hub user called ``name``, or None; ``fresh`` skips any cache."""

    async def group_exists(self, name: str) -> bool:
        """Whether the hub has a group called ``name``."""


class HubHosting(Protocol):
    """What session hosting asks of the hub (scopes: see the drop-in)."""

    async def server(self, user: str, name: str) -> ServerState | None:
        """The active server ``user``/``name`` (never cached), or None if it is not active."""

    async def active_servers(self) -> dict[ServerKey, ServerState]:
        """Every active server of the hub, in one sweep."""

    async def create_user(self, name: str) -> None:
        """Create hub user ``name``; nothing if it exists."""

    async def start_server(self, user: str, name: str, timeout: float) -> ServerState:
        """Start the server and wait until the hub calls it ready; HostingError if not."""

    async def stop_server(self, user: str, name: str) -> None:
        """Stop the server; nothing if it is not running."""

    async def share(self, server: ServerKey, kind: str, principal: str) -> None:
        """Share ``server`` with hub user or group ``principal`` (kind "user" | "group")."""

    async def unshare(self, server: ServerKey, kind: str, principal: str) -> None:
        """Withdraw that share; nothing if there is none."""


class Hub(HubDirectory, HubHosting, Protocol):
    """Everything the domain asks of the hub."""


@dataclass
class StaticDirectory:
    """An in-memory hub: for unit tests and benchmarks of pure logic.

    Servers start at once and are ready; ``start_error`` makes starts fail.
    ``shares`` holds (server user, server name, kind, principal).
    """

    users: dict[str, HubUser] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)
    servers: dict[ServerKey, ServerState] = field(default_factory=dict)
    shares: set[tuple[str, str, str, str]] = field(default_factory=set)
    start_error: str | None = None
    #: every call to a hosting method, in order, for tests to read
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def add(self, name: str, *groups: str, created: datetime | None = None) -> HubUser:
        user = HubUser(name, frozenset(groups), created)
        self.users[name] = user
        self.groups.update(groups)
        return user

    def run(self, user: str, name: str = "", started: datetime | None = None) -> ServerState:
        """Mark a server running, as if its owner had started it at ``started``."""
        state = ServerState(True, started or models.utcnow())
        self.servers[(user, name)] = state
        return state

    def shared_with(self, user: str, name: str = "") -> set[tuple[str, str]]:
        return {(k, p) for u, n, k, p in self.shares if (u, n) == (user, name)}

    async def user(self, name: str, *, fresh: bool = False) -> HubUser | None:
        return self.users.get(name)

    async def group_exists(self, name: str) -> bool:
        return name in self.groups

    async def server(self, user: str, name: str) -> ServerState | None:
        return self.servers.get((user, name))

    async def active_servers(self) -> dict[ServerKey, ServerState]:
        return dict(self.servers)

    async def create_user(self, name: str) -> None:
        self.calls.append(("create_user", name))
        self.users.setdefault(name, HubUser(name))

    async def start_server(self, user: str, name: str, timeout: float) -> ServerState:
        self.calls.append(("start_server", user, name))
        if self.start_error:
            raise HostingError(self.start_error)
        return self.servers.get((user, name)) or self.run(user, name)

    async def stop_server(self, user: str, name: str) -> None:
        self.calls.append(("stop_server", user, name))
        self.servers.pop((user, name), None)

    async def share(self, server: ServerKey, kind: str, principal: str) -> None:
        self.calls.append(("share", *server, kind, principal))
        if kind == "user" and principal not in self.users:
            raise HostingError(f"No such user: {principal}", retry=False)
        self.shares.add((*server, kind, principal))

    async def unshare(self, server: ServerKey, kind: str, principal: str) -> None:
        self.calls.append(("unshare", *server, kind, principal))
        self.shares.discard((*server, kind, principal))


# -- the shared servers, as a user sees them (the adapters' upstream client) --------------


@dataclass(frozen=True)
class Found:
    """What the session's server says is at a notebook path."""

    #: "notebook" (it is one: ``cell_ids``), "missing" (nothing there), or
    #: "unknown" (the server could not be asked or did not say: ``why``)
    kind: str
    cell_ids: frozenset[str] = frozenset()
    why: str = ""


#: reads a notebook of a server: (server, path from the server's root, hub user to
#: read as) -> what is there.  Never raises: what went wrong is a Found("unknown").
NotebookProbe = Callable[[ServerKey, str, str], Awaitable[Found]]


class Contents(Protocol):
    """Reads a server's contents API as a hub user (paths from the server's root).
    Raises :class:`LookupError` with why when the server does not answer with one."""

    async def directory(self, server: ServerKey, path: str, as_user: str) -> dict[str, Any]:
        """The model of a folder, its entries as its ``content``."""

    async def notebook(self, server: ServerKey, path: str, as_user: str) -> dict[str, Any]:
        """The model of a notebook, the nbformat JSON as its ``content``."""


#: opens the room of a notebook: (server, path on the server, hub user to act as).
#: Raises :class:`~hub_rtc.manager.errors.RTCError` (403, 404, 503 …) if it cannot
#: (:func:`~hub_rtc.manager.documents.place.refusal` says which).
RoomOpener = Callable[[ServerKey, str, str], Awaitable[Channel]]


class OpenFailure(Protocol):
    """Why a server would not open a room (the shape of the upstream client's error)."""

    @property
    def status(self) -> int:
        """The HTTP status (599: the server could not be reached)."""

    @property
    def message(self) -> str: ...

    @property
    def transient(self) -> bool:
        """Worth trying again later: the server is not there right now."""
