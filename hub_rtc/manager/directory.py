"""What the domain needs to know about the hub, as a protocol.

The web layer implements it over JupyterHub's REST API; unit tests pass a
plain in-memory one.  Keeping it abstract is what keeps tornado out of here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class HubUser:
    name: str
    groups: frozenset[str] = frozenset()
    created: datetime | None = None


class HubDirectory(Protocol):
    async def user(self, name: str, *, fresh: bool = False) -> HubUser | None:
        """The hub user called ``name``, or None; ``fresh`` skips any cache."""

    async def group_exists(self, name: str) -> bool:
        """Whether the hub has a group called ``name``."""


@dataclass
class StaticDirectory:
    """An in-memory directory: for unit tests and benchmarks of pure logic."""

    users: dict[str, HubUser] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)

    def add(self, name: str, *groups: str, created: datetime | None = None) -> HubUser:
        user = HubUser(name, frozenset(groups), created)
        self.users[name] = user
        self.groups.update(groups)
        return user

    async def user(self, name: str, *, fresh: bool = False) -> HubUser | None:
        return self.users.get(name)

    async def group_exists(self, name: str) -> bool:
        return name in self.groups
