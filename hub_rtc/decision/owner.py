"""The server's owner may do everything on their own server.

Sessions narrow what collaborators may do on a shared server; they never
narrow the hub user whose server it is: those are their own files, kernels
and terminals, which JupyterHub already lets them use.  This is the one
place that says so, for the extension (the Authorizer and the guarded room)
and for the service's answer about a server (:mod:`.server`).

A user the hub_rtc service acts for (the relay, the document API) never
gets this shortcut, even when they are the owner: a request the service
relays gets what sessions give, no more.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from .access import Access

#: what the server's owner may do there, before the service says who they are
OWNER: Final = Access(read=True, write=True, execute=True, terminal=True, manage=True, role="owner",
                      reason="the server's owner", server_owner=True)


def owns_server(user: str, server_user: str, *, via_service: bool = False) -> bool:
    """Whether ``user`` is the owner of ``server_user``'s server, signed in themselves.

    ``via_service``: the hub_rtc service asserted the user (see the module docstring).
    """
    return user == server_user and not via_service


def owner_access(answer: Access) -> Access:
    """Everything, for the server's owner: from the service's ``answer`` only who they
    are (persistent id, display name, whether kernels see the id) and which session
    the path is in; no session folder or cell rule narrows them."""
    return replace(OWNER, session_id=answer.session_id, identity=answer.identity,
                   expose_identity=answer.expose_identity,
                   kernel_isolation=answer.kernel_isolation)


def owner_reason(user: str) -> str:
    """Why the service's answer gives ``user`` everything on their server."""
    return f"{user} owns this server"
