"""The Authorizer and IdentityProvider that JupyterHub's single-user server runs with.

The server's owner keeps JupyterHub's own behaviour; everyone else who
reaches this server (through a JupyterHub share) is checked against the
service: confined to their session's folder, and read, write, execute and
terminals by role and policy.

The hub_rtc service relays documents for users who are not on this server
(scripts, other editors): it connects with its own hub token and names the
user in :data:`ON_BEHALF_HEADER`.  That header is believed only when the hub
says the caller is the hub_rtc service itself; the request is then that
user's in every respect (rights, identity, attribution, kernel identity),
except that it never gets more than sessions give: no owner's shortcut, no
terminal, nothing outside a session's folder (see docs/security.md).

A request carrying this server's own hub token (``$JUPYTERHUB_API_TOKEN``,
which the hub resolves to the owner and code in a kernel can find) is
refused by the IdentityProvider before anything else, and again by the
Authorizer: it is nobody's browser.  Where a token can come from and who
calls this server with its own token (nobody) is in :mod:`.own_token`.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any
from urllib.parse import unquote

from jupyter_server.services.contents.fileio import FileManagerMixin
from jupyterhub.singleuser.extension import (
    JupyterHubAuthorizer,
    JupyterHubIdentityProvider,
    JupyterHubUser,
)
from tornado import web
from tornado.websocket import WebSocketHandler
from traitlets import Any as AnyTrait
from traitlets import Unicode

from ..decision.access import Access, relayed
from ..decision.owner import owner_access, owns_server
from ..protocol import ACCESS_WITHDRAWN, ON_BEHALF_HEADER, READ_ONLY_HEADER
from .executions import count_runs
from .gate import Gate
from .links import has_other_names, is_hidden, real_path
from .own_token import REFUSED, carrying, header_token, same_token_id
from .refusals import refused_by_design
from .roomid import RoomId
from .targets import Target, clean_path, target

#: Set while a request that may start a kernel is authorized, read by the
#: kernel-start hook: it runs in the same task, so the value flows to it.
KERNEL_STARTER: ContextVar[Access | None] = ContextVar("hub_rtc_kernel_starter", default=None)


#: marks a hub user model built from the service's assertion
VIA_SERVICE = "hub_rtc_via_service"
READ_ONLY = "hub_rtc_read_only"


def hub_name(user: Any) -> str:
    return str(user.hub_user["name"])


def on_behalf(user: Any) -> bool:
    """Whether ``user`` was asserted by the hub_rtc service rather than signed in."""
    return bool(getattr(user, "hub_user", {}).get(VIA_SERVICE))


def is_the_service(hub_user: dict[str, Any], service_name: str) -> bool:
    """Whether the hub says this caller is the hub_rtc service (never a user named like it)."""
    return bool(service_name) and hub_user.get("kind") == "service" and (
        hub_user.get("name") == service_name)


def asserted_user(caller: dict[str, Any], raw_name: str, read_only: bool = False) -> JupyterHubUser:
    """The user the service names, as if they had signed in themselves.

    The caller's scopes stay (the service's ``access:servers`` is what let the
    request reach this server); everything hub_rtc decides comes from the
    service's answer about the named user.
    """
    name = unquote(raw_name).strip()
    if not name or "/" in name:
        raise web.HTTPError(400, f"hub_rtc: {ON_BEHALF_HEADER} names no hub user")
    return JupyterHubUser({**caller, "name": name, "kind": "user", "groups": [],
                           "user_info": {}, VIA_SERVICE: caller.get("name"), READ_ONLY: read_only})


def presented_tokens(handler: Any, hub_auth: Any) -> dict[str, list[str | None]]:
    """Every token ``handler``'s request carries, where HubAuth would look for one."""
    arguments = handler.get_arguments("token") + handler.get_arguments("token", strip=False)
    header = handler.request.headers.get(hub_auth.auth_header_name, "")
    # the cookie as HubOAuth itself reads it (decrypted); a plain HubAuth keeps none
    cookie = getattr(hub_auth, "_get_token_cookie", lambda _: None)(handler)
    return {"the token argument": arguments,
            "the Authorization header": header_token(header, hub_auth.auth_header_pat),
            "the login cookie": [cookie],
            "the request": [hub_auth.get_token(handler)]}


def own_token_in(handler: Any, hub_auth: Any) -> str | None:
    """Where ``handler``'s request carries this server's own token; None if nowhere."""
    return carrying(presented_tokens(handler, hub_auth), hub_auth.api_token)


