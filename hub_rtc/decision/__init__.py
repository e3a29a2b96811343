"""The decision: every rule of who may do what, pure (no I/O, no tornado).

- :mod:`.decide`: may this principal do this action in this session (``/authorize``);
- :mod:`.server`: what one user may do on one shared server (``/servers/rights``);
- :mod:`.owner`: the server's owner may do everything there;
- :mod:`.access`: that answer as the server side holds it, per request, room and guard;
- :mod:`.file`: what a session's notebook files may change on their own;
- :mod:`.standing`: someone's standing in a session, for the service's operations;
- :mod:`.creation`: who may create sessions, where, for how long, how many;
- :mod:`.grants`: who may be named in a session, with which role, how many;
- :mod:`.teams`: who may see and change a team;
- :mod:`.roles`: the role table and the names (roles, actions, kinds) as types.
"""

from .access import Access
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
from .owner import owner_access, owns_server
from .roles import (
    ACTIONS,
    GRANTABLE_ROLES,
    PRINCIPAL_KINDS,
    WRITER_KINDS,
    Action,
    CellRuleKind,
    HostKind,
    PrincipalKind,
    Role,
    WriterKind,
)
from .server import Placed, ServerRights, server_rights, strongest_session
from .standing import Standing, may_manage, sees_activity_summary

__all__ = [
    "ACTIONS",
    "GRANTABLE_ROLES",
    "PRINCIPAL_KINDS",
    "WRITER_KINDS",
    "Access",
    "Action",
    "CellRuleKind",
    "CellRuleView",
    "Decision",
    "FileRights",
    "GrantView",
    "HostKind",
    "Placed",
    "PolicyView",
    "Principal",
    "PrincipalKind",
    "Resource",
    "Role",
    "ServerRights",
    "SessionView",
    "Standing",
    "WriterKind",
    "decide",
    "effective_role",
    "file_may",
    "may_manage",
    "sees_activity_summary",
    "owner_access",
    "owns_server",
    "server_rights",
    "strongest_session",
]
