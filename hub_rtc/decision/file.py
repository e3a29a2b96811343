"""What a session's notebook files may change on their own.

Code run in a session's kernels runs as the server and can write every
notebook file of it; the room then loads what the file says.  Which kernel
wrote a file cannot be told, so a change that reaches a document from the
file is held to what the least trusted member who could have made it may
change (docs/security.md, every principal): someone who may run code but not edit
(a runner) may change the outputs and execution counts of cells, nothing
else.  Pure, like :func:`~hub_rtc.decision.decide`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from . import roles
from .decide import _closed_reason, _expired, _narrow, _policy_reason
from .model import PolicyView, SessionView
from .roles import Role

FileMay = Literal["write", "run"]

#: everything but the cells with a rule (those are put back whatever the file says)
WRITE: Final = "write"
#: outputs and execution counts of code cells only (and not of ruled cells)
RUN: Final = "run"


@dataclass(frozen=True)
class FileRights:
    may: FileMay
    reason: str


def file_may(session: SessionView, policy: PolicyView, now: datetime) -> FileRights:
    """What a change the file makes to ``session``'s notebooks may touch.

    ``run`` as soon as one live grant leaves someone able to execute without
    writing, after policy: a user whose strongest user grant is such a role,
    or any team or hub group granted one (its members' other grants are not in
    the view, so each of them counts as no more than that grant).  The owner
    may write; with ``collaborators_may_execute`` off nobody else runs code.
    """
    if _closed_reason(session, now):
        return FileRights(WRITE, f"session {session.id} is closed: nobody's kernel is in it")
    by_user: dict[str, list[Role]] = {}
    for grant in session.grants:
        role = _narrow(grant.role, policy)
        if role is None or _expired(grant.expires_at, now):
            continue
        if grant.kind == "user":
            if grant.name != session.owner:
                by_user.setdefault(grant.name, []).append(role)
        elif _runs_only(role, policy):
            return FileRights(RUN, f"{grant.kind} {grant.name} may run code as {role} but not edit")
    for name, held in sorted(by_user.items()):
        role = roles.strongest(held)
        if role is not None and _runs_only(role, policy):
            return FileRights(RUN, f"{name} may run code as {role} but not edit")
    return FileRights(WRITE, "everyone who may run code may also edit")


def _runs_only(role: Role, policy: PolicyView) -> bool:
    """May execute (after policy), may not write."""
    executes = roles.role_can(role, "execute") and _policy_reason("execute", role, policy) is None
    return executes and not roles.role_can(role, "write")
