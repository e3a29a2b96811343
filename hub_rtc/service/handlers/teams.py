"""/teams: teams the service keeps."""

from __future__ import annotations

from .base import APIHandler
from .sessions import changed

TEAM = r"/teams/(?P<team>[^/]+)"


class TeamsHandler(APIHandler):
    async def get(self) -> None:
        everyone = self.get_argument("all", "false").lower() in ("1", "true", "yes")
        teams = await self.manager.teams.list(await self.actor(), everyone)
        self.write_json({"teams": teams})

    async def post(self) -> None:
        actor = await self.actor()
        team = await self.manager.teams.create(actor, self.body("TeamCreate"))
        self.write_json(team, 201)


class TeamHandler(APIHandler):
    async def get(self, team: str) -> None:
        self.write_json(await self.manager.teams.get(await self.actor(), team))

    async def delete(self, team: str) -> None:
        changed(self, await self.manager.teams.delete(await self.actor(), team))


class TeamMemberHandler(APIHandler):
    async def put(self, team: str, name: str) -> None:
        actor = await self.actor()
        added = await self.manager.teams.put_member(actor, team, name)
        self.write_json(await self.manager.teams.get(actor, team), 201 if added else 200)

    async def delete(self, team: str, name: str) -> None:
        changed(self, await self.manager.teams.delete_member(await self.actor(), team, name))


default_handlers = [
    (r"/teams", TeamsHandler),
    (TEAM, TeamHandler),
    (TEAM + r"/members/(?P<name>[^/]+)", TeamMemberHandler),
]
