"""The hub UI: server-rendered pages for students, instructors and admins.

One module per part of the UI, each ending with ``default_handlers``;
templates are in ``../templates``, static files in ``../static``.
"""

from __future__ import annotations

from typing import Any

from . import admin, dashboard, home, sessions, teams
from .base import environment

__all__ = ["all_pages", "environment"]


def all_pages() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for module in (home, sessions, teams, dashboard, admin):
        out += module.default_handlers
    return out
