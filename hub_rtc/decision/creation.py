"""Who may create a session, where it may live, for how long, and how many one may own.

Each rule answers with the reason to refuse (``None``: allowed); the
service's operations turn a reason into their refusal.  Holders of
``custom:rtc:admin`` (``admin``) are bound by none of these limits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .model import PolicyView


def may_create(user: str, groups: frozenset[str], admin: bool, policy: PolicyView) -> bool:
    """Whether ``user`` (in hub ``groups``) may create sessions."""
    if admin or policy.allow_all_to_create:
        return True
    return user in policy.creator_users or bool(groups & policy.creator_groups)


def creation_refusal(user: str, groups: frozenset[str], admin: bool, policy: PolicyView
                     ) -> str | None:
    if may_create(user, groups, admin, policy):
        return None
    return f"policy: {user} may not create sessions"


def chosen_host(requested: str | None, policy: PolicyView) -> str:
    """Where a new session lives: where its creator asked, else policy's default."""
    return requested or policy.default_host


def host_refusal(host: str, admin: bool, policy: PolicyView) -> str | None:
    if admin or host in policy.allowed_hosts:
        return None
    return f"policy: sessions may not be hosted on {host!r}"


def owned_refusal(active_owned: int, admin: bool, policy: PolicyView) -> str | None:
    """Why a user who owns ``active_owned`` active sessions may not own one more."""
    limit = policy.max_sessions_per_user
    if admin or active_owned < limit:
        return None
    return f"policy: a user may own at most {limit} active sessions"


def lifetime_limit(admin: bool, policy: PolicyView) -> timedelta | None:
    """How far ahead a session's expiry may be set (None: no limit)."""
    return None if admin else policy.max_lifetime


def default_expiry(now: datetime, policy: PolicyView) -> datetime | None:
    """When a session created without an expiry expires (None: never)."""
    return now + policy.default_lifetime if policy.default_lifetime else None


def default_course(groups: frozenset[str], courses: frozenset[str]) -> str | None:
    """The course of a session whose creator names none: the one watched hub group
    they are in, if exactly one (``courses``: every group some instructor watches)."""
    mine = sorted(groups & courses)
    return mine[0] if len(mine) == 1 else None


def course_refusal(course: str, user: str, groups: frozenset[str], admin: bool) -> str | None:
    """A session's course lets its instructors watch it: only its members may name it."""
    if admin or course in groups:
        return None
    return f"course: {user} is not in hub group {course!r}"
