"""Admin policy: what ``jupyterhub_config.py`` says about collaboration.

Admins write ``c.RTCPolicy.<trait> = …`` next to their other JupyterHub
options; the drop-in in ``jupyterhub_config.d/`` hands the values to the
service.  Policy only ever narrows what a session grants.

This class only holds the configuration: the rules that read it (who may
create, grant, run code, open terminals) are :mod:`hub_rtc.decision`'s, which
reads it as :meth:`RTCPolicy.decision_view`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from traitlets import All, Bool, CaselessStrEnum, Dict, Enum, Float, Integer, List, Set, Unicode, observe
from traitlets.config import Configurable

from .decision import GRANTABLE_ROLES, PolicyView
from .decision.roles import HOSTS
from .protocol import KERNEL_ISOLATION


class RTCPolicy(Configurable):
    """Collaboration policy for the whole hub."""

    #: :meth:`decision_view`'s copy, dropped whenever a trait is set
    _view: PolicyView | None = None

    allow_all_to_create = Bool(
        True,
        help="""Let every hub user create sessions.

        Set to False and list who may in `creator_users` / `creator_groups`.
        """,
    ).tag(config=True)
    creator_users = Set(
        Unicode(),
        help="Hub users who may create sessions when `allow_all_to_create` is False.",
    ).tag(config=True)
    creator_groups = Set(
        Unicode(),
        help="Hub groups whose members may create sessions when `allow_all_to_create` is False.",
    ).tag(config=True)
    max_members_per_session = Integer(
        30,
        min=1,
        help="""Most grants (users, teams and groups together) a session may hold.

        A team or group grant counts as one member here.
        """,
    ).tag(config=True)
    max_sessions_per_user = Integer(
        10,
        min=0,
        help="Most active sessions one user may own. Ended sessions do not count.",
    ).tag(config=True)
    grantable_roles = List(
        Enum(GRANTABLE_ROLES),
        default_value=list(GRANTABLE_ROLES),
        help="""Roles session owners and managers may grant.

        Removing a role also narrows existing grants of it to the next role
        down that is still allowed.  Holders of `custom:rtc:admin` may grant
        any role.
        """,
    ).tag(config=True)
    allowed_hosts = List(
        Enum(HOSTS),
        default_value=list(HOSTS),
        help="""Where sessions may live: `account` (a dedicated session server)
        and/or `owner` (a folder of the owner's own server).""",
    ).tag(config=True)
    default_host = Enum(
        HOSTS,
        default_value="account",
        help="Where a session lives when its creator does not say.",
    ).tag(config=True)
    default_lifetime_hours = Float(
        24 * 14,
        min=0,
        help="Lifetime of a session created without `expires_at`, in hours. 0: no expiry.",
    ).tag(config=True)
    max_lifetime_hours = Float(
        24 * 180,
        min=0,
        help="Longest lifetime a session may ask for, in hours. 0: no limit.",
    ).tag(config=True)
    collaborators_may_execute = Bool(
        True,
        help="Whether members other than the owner may run code in the session's kernels (runner and up).",
    ).tag(config=True)
    collaborators_may_open_terminals = Bool(
        False,
        help="""Whether members other than the owner may open terminals (editor and up).

        A terminal runs as the server's user, outside every per-document rule.
        """,
    ).tag(config=True)
    instructor_groups = Dict(
        key_trait=Unicode(),
        value_trait=List(Unicode()),
        help="""Which hub groups each instructor group may watch.

        `{"cs101-staff": ["cs101"]}` lets members of `cs101-staff` see, read
        and join read-only every session whose course is `cs101`.
        """,
    ).tag(config=True)
    expose_identity_to_kernels = Bool(
        False,
        help="Put the user's persistent id into `JUPYTER_AUTH_ID` in kernels they start.",
    ).tag(config=True)
    kernel_isolation = CaselessStrEnum(
        list(KERNEL_ISOLATION),
        default_value="auto",
        help="""How session kernels run apart from the shared server that starts them.

        Code in a session's kernel is run by whoever may execute there, so it must
        not hold the server's authority.

        - `account`: in that sandbox (below), as a Unix account of their own
          (`c.HubRTCExtension.kernel_account` on the shared servers, which must
          run as root): the operating system's permissions on top of the
          sandbox's view.
        - `sandbox`: in a bubblewrap sandbox (`bwrap`, with its own process
          namespace and no capabilities) that sees the system, the Python
          installation and the session folder only: not the server's process,
          its runtime files and tokens, other folders of its account, or the
          update store; the session's notebooks are read-only inside it.
        - `none`: as the server's account, as stock Jupyter does; the kernel's
          environment is still scrubbed of hub credentials.
        - `auto`: the strongest of these the shared server supports (it tries
          once at start-up), said on the admin and session pages.

        A server asked for `account` or `sandbox` that cannot do it starts no
        session kernel (it fails closed, and says why).
        """,
    ).tag(config=True)

    def problems(self) -> list[str]:
        """Contradictions between traits, which no single trait can catch."""
        found = []
        if self.default_host not in self.allowed_hosts:
            found.append(f"RTCPolicy.default_host={self.default_host!r} is not in allowed_hosts")
        if self.max_lifetime_hours and self.default_lifetime_hours > self.max_lifetime_hours:
            found.append("RTCPolicy.default_lifetime_hours exceeds max_lifetime_hours")
        return found

    # -- derived views ---------------------------------------------------

    def decision_view(self) -> PolicyView:
        """Policy as the pure decision reads it: made once and kept until a trait is set
        again (reading a dozen traits per request cost about 5% of a document call)."""
        view = self._view
        if view is None:
            view = self._view = self._make_view()
        return view

    @observe(All)
    def _forget_view(self, change: Any) -> None:
        self._view = None

    def _make_view(self) -> PolicyView:
        return PolicyView(
            collaborators_may_execute=self.collaborators_may_execute,
            collaborators_may_open_terminals=self.collaborators_may_open_terminals,
            grantable_roles=tuple(self.grantable_roles),
            allow_all_to_create=self.allow_all_to_create,
            creator_users=frozenset(self.creator_users),
            creator_groups=frozenset(self.creator_groups),
            max_members_per_session=self.max_members_per_session,
            max_sessions_per_user=self.max_sessions_per_user,
            allowed_hosts=frozenset(self.allowed_hosts),
            default_host=self.default_host,
            default_lifetime=self.default_lifetime(),
            max_lifetime=self.max_lifetime(),
        )

    def watched_groups(self, groups: frozenset[str]) -> frozenset[str]:
        """The hub groups a user in ``groups`` may watch as an instructor."""
        watched: set[str] = set()
        for group in groups:
            watched.update(self.instructor_groups.get(group, []))
        return frozenset(watched)

    def courses(self) -> frozenset[str]:
        """Every hub group some instructor group watches: the groups a session's course may be."""
        return frozenset(g for groups in self.instructor_groups.values() for g in groups)

    def default_lifetime(self) -> timedelta | None:
        return timedelta(hours=self.default_lifetime_hours) if self.default_lifetime_hours else None

    def max_lifetime(self) -> timedelta | None:
        return timedelta(hours=self.max_lifetime_hours) if self.max_lifetime_hours else None

    def to_dict(self) -> dict[str, Any]:
        """Every policy trait with its effective value, JSON-ready."""
        out: dict[str, Any] = {}
        for name in sorted(self.class_own_traits(config=True)):
            value = getattr(self, name)
            out[name] = sorted(value) if isinstance(value, (set, frozenset)) else value
        return out
