"""The decision table: one world, every role × action, cell rules, expiry.

Unit tests feed it to the pure decision; integration tests build the same
world through the REST API and check that ``POST /authorize`` agrees.
Expected values are written out by hand from the table in docs/security.md (roles), not
computed, so a wrong decision cannot agree with itself.
"""

from __future__ import annotations

from dataclasses import dataclass

OWNER = "olive"
COURSE = "cs101"
NOTEBOOK = "nb.ipynb"

#: direct grants: user -> role
USER_GRANTS = {"vic": "viewer", "rui": "runner", "eddie": "editor", "max": "manager"}
TEAM = ("tigers", ("tess",), "editor")  # team name, members, role
GROUP = ("grp", ("gus",), "runner")  # hub group, members, role
EXPIRED = ("exp", "editor")  # a user whose editor grant has expired
REMOVED = "gone"  # was a member, then removed
WATCHER = ("ida", "cs101-staff")  # instructor watching the course
STRANGER = "zed"

CELLS = {"locked": "c-locked", "assigned": "c-assigned", "free": "c-free"}
ASSIGNED_TO = (("user", "eddie"), ("team", "tigers"))

ALL_USERS = (
    OWNER, *USER_GRANTS, *TEAM[1], *GROUP[1], EXPIRED[0], REMOVED, WATCHER[0], STRANGER,
)

# read, write, execute, manage, terminal: what each person may do (default policy).
_ = False
Y = True
EXPECTED: dict[str, tuple[bool, bool, bool, bool, bool]] = {
    "olive": (Y, Y, Y, Y, Y),  # owner
    "vic": (Y, _, _, _, _),  # viewer
    "rui": (Y, _, Y, _, _),  # runner
    "eddie": (Y, Y, Y, _, _),  # editor; terminals closed by default policy
    "max": (Y, Y, Y, Y, _),  # manager
    "tess": (Y, Y, Y, _, _),  # editor through team
    "gus": (Y, _, Y, _, _),  # runner through hub group
    "exp": (_, _, _, _, _),  # grant expired
    "gone": (_, _, _, _, _),  # removed
    "ida": (Y, _, _, _, _),  # instructor watching cs101: read only
    "zed": (_, _, _, _, _),  # stranger
}
ACTIONS = ("read", "write", "execute", "manage", "terminal")

# write to each cell: locked, assigned (to eddie and team tigers), free
EXPECTED_CELLS: dict[str, tuple[bool, bool, bool]] = {
    "olive": (Y, _, Y),  # owner may change locked cells, but assigned ones belong to writers
    "max": (Y, _, Y),
    "eddie": (_, Y, Y),
    "tess": (_, Y, Y),  # assigned through team
    "vic": (_, _, _),  # viewers write nothing
    "rui": (_, _, _),
}


@dataclass(frozen=True)
class Case:
    user: str
    action: str
    cell: str | None
    allowed: bool

    @property
    def id(self) -> str:
        return f"{self.user}-{self.action}" + (f"-{self.cell}" if self.cell else "")


def cases() -> list[Case]:
    out = [
        Case(user, action, None, allowed)
        for user, row in EXPECTED.items()
        for action, allowed in zip(ACTIONS, row, strict=True)
    ]
    out += [
        Case(user, "write", cell, allowed)
        for user, row in EXPECTED_CELLS.items()
        for cell, allowed in zip(CELLS, row, strict=True)
    ]
    return out


# Another policy: no execution for collaborators, terminals opened to editors
# and up, managers no longer grantable.  What each person may do then.
OTHER_POLICY = {
    "collaborators_may_execute": False,
    "collaborators_may_open_terminals": True,
    "grantable_roles": ["viewer", "runner", "editor"],
}
EXPECTED_OTHER: dict[str, tuple[bool, bool, bool, bool, bool]] = {
    "olive": (Y, Y, Y, Y, Y),  # policy never narrows the owner
    "vic": (Y, _, _, _, _),
    "rui": (Y, _, _, _, _),  # runner: execution withdrawn, no terminal either
    "eddie": (Y, Y, _, _, Y),  # editor: terminal opened, execution withdrawn
    "tess": (Y, Y, _, _, Y),
    "max": (Y, Y, _, _, Y),  # manager acts as editor: manage withdrawn
}


def other_policy_cases() -> list[Case]:
    return [
        Case(user, action, None, allowed)
        for user, row in EXPECTED_OTHER.items()
        for action, allowed in zip(ACTIONS, row, strict=True)
    ]