def refuse_own_token(handler: Any, log: Any, where: str) -> None:
    """403, logged: the request came with this server's own token (``where``)."""
    log.warning("%s: refused %s %s from %s (it came in %s)", REFUSED, handler.request.method,
                handler.request.path, handler.request.remote_ip, where)
    # nobody signed in: error pages and later lookups must not resolve the token again
    handler._jupyterhub_user = None
    handler.current_user = handler._jupyter_current_user = None
    raise web.HTTPError(403, REFUSED)


def narrowed(user: Any, access: Access) -> Access:
    """``access`` as it applies to ``user``: unchanged for anyone signed in themselves;
    the decision's :func:`~hub_rtc.decision.access.relayed` for a user it acts for."""
    if not on_behalf(user):
        return access
    return relayed(access, bool(user.hub_user.get(READ_ONLY)))


class HubRTCAuthorizer(JupyterHubAuthorizer):
    """JupyterHub's access scope check, then the service's decision for non-owners."""

    gate = AnyTrait(help="The hub_rtc Gate that asks the service (set by the extension).")
    tally = AnyTrait(None, allow_none=True,
                     help="Where runs on kernel sockets are counted (set by the extension).")

    async def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        where = own_token_in(handler, self.hub_auth)
        if where is not None:  # (the IdentityProvider refused it already: never the owner)
            self.log.warning("%s: refused %s %s (it came in %s)", REFUSED, action,
                             handler.request.path, where)
            return False
        if not super().is_authorized(handler, user, action, resource):
            return False
        gate: Gate = self.gate
        name = hub_name(user)
        if owns_server(name, gate.owner, via_service=on_behalf(user)):
            if resource in ("kernels", "sessions") and action != "read":
                KERNEL_STARTER.set(owner_access(await gate.identity_of(name)))
            if resource == "kernels" and isinstance(handler, WebSocketHandler):
                kernel = target(handler.request.method, _below_base(handler), resource, action,
                                handler.path_kwargs, b"")
                await self._count_runs(handler, name, kernel[0].kernel_id if kernel else None)
            return True
        checks = target(handler.request.method, _below_base(handler), resource, action,
                        handler.path_kwargs, handler.request.body or b"")
        for check in checks:
            allowed, access = await self._check(handler, name, check)
            if not allowed:
                return False
        if isinstance(handler, WebSocketHandler) and checks:
            self._watch(handler, name, checks[0], access)
            if resource == "kernels":
                await self._count_runs(handler, name, checks[0].kernel_id)
        return True

    async def _count_runs(self, handler: Any, name: str, kernel_id: str | None) -> None:
        """Execute requests on this kernel socket are ``name``'s (whoever they say they
        are from), counted per cell in the session of the kernel's notebook."""
        if self.tally is None or kernel_id is None:
            return
        paths = [p for p in await kernel_paths(handler.settings, kernel_id, False) if p]
        if not paths:
            return  # a kernel of no notebook: in no session
        place = await self.gate.access(self.gate.owner, paths[0])  # as the owner: which session
        if place.session_id is not None:
            count_runs(handler, self.tally, place.session_id, name, place.relative(paths[0]))

    async def _check(self, handler: Any, name: str, check: Target) -> tuple[bool, Access]:
        """``check`` holds at every path it is about (a kernel may serve several notebooks)."""
        paths = await resolve_paths(handler, check)
        access = Access.none(unresolved(check))
        if not paths:
            return self._refused(handler, name, check, access.reason, access)
        for path in paths:
            allowed, access, why = await self._check_at(handler, name, check, path)
            if not allowed:
                return self._refused(handler, name, check, why, access)
        if check.action == "execute":
            KERNEL_STARTER.set(access)
        return True, access

    async def _check_at(self, handler: Any, name: str, check: Target, path: str | None,
                        ) -> tuple[bool, Access, str]:
        """``check`` at one path, decided where that path really leads."""
        if path is not None and clean_path(path) != path:  # found, not named: a room, a kernel
            return False, Access.none(""), f"{path!r} is not a path hub_rtc reads exactly"
        access = await self._access(handler, name, path)
        allowed, why = access.permits(check)
        if not allowed or path is None:
            return allowed, access, why
        return await self._followed(handler, name, check, path, access)

    async def _followed(self, handler: Any, name: str, check: Target, path: str, access: Access,
                        ) -> tuple[bool, Access, str]:
        """Links and hard links, followed: what they lead to must be this session's too."""
        manager = handler.settings.get("contents_manager")
        if not isinstance(manager, FileManagerMixin):
            return True, access, ""  # no local files, no links
        root = str(manager.root_dir)  # type: ignore[attr-defined]
        real = real_path(root, access.root, path)
        if real is None:
            return False, access, f"{path!r} leads out of the session folder"
        if has_other_names(root, path):
            return False, access, f"{path!r} has other hard links: it may be a file elsewhere"
        if real == path:
            return True, access, ""
        if check.room is not None or check.document:
            return False, access, (f"{path!r} is a link: a collaborative document opens only by "
                                   "its real path")
        if is_hidden(real) and not manager.allow_hidden:  # type: ignore[attr-defined]
            return False, access, f"{path!r} leads to a hidden file"
        there = await self._access(handler, name, real)
        if there.session_id != access.session_id:
            return False, access, f"{path!r} leads out of the session folder"
        allowed, why = there.permits(check)
        return allowed, there, why

    async def _access(self, handler: Any, name: str, path: str | None) -> Access:
        return narrowed(handler.current_user, await self.gate.access(name, path))

    def _refused(self, handler: Any, name: str, check: Target, why: str, access: Access,
                 ) -> tuple[bool, Access]:
        # INFO: the rules at work (JupyterLab asks for what a viewer may not have);
        # what only an attack does (the server's own token) is a WARNING elsewhere
        self.log.info("hub_rtc: refused %s %s %s to %s: %s", check.action,
                         handler.request.method, handler.request.path, name, why)
        # ... and jupyter_server's own lines about this 403 are not WARNINGs either
        refused_by_design(getattr(handler, "log", self.log), self.log)
        return False, access

    def _watch(self, handler: Any, name: str, check: Target, access: Access) -> None:
        """Kernel and terminal sockets close at once when the service withdraws access."""
        if getattr(handler, "hub_rtc_watches_itself", False):
            return  # the guarded room keeps its own registration

        async def recheck() -> None:
            allowed, fresh = await self._check(handler, name, check)
            if not allowed:
                handler.close(ACCESS_WITHDRAWN, "hub_rtc: access withdrawn")

        key = self.gate.watch(name, access.session_id, recheck)
        original = handler.on_close

        def on_close() -> None:
            self.gate.unwatch(key)
            original()

        handler.on_close = on_close


