"""/servers: what shared servers call with their own token, and the admin's list."""

from __future__ import annotations

from ...manager.actor import SCOPE_ADMIN
from .base import APIHandler
from .events import ServerEventsHandler


class ServersHandler(APIHandler):
    async def get(self) -> None:
        servers = await self.manager.servers.list(await self.actor(SCOPE_ADMIN))
        self.write_json({"servers": servers})


# The server-facing handlers take custom:rtc:authorize filtered to the server
# (``!server=<user>/<name>``): the manager checks it for the server spoken for.
# They are the ones a server's own token may call (hub_rtc.manager.actor).


class AnnounceHandler(APIHandler):
    async def post(self) -> None:
        caller = await self.actor(None, server_token=True)
        self.write_json(await self.manager.servers.announce(caller, self.body("ServerAnnounce")))


class RightsHandler(APIHandler):
    async def post(self) -> None:
        caller = await self.actor(None, server_token=True)
        self.write_json(await self.manager.servers.rights(caller, self.body("RightsRequest")))


class BaselinesHandler(APIHandler):
    """The last authorized content of ruled cells: asked for on load, kept on save."""

    async def post(self) -> None:
        caller = await self.actor(None, server_token=True)
        self.write_json(await self.manager.baselines.read(caller, self.body("BaselineQuery")))

    async def put(self) -> None:
        caller = await self.actor(None, server_token=True)
        self.write_json(await self.manager.baselines.record(caller, self.body("BaselineRecord")))


class PresenceHandler(APIHandler):
    async def post(self) -> None:
        caller = await self.actor(None, server_token=True)
        online = await self.manager.presence.report(caller, self.body("PresenceReport"))
        self.write_json({"online": online})


default_handlers = [
    (r"/servers", ServersHandler),
    (r"/servers/announce", AnnounceHandler),
    (r"/servers/rights", RightsHandler),
    (r"/servers/presence", PresenceHandler),
    (r"/servers/baselines", BaselinesHandler),
    (r"/servers/events", ServerEventsHandler),
]
