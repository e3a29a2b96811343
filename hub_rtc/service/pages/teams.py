"""Teams: create one, add and remove its members, delete it."""

from __future__ import annotations

from typing import Any

from tornado import web

from ...decision.teams import owns_team
from ...manager import RTCError
from .base import FormError, PageHandler, field_errors

TEAM = r"/teams/(?P<team>[^/]+)"


def names(raw: str) -> list[str]:
    """User names typed one per line or separated by commas or spaces."""
    return [n for n in raw.replace(",", " ").split() if n]


class TeamsPage(PageHandler):
    section = "teams"

    @web.authenticated
    async def get(self) -> None:
        await self._show({}, {})

    @web.authenticated
    async def post(self) -> None:
        actor = await self.viewer()
        values = {"name": self.get_body_argument("name", ""),
                  "members": self.get_body_argument("members", "")}
        body = {"name": values["name"].strip(), "members": names(values["members"])}
        try:
            team = await self.manager.teams.create(actor, self.form("TeamCreate", body, ("name", "members")))
        except FormError as e:
            return await self._show(values, e.errors, e.status)
        except RTCError as e:
            errors = field_errors(e, ("name", "members"))
            if "" in errors and "user" in e.message:
                errors = {"members": e.message}
            return await self._show(values, errors, e.status)
        self.done("teams", team["name"], notice="team")

    async def _show(self, values: dict[str, Any], errors: dict[str, str], status: int = 200) -> None:
        actor = await self.viewer()
        teams = await self.manager.teams.list(actor)
        await self.render_page("teams.html", status=status, teams=teams,
                               values=values, errors=errors)


class TeamPage(PageHandler):
    section = "teams"

    @web.authenticated
    async def get(self, team: str) -> None:
        await self._show(team, {})

    async def _show(self, team: str, errors: dict[str, str], status: int = 200) -> None:
        actor = await self.viewer()
        found = await self.manager.teams.get(actor, team)
        await self.render_page("team.html", status=status, team=found,
                               owns=owns_team(actor.name, found["owner"], actor.is_admin), errors=errors)

    @web.authenticated
    async def post(self, team: str) -> None:
        actor = await self.viewer()
        arg = self.get_body_argument
        try:
            notice = await self._act(actor, team, arg("action", ""), arg("user", "").strip())
        except RTCError as e:
            return await self._show(team, {"user": e.message}, e.status)
        if notice == "team-deleted":
            return self.done("teams", notice=notice)
        self.done("teams", team, notice=notice)

    async def _act(self, actor: Any, team: str, action: str, user: str) -> str:
        teams = self.manager.teams
        if action == "delete":
            await teams.delete(actor, team)
            return "team-deleted"
        for name in names(user) or [""]:
            if not name:
                raise FormError({"user": "name a hub user"})
            if action == "add":
                await teams.put_member(actor, team, name)
            elif action == "remove":
                await teams.delete_member(actor, team, name)
            else:
                raise FormError({"": f"unknown action {action!r}"})
        return "team"


default_handlers = [(r"/teams", TeamsPage), (TEAM, TeamPage)]
