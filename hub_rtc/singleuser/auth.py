"""The Authorizer and IdentityProvider that JupyterHub's single-user server runs with.

The server's owner keeps JupyterHub's own behaviour; everyone else who
reaches this server (through a JupyterHub share) is checked against the
service: confined to their session's folder, and read, write, execute and
terminals by role and policy.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import replace
from typing import Any

from jupyterhub.singleuser.extension import JupyterHubAuthorizer, JupyterHubIdentityProvider
from tornado.websocket import WebSocketHandler
from traitlets import Any as AnyTrait

from .access import Access
from .gate import OWNER, Gate
from .targets import Target, target

#: Set while a request that may start a kernel is authorized, read by the
#: kernel-start hook: it runs in the same task, so the value flows to it.
KERNEL_STARTER: ContextVar[Access | None] = ContextVar("hub_rtc_kernel_starter", default=None)


def hub_name(user: Any) -> str:
    return str(user.hub_user["name"])


class HubRTCAuthorizer(JupyterHubAuthorizer):
    """JupyterHub's access scope check, then the service's decision for non-owners."""

    gate = AnyTrait(help="The hub_rtc Gate that asks the service (set by the extension).")

    async def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        if not super().is_authorized(handler, user, action, resource):
            return False
        gate: Gate = self.gate
        name = hub_name(user)
        if gate.is_owner(name):
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
        access = await self.gate.access(name, path)
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
    if check.room_id is not None:
        return room_path(handler.settings, check.room_id)
    if check.kernel_id is not None:
        manager = handler.settings.get("session_manager")
        if manager is not None:
            for session in await manager.list_sessions():
                if (session.get("kernel") or {}).get("id") == check.kernel_id:
                    return str(session.get("path") or "").strip("/")
        return None
    return check.path


def room_path(settings: dict[str, Any], room_id: str) -> str | None:
    """The file behind ``<format>:<type>:<file id>``; None for other rooms."""
    parts = room_id.split(":", 2)
    if len(parts) != 3:
        return None
    manager = settings.get("file_id_manager")
    path = manager.get_path(parts[2]) if manager is not None else None
    return str(path).strip("/") if path is not None else None


class HubRTCIdentityProvider(JupyterHubIdentityProvider):
    """JupyterHub's identity, with the service's persistent id, display name and colour."""

    gate = AnyTrait(help="The hub_rtc Gate that asks the service (set by the extension).")

    async def get_user(self, handler: Any) -> Any:
        user = await super().get_user(handler)
        if user is None or getattr(user, "hub_rtc_identity", None) is not None:
            return user
        access = await self.gate.identity_of(hub_name(user))
        if access.identity:
            shown = access.awareness_user(hub_name(user))
            user.username = shown["username"]  # the persistent id: survives hub renames
            user.display_name = shown["display_name"]
            user.initials = shown["initials"]
            user.color = shown["color"]
        user.hub_rtc_identity = access.awareness_user(hub_name(user))
        return user


__all__ = ["KERNEL_STARTER", "OWNER", "HubRTCAuthorizer", "HubRTCIdentityProvider"]
