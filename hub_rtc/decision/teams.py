"""Who may see and change a team the service keeps.

A team is its owner's: they (or an rtc admin) rename it, change its members
and delete it.  Its members may see it, since a grant to the team names them.
"""

from __future__ import annotations

from collections.abc import Collection


def owns_team(user: str | None, owner: str, admin: bool) -> bool:
    """May change the team: its owner, or an rtc admin (``user`` None: nobody the
    service knows yet, so nobody's team)."""
    return (user is not None and user == owner) or admin


def sees_team(user: str | None, owner: str, members: Collection[str], admin: bool) -> bool:
    """May read the team: its members, and whoever may change it."""
    return (user is not None and user in members) or owns_team(user, owner, admin)