def _below_base(handler: Any) -> str:
    """The request's path below the server's base URL ("" if it is not below it)."""
    base, path = handler.base_url, handler.request.path
    return str(path[len(base):]) if path.startswith(base) else ""


async def resolve_path(handler: Any, check: Target) -> str | None:
    """The file a check is about: from the URL, a room id or a kernel id."""
    if check.room is not None:
        path = room_path(handler.settings, check.room)
        if path is None:  # never "anywhere on this server": a room is one document
            raise web.HTTPError(404, "hub_rtc: no document on this server has that file id")
        return path
    return check.path


async def resolve_paths(handler: Any, check: Target) -> list[str | None]:
    """Every path a check is about; none when there is nothing it could hold at.

    A kernel is where the notebook sessions that use it are: all of them (one
    kernel may serve notebooks in several folders).  A kernel no notebook session
    uses is placed nowhere, and so is its owner's alone.
    """
    if check.kernel_id is not None:
        return await kernel_paths(handler.settings, check.kernel_id, check.new_kernel)
    if check.notebook_session is not None:
        return await notebook_session_paths(handler.settings, check.notebook_session)
    return [await resolve_path(handler, check)]


async def _notebook_sessions(settings: dict[str, Any]) -> list[dict[str, Any]]:
    manager = settings.get("session_manager")
    return list(await manager.list_sessions()) if manager is not None else []


def _kernel_of(session: dict[str, Any]) -> str | None:
    return (session.get("kernel") or {}).get("id")


async def kernel_paths(settings: dict[str, Any], kernel_id: str, may_be_new: bool,
                       ) -> list[str | None]:
    """The paths of the notebook sessions using ``kernel_id``.

    ``may_be_new``: a notebook session's body names a kernel id that no kernel has
    yet; jupyter_server starts a new kernel under it, attached to nothing else.
    """
    kernels = settings.get("kernel_manager")
    if kernels is None or kernel_id not in kernels:
        return [None] if may_be_new else []
    return [str(s.get("path") or "") for s in await _notebook_sessions(settings)
            if _kernel_of(s) == kernel_id]


