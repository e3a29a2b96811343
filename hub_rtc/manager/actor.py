"""Who is calling the service, as the hub vouched for them."""

from __future__ import annotations

from dataclasses import dataclass

SCOPE_SESSIONS = "custom:rtc:sessions"
SCOPE_ACTIVITY_READ = "custom:rtc:activity:read"
SCOPE_ACTIVITY_WRITE = "custom:rtc:activity:write"
SCOPE_AUTHORIZE = "custom:rtc:authorize"
SCOPE_ADMIN = "custom:rtc:admin"
#: read the live documents of sessions you are a member of
SCOPE_DOCUMENTS_READ = "custom:rtc:documents:read"
#: change them (the hub expands it to include SCOPE_DOCUMENTS_READ)
SCOPE_DOCUMENTS_WRITE = "custom:rtc:documents:write"


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


def bound_server(actor: Actor) -> tuple[str, str] | None:
    """The server whose own token this is, or None for any other token.

    JupyterHub gives a server's token ``access:servers!server=<user>/<name>``
    for exactly that server (its ``server`` role), which a user's own tokens
    do not carry for their own servers: so the hub, not the request, says
    which server is calling.
    """
    prefix = f"access:servers!server={actor.name}/"
    names = [s[len(prefix):] for s in actor.scopes if s.startswith(prefix)]
    return (actor.name, names[0]) if actor.kind == "user" and len(names) == 1 else None


def holds_for(actor: Actor, scope: str, server: tuple[str, str]) -> bool:
    """Whether ``actor`` holds ``scope`` for ``server``: as ``custom:rtc:admin``, or as the
    server's own user, unfiltered or filtered to them the way JupyterHub writes it
    (``<scope>!user=<user>``, ``<scope>!server=<user>/<name>``).

    Servers get these scopes filtered: the hub gives a server's token only
    the part of the ``server`` role its user holds, and users hold them for
    their own servers only (see the drop-in).
    """
    if actor.is_admin:
        return True
    if actor.kind != "user" or actor.name != server[0]:
        return False
    user, name = server
    return bool({scope, f"{scope}!user={user}", f"{scope}!server={user}/{name}"} & actor.scopes)


def speaks_for(actor: Actor, server: tuple[str, str]) -> bool:
    """Whether ``actor`` is that server recording activity (its own token) or an rtc admin."""
    if not holds_for(actor, SCOPE_ACTIVITY_WRITE, server):
        return False
    bound = bound_server(actor)
    return actor.is_admin or bound is None or bound == server
