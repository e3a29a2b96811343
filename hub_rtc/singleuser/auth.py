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
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

from jupyterhub.singleuser.extension import (
    JupyterHubAuthorizer,
    JupyterHubIdentityProvider,
    JupyterHubUser,
)
from tornado import web
from tornado.websocket import WebSocketHandler
from traitlets import Any as AnyTrait
from traitlets import Unicode

from .access import Access
from .gate import OWNER, Gate
from .roomid import RoomId
from .targets import Target, target

#: Set while a request that may start a kernel is authorized, read by the
#: kernel-start hook: it runs in the same task, so the value flows to it.
KERNEL_STARTER: ContextVar[Access | None] = ContextVar("hub_rtc_kernel_starter", default=None)


#: the header in which the hub_rtc service names the user it acts for
#: (percent-encoded UTF-8, as hub_rtc.service.upstream writes it)
ON_BEHALF_HEADER = "X-HubRTC-On-Behalf-Of"
#: "1" with it: that user gets no more than read rights (the token the service
#: acts on may read documents, not change them)
READ_ONLY_HEADER = "X-HubRTC-Read-Only"
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


def confined(access: Access) -> Access:
    """What a user may do when the service acts for them: what their sessions give,
    never more; the server's owner too gets no terminal and nothing outside a
    session folder, and kernels started so never hold the server's token."""
    if access.session_id is None:
        return Access.none("the hub_rtc service acts for users only inside sessions")
    return replace(access, terminal=False, server_owner=False)


def narrowed(user: Any, access: Access) -> Access:
    """``access`` as it applies to ``user``: unchanged for anyone signed in themselves;
    :func:`confined` (and read-only if the service said so) for a user it acts for."""
    if not on_behalf(user):
        return access
    access = confined(access)
    if user.hub_user.get(READ_ONLY):
        access = replace(access, write=False, execute=False, manage=False)
    return access


class HubRTCAuthorizer(JupyterHubAuthorizer):
    """JupyterHub's access scope check, then the service's decision for non-owners."""

    gate = AnyTrait(help="The hub_rtc Gate that asks the service (set by the extension).")

    async def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        if not super().is_authorized(handler, user, action, resource):
            return False
        gate: Gate = self.gate
        name = hub_name(user)
        if gate.is_owner(name) and not on_behalf(user):
            if resource in ("kernels", "sessions") and action != "read":
                KERNEL_STARTER.set(replace(await gate.identity_of(name), server_owner=True))
            return True
        base = handler.base_url
        relative = handler.request.path[len(base):] if handler.request.path.startswith(base) else ""
        checks = target(handler.request.method, relative, resource, action,
                        handler.path_kwargs, handler.request.body or b"")
        for check in checks:
            allowed, access = await self._check(handler, name, check)
            if not allowed:
                return False
        if isinstance(handler, WebSocketHandler) and checks:
            self._watch(handler, name, checks[0], access)
        return True

    async def _check(self, handler: Any, name: str, check: Target) -> tuple[bool, Access]:
        path = await resolve_path(handler, check)
        access = narrowed(handler.current_user, await self.gate.access(name, path))
        allowed, why = access.permits(check)
        if not allowed:
            self.log.warning("hub_rtc: refused %s %s %s to %s: %s", check.action,
                             handler.request.method, handler.request.path, name, why)
        elif check.action == "execute":
            KERNEL_STARTER.set(access)
        return allowed, access

    def _watch(self, handler: Any, name: str, check: Target, access: Access) -> None:
        """Kernel and terminal sockets close at once when the service withdraws access."""
        if getattr(handler, "hub_rtc_watches_itself", False):
            return  # the guarded room keeps its own registration

        async def recheck() -> None:
            allowed, fresh = await self._check(handler, name, check)
            if not allowed:
                handler.close(4403, "hub_rtc: access withdrawn")

        key = self.gate.watch(name, access.session_id, recheck)
        original = handler.on_close

        def on_close() -> None:
            self.gate.unwatch(key)
            original()

        handler.on_close = on_close


async def resolve_path(handler: Any, check: Target) -> str | None:
    """The file a check is about: from the URL, a room id or a kernel id."""
    if check.room is not None:
        path = room_path(handler.settings, check.room)
        if path is None:  # never "anywhere on this server": a room is one document
            raise web.HTTPError(404, "hub_rtc: no document on this server has that file id")
        return path
    if check.kernel_id is not None:
        manager = handler.settings.get("session_manager")
        if manager is not None:
            for session in await manager.list_sessions():
                if (session.get("kernel") or {}).get("id") == check.kernel_id:
                    return str(session.get("path") or "").strip("/")
        return None
    return check.path


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

    async def get_user(self, handler: Any) -> Any:
        user = await super().get_user(handler)
        if user is None or getattr(user, "hub_rtc_identity", None) is not None:
            return user
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


__all__ = ["KERNEL_STARTER", "ON_BEHALF_HEADER", "OWNER", "HubRTCAuthorizer",
           "HubRTCIdentityProvider", "on_behalf"]
