"""/sessions, /sessions/{id} and /sessions/{id}/members/…"""

from __future__ import annotations

from ...manager.errors import Invalid
from ...manager.notify import Enforcement
from .base import APIHandler

SESSION = r"/sessions/(?P<session_id>[^/]+)"


def changed(handler: APIHandler, enforcement: Enforcement) -> None:
    """The answer to a DELETE that withdrew rights: 204 once in force on every server
    hosting the session; 202 with who has not confirmed yet, otherwise."""
    if enforcement.enforced:
        handler.no_content()
    else:
        handler.write_json(enforcement.json(), 202)


def _int_arg(handler: APIHandler, name: str, default: int, low: int, high: int) -> int:
    raw = handler.get_argument(name, str(default))
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Invalid(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


class SessionsHandler(APIHandler):
    async def get(self) -> None:
        actor = await self.actor()
        sessions = await self.manager.sessions.list(
            actor,
            which=self.get_argument("which", "visible"),
            state=self.get_argument("state", None),
            limit=_int_arg(self, "limit", 200, 1, 1000),
            offset=_int_arg(self, "offset", 0, 0, 10**9),
        )
        self.write_json({"sessions": sessions})

    async def post(self) -> None:
        actor = await self.actor()
        session = await self.manager.sessions.create(actor, self.body("SessionCreate"))
        self.set_header("Location", f"sessions/{session['id']}")
        self.write_json(session, 201)


class SessionHandler(APIHandler):
    async def get(self, session_id: str) -> None:
        self.write_json(await self.manager.sessions.get(await self.actor(), session_id))

    async def patch(self, session_id: str) -> None:
        actor = await self.actor()
        body = self.body("SessionPatch")
        self.write_json(await self.manager.sessions.update(actor, session_id, body))

    async def delete(self, session_id: str) -> None:
        changed(self, await self.manager.sessions.end(await self.actor(), session_id))


class MembersHandler(APIHandler):
    async def get(self, session_id: str) -> None:
        members = await self.manager.members.list(await self.actor(), session_id)
        self.write_json({"members": members})


class MemberHandler(APIHandler):
    async def put(self, session_id: str, kind: str, name: str) -> None:
        actor = await self.actor()
        body = self.body("MemberPut")
        member, created = await self.manager.members.put(actor, session_id, kind, name, body)
        self.write_json(member, 201 if created else 200)

    async def delete(self, session_id: str, kind: str, name: str) -> None:
        changed(self, await self.manager.members.delete(await self.actor(), session_id, kind, name))


class WatchHandler(APIHandler):
    """An instructor joins a watched session read-only, or leaves it."""

    async def post(self, session_id: str) -> None:
        self.write_json(await self.manager.watching.join(await self.actor(), session_id))

    async def delete(self, session_id: str) -> None:
        await self.manager.watching.leave(await self.actor(), session_id)
        self.no_content()


default_handlers = [
    (r"/sessions", SessionsHandler),
    (SESSION, SessionHandler),
    (SESSION + r"/members", MembersHandler),
    (SESSION + r"/watch", WatchHandler),
    (SESSION + r"/members/(?P<kind>user|team|group)/(?P<name>[^/]+)", MemberHandler),
]
