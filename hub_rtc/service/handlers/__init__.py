"""REST handlers, one module per resource; each ends with ``default_handlers``.

``events.py`` is the ``/servers/events`` websocket, a part of ``servers`` that
registers it; it is a module of its own because it is a websocket, not REST.
"""

from __future__ import annotations

from typing import Any

from . import activity, cells, documents, me, rooms, servers, sessions, teams


def all_handlers() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for module in (me, sessions, cells, activity, teams, servers, documents, rooms):
        out += module.default_handlers
    return out
