"""``GET {base_url}/hub-rtc/rights?path=…``: what the caller may do in one notebook, for
hub_rtc's JupyterLab extension to show (a role badge, locked cells read-only).

It says only what the Gate already decided for the caller themselves, so it needs no
rule of its own, and it changes nothing: every rule stays enforced by the guarded
room and the Authorizer whatever a client shows.  ``since``: the answer's
``version`` the client holds; then the request waits (long poll, at most
:data:`WAIT_SECONDS`) until a push from the service changed rights on this server,
so that a lock, a downgrade or a removal shows without a reload.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..decision.access import Access
from ..decision.owner import owns_server
from .authorizer import hub_name, on_behalf

#: the route, below the server's base URL (the JupyterLab extension's too)
ROUTE = "/hub-rtc/rights"
#: the longest a long poll waits for a change before answering as it is
WAIT_SECONDS = 25.0

#: what each role lets the reader do, as the badge's tooltip says it
SAYS = {
    "owner": "This is your server: you may do everything here.",
    "manager": "You may edit and run every cell, and lock, assign and free cells.",
    "editor": "You may edit and run cells, except those locked or assigned to others.",
    "runner": "You may run cells and see their output; you may not change their source.",
    "viewer": "You may read this notebook and watch others work; you may not change it or"
              " run code.",
    "observer": "Watching read-only: you see everything and change nothing.",
}


def rights_json(access: Access, *, owner: bool, version: int) -> dict[str, Any]:
    """The answer for one reader: their role in words and the cells they may not edit."""
    if owner:
        role = "owner"
    elif access.role == "observer" or (access.role is None and access.read and not access.write):
        role = "observer" if access.role == "observer" else "viewer"
    else:
        role = access.role or "none"
    return {
        "version": version,
        "role": role,
        "label": "watching read-only" if role == "observer" else role,
        "says": SAYS.get(role, access.reason or "You have no access to this notebook."),
        "read": owner or access.read,
        "write": owner or access.write,
        "execute": owner or access.execute,
        "manage": owner or access.manage,
        "protected": [] if owner else sorted(access.protected),
        "session_id": access.session_id,
    }


class RightsHandler(APIHandler):
    """The caller's rights in the notebook at ``path`` (see the module docstring)."""

    def initialize(self, hub_rtc: Any) -> None:
        self.rtc = hub_rtc

    @web.authenticated
    async def get(self) -> None:
        path = self.get_argument("path", "").strip("/")
        since = self.get_argument("since", "")
        gate = self.rtc.gate
        if since.isdigit() and int(since) == gate.epoch:
            await gate.changed_since(int(since), WAIT_SECONDS)
        user = self.current_user
        name = hub_name(user)
        owner = owns_server(name, gate.owner, via_service=on_behalf(user))
        access = Access() if owner else await gate.access(name, path or None)
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(rights_json(access, owner=owner, version=gate.epoch)))
