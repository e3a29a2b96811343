"""The decision: who may do what, as one pure function (no I/O, no tornado)."""

from .decide import decide, effective_role
from .file import FileRights, file_may
from .model import (
    CellRuleView,
    Decision,
    GrantView,
    PolicyView,
    Principal,
    Resource,
    SessionView,
)
from .roles import ACTIONS, GRANTABLE_ROLES

__all__ = [
    "ACTIONS",
    "GRANTABLE_ROLES",
    "CellRuleView",
    "Decision",
    "FileRights",
    "GrantView",
    "PolicyView",
    "Principal",
    "Resource",
    "SessionView",
    "decide",
    "effective_role",
    "file_may",
]
