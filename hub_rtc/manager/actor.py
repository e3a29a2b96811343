"""Who is calling the service, as the hub vouched for them.

A shared server's own hub token (``$JUPYTERHUB_API_TOKEN`` there) resolves,
at the hub, to the server's user; code in a kernel on that server can find
it.  So it is the server, never its user: the service tells it apart by its
scopes (:func:`bound_server`) and takes it only on the endpoints the hub_rtc
extension itself calls, for that one server:

- ``POST /servers/announce``: the extension runs here (and on every
  reconnection of its events channel);
- ``POST /servers/rights``: what a user may do on this server, cached there;
- ``POST`` and ``PUT /servers/baselines``: the last authorized content of a
  notebook's ruled cells, read when its room loads and kept when it saves;
- ``POST /servers/presence``: who has this server's sessions' documents open;
- ``POST /sessions/{id}/activity``: counted edits, runs and refusals, for
  sessions hosted on this server only (:func:`speaks_for`);
- ``GET /servers/events``: the push channel (a websocket).

Every other endpoint (sessions, members, cell rules, teams, the documents
API and the relay, ``/me``, ``/identity``, ``/authorize``, ``/status``, the
admin's list of servers, every page) refuses it with :data:`SERVER_TOKEN_REFUSED`,
whatever scopes an admin's ``c.Spawner.server_token_scopes`` gave it, and
``/authorize`` will not take it as the token to decide about either.
"""

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


#: what a server's own token is told by the endpoints that are not its own
SERVER_TOKEN_REFUSED = ("this is {server}'s own hub token: a shared server's token speaks for "
                        "that server only (announce, rights, baselines, presence, activity, "
                        "events), never as its user")


def server_token_refusal(actor: Actor) -> str | None:
    """Why ``actor`` may not use an endpoint other than a server's own; None: they may."""
    bound = bound_server(actor)
    if bound is None:
        return None
    label = f"{bound[0]}'s server" + (f" {bound[1]!r}" if bound[1] else "")
    return SERVER_TOKEN_REFUSED.format(server=label)


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
