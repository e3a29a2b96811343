"""What one user may do on one shared server, as the service answered it.

The server side's one shape of a user's rights: the Authorizer, the guarded
room and the kernel hook all read an :class:`Access`, and the rules that turn
it into a yes or no for one request (:meth:`Access.permits`), for one room
(:meth:`Access.opened_as`) and for the CRDT guard (:meth:`Access.rights`)
are here, next to the rest of the decision.  How it is fetched is the
extension's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, Protocol

from ..guard.rights import Rights

#: the document type whose per-cell rules the guard can enforce (jupyter_ydoc's name)
NOTEBOOK: Final = "notebook"


#: What must hold: rights on a path, membership somewhere on this server,
#: the terminal right, or nothing can make it allowed.
Scope = Literal["path", "server", "terminal", "deny"]


class Check(Protocol):
    """What one request needs to hold (the extension's ``Target``)."""

    @property
    def scope(self) -> Scope: ...

    @property
    def action(self) -> str:
        """What it asks to do where its scope says, as jupyter_server names it:
        ``read``, ``write`` or ``execute`` (anything else is judged as a write)."""

    @property
    def why(self) -> str:
        """With scope ``deny``: why nothing can allow it."""


@dataclass(frozen=True)
class Access:
    """The service's answer for (user, path) on this server."""

    read: bool = False
    write: bool = False
    execute: bool = False
    terminal: bool = False
    manage: bool = False
    role: str | None = None
    session_id: str | None = None
    root: str = ""
    protected: frozenset[str] = frozenset()
    identity: dict[str, Any] = field(default_factory=dict)
    expose_identity: bool = False
    #: how kernels of this session are run apart from the server (RTCPolicy.kernel_isolation)
    kernel_isolation: str = "auto"
    reason: str = ""
    #: the hub user whose server this is (not a collaborator)
    server_owner: bool = False

    @classmethod
    def none(cls, reason: str) -> Access:
        """No access at all: used when the service cannot be asked (fail closed)."""
        return cls(reason=reason)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Access:
        session = data.get("session") or {}
        return cls(
            read=bool(data.get("read")),
            write=bool(data.get("write")),
            execute=bool(data.get("execute")),
            terminal=bool(data.get("terminal")),
            manage=bool(data.get("manage")),
            role=data.get("role"),
            session_id=session.get("id"),
            root=session.get("root") or "",
            protected=frozenset(data.get("protected_cells") or ()),
            identity=dict(data.get("user") or {}),
            expose_identity=bool(data.get("expose_identity")),
            kernel_isolation=str(data.get("kernel_isolation") or "auto"),
            reason=str(data.get("reason") or ""),
        )

    def relative(self, path: str) -> str:
        """``path`` (from the server's root) as the session names it: below its root folder."""
        if self.root and path.startswith(self.root + "/"):
            return path[len(self.root) + 1:]
        return path

    def opened_as(self, doc_type: str) -> Access:
        """This access in a room that opens the file as ``doc_type``.

        Cell rules can only be checked in a notebook room: the same ``.ipynb``
        as a text file, saved whole, would carry any change to a protected
        cell onto disk, and the notebook room would load it.  So whoever has
        protected cells in a file may read it as another type, never write it.
        """
        if not self.protected or doc_type == NOTEBOOK:
            return self
        return replace(self, write=False, reason="this notebook has cells you may not change: "
                                                  "edit it as a notebook")

    def rights(self) -> Rights:
        """What the CRDT guard enforces for this user's document updates."""
        return Rights(write=self.write, protected=self.protected, run=self.execute)

    def awareness_user(self, fallback_name: str) -> dict[str, Any]:
        """The ``user`` field every awareness state of this user carries.

        Shaped like jupyter_server's identity model, which JupyterLab puts
        there itself; here it comes from the service, never from the client.
        """
        ident = self.identity
        name = ident.get("name") or fallback_name
        display = ident.get("display_name") or name
        return {
            "username": ident.get("id") or name,
            "name": name,
            "display_name": display,
            "initials": ident.get("initials") or display[:1].upper(),
            "color": ident.get("color"),
            "avatar_url": None,
        }

    def permits(self, target: Check) -> tuple[bool, str]:
        """Does this access satisfy ``target``?  Returns (allowed, why not)."""
        if target.scope == "deny":
            return False, target.why
        if target.scope == "terminal":
            return self.terminal, "terminals are closed to collaborators by policy"
        if not self.read:
            return False, self.reason or "not a member of a session on this server"
        if target.action == "read":
            return True, ""
        if target.action == "execute":
            return self.execute, f"role {self.role} may not run code"
        # A notebook with cells this user may not change is written only
        # through the guarded room, never wholesale through the contents API.
        if self.protected:
            return False, "this notebook has cells you may not change: edit it in the collaborative editor"
        return self.write, f"role {self.role} may not change files"


def confined(access: Access) -> Access:
    """What a user may do when the hub_rtc service acts for them: what their sessions
    give, never more; the server's owner too gets no terminal and nothing outside a
    session folder, and kernels started so never hold the server's token."""
    if access.session_id is None:
        return Access.none("the hub_rtc service acts for users only inside sessions")
    return replace(access, terminal=False, server_owner=False)


def relayed(access: Access, read_only: bool) -> Access:
    """:func:`confined`, and no more than reading when the service says its caller's
    token may only read documents: the service's word can narrow, never widen."""
    access = confined(access)
    if read_only:
        access = replace(access, write=False, execute=False, manage=False)
    return access
