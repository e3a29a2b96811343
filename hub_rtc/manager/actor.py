"""Who is calling the service, as the hub vouched for them."""

from __future__ import annotations

from dataclasses import dataclass

SCOPE_SESSIONS = "custom:rtc:sessions"
SCOPE_ACTIVITY_READ = "custom:rtc:activity:read"
SCOPE_ACTIVITY_WRITE = "custom:rtc:activity:write"
SCOPE_AUTHORIZE = "custom:rtc:authorize"
SCOPE_ADMIN = "custom:rtc:admin"


@dataclass(frozen=True)
class Actor:
    """The hub user behind a request, with the scopes of the token they used."""

    name: str
    groups: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    #: "user" or "service": services may administer but own nothing
    kind: str = "user"

    @property
    def is_admin(self) -> bool:
        return SCOPE_ADMIN in self.scopes

    def has(self, scope: str) -> bool:
        """Whether the token carries ``scope`` (``custom:rtc:admin`` implies all)."""
        return scope in self.scopes or self.is_admin
