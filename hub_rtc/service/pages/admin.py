"""The admin page: the policy in force, counts, health, announced servers."""

from __future__ import annotations

from tornado import web

from ...manager.actor import SCOPE_ADMIN
from .base import PageHandler


class AdminPage(PageHandler):
    section = "admin"

    @web.authenticated
    async def get(self) -> None:
        actor = self._viewer = await self.actor(SCOPE_ADMIN)
        await self.render_page(
            "admin.html",
            policy=self.manager.ctx.policy.to_dict(),
            report=await self.manager.status.report(actor),
            servers=await self.manager.servers.list(actor),
        )


default_handlers = [(r"/admin", AdminPage)]
