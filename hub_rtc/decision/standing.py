"""Someone's standing in one session: what the service's operations on it allow.

The service works this out once per request (the role from
:func:`~hub_rtc.decision.effective_role`, and whether the token holds
``custom:rtc:admin``); its operations read the answers here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Principal
from .roles import Role, manages


@dataclass(frozen=True)
class Standing:
    """What an actor may do with one session, worked out once per request."""

    principal: Principal
    role: Role | None
    #: holds ``custom:rtc:admin``: may see and change every session, though in none
    admin: bool

    @property
    def sees(self) -> bool:
        """May read the session's record at all (its members, rules, state)."""
        return self.role is not None or self.admin

    @property
    def can_manage(self) -> bool:
        """May change the session: its title, expiry, members and cell rules."""
        return self.admin or manages(self.role)

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"

    @property
    def may_end(self) -> bool:
        """Ending a session is its owner's (or an rtc admin's), not a manager's."""
        return self.is_owner or self.admin

    @property
    def is_observer(self) -> bool:
        """Watches the session's course without being in it: may join it read-only."""
        return self.role == "observer"

    def may_read_activity(self, holds_activity_scope: bool) -> bool:
        """May read who did what in the session: those who manage it, and tokens
        holding the activity-read scope (instructors watching a course hold it)."""
        return self.can_manage or holds_activity_scope

    def may_open(self, joined: bool) -> bool:
        """May open the session's documents: any member; an instructor watching the
        course once ``joined`` read-only (what the shared server's answer also says)."""
        return self.role is not None and (not self.is_observer or joined)


def may_manage(role: str | None, admin: bool) -> bool:
    """:attr:`Standing.can_manage` for a role already in hand (a session's ``my_role``)."""
    return admin or manages(role)


def sees_activity_summary(role: str | None, admin: bool) -> bool:
    """Whether a session's page shows its per-member activity: to those who manage
    it and to the instructors watching its course."""
    return may_manage(role, admin) or role == "observer"