async def notebook_session_paths(settings: dict[str, Any], session_id: str) -> list[str | None]:
    """Where a notebook session is now, with every notebook sharing its kernel (ending or
    changing the session ends or changes that kernel for them too)."""
    sessions = await _notebook_sessions(settings)
    found = next((s for s in sessions if s.get("id") == session_id), None)
    if found is None:
        return []
    kernel_id = _kernel_of(found)
    return [str(s.get("path") or "") for s in sessions
            if s is found or (kernel_id is not None and _kernel_of(s) == kernel_id)]


def unresolved(check: Target) -> str:
    """Why a check that resolved to no path is refused."""
    if check.kernel_id is not None:
        return (f"kernel {check.kernel_id} serves no notebook session: only the server's "
                "owner may use it")
    if check.notebook_session is not None:
        return f"no notebook session {check.notebook_session} on this server"
    return "nothing to check this request against"


def room_path(settings: dict[str, Any], room: RoomId) -> str | None:
    """The file behind a document room; None for other rooms and unknown file ids."""
    if not room.is_document:
        return None
    manager = settings.get("file_id_manager")
    path = manager.get_path(room.file_id) if manager is not None else None
    return str(path).strip("/") if path is not None else None


class HubRTCIdentityProvider(JupyterHubIdentityProvider):
    """JupyterHub's identity, with the service's persistent id, display name and colour."""

    gate = AnyTrait(help="The hub_rtc Gate that asks the service (set by the extension).")
    service_name = Unicode(
        help="The hub_rtc service's name: the one caller whose on-behalf header is believed "
             "(set by the extension)."
    )

    #: this server's own token's id at the hub, once asked ("": the hub names none)
    _own_token_id: str | None = None

    async def get_user(self, handler: Any) -> Any:
        where = own_token_in(handler, self.hub_auth)
        if where is not None:  # before the hub is asked, or a ?token= stored in a cookie
            refuse_own_token(handler, self.log, where)
        user = await super().get_user(handler)
        if user is None or getattr(user, "hub_rtc_identity", None) is not None:
            return user
        if same_token_id(user.hub_user, await self.own_token_id()):
            refuse_own_token(handler, self.log, "a way the hub resolved to its id")
        user = self._on_behalf(handler, user)
        access = await self.gate.identity_of(hub_name(user))
        if access.identity:
            shown = access.awareness_user(hub_name(user))
            user.username = shown["username"]  # the persistent id: survives hub renames
            user.display_name = shown["display_name"]
            user.initials = shown["initials"]
            user.color = shown["color"]
        user.hub_rtc_identity = access.awareness_user(hub_name(user))
        return user

    async def own_token_id(self) -> str | None:
        """This server's own token's id, as the hub names it (``/hub/api/user``'s ``token_id``)."""
        if self._own_token_id is None:
            try:
                model = await self.hub_auth.user_for_token(self.hub_auth.api_token, sync=False)
            except Exception as e:  # the hub is down: the tokens themselves are still compared
                self.log.warning("hub_rtc: could not ask the hub for this server's token id: %s", e)
                return None
            self._own_token_id = str((model or {}).get("token_id") or "")
        return self._own_token_id or None

    def _on_behalf(self, handler: Any, user: Any) -> Any:
        """The user the service names, if the caller is the service; else the caller."""
        raw = handler.request.headers.get(ON_BEHALF_HEADER)
        if raw is None:
            return user
        if not is_the_service(user.hub_user, self.service_name):
            self.log.warning("hub_rtc: ignored %s from %s %s: only the %r service may act for "
                             "users", ON_BEHALF_HEADER, user.hub_user.get("kind", "user"),
                             hub_name(user), self.service_name)
            return user
        read_only = handler.request.headers.get(READ_ONLY_HEADER, "").strip() not in ("", "0")
        asserted = asserted_user(user.hub_user, raw, read_only)
        handler._jupyterhub_user = asserted  # what JupyterHub's provider hands out from now on
        self.log.debug("hub_rtc: the %s service acts for %s on %s %s", self.service_name,
                       hub_name(asserted), handler.request.method, handler.request.path)
        return asserted


__all__ = ["KERNEL_STARTER", "HubRTCAuthorizer",
           "HubRTCIdentityProvider", "on_behalf"]
