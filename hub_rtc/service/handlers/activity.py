"""/sessions/{id}/activity: what members did."""

from __future__ import annotations

from .base import APIHandler
from .sessions import SESSION

FILTERS = ("since", "until", "user", "kind", "path", "limit")


class ActivityHandler(APIHandler):
    async def get(self, session_id: str) -> None:
        actor = await self.actor()
        filters = {k: v for k in FILTERS if (v := self.get_argument(k, None)) is not None}
        events = await self.manager.activity.read(actor, session_id, filters)
        self.write_json({"events": events})

    async def post(self, session_id: str) -> None:
        # custom:rtc:activity:write, filtered to the hosting server: the manager checks
        actor = await self.actor(None, server_token=True)
        batch = self.body("ActivityBatch")
        count = await self.manager.activity.record(actor, session_id, batch["events"],
                                                   batch.get("batch"))
        self.write_json({"recorded": count})


class SummaryHandler(APIHandler):
    async def get(self, session_id: str) -> None:
        members = await self.manager.activity.summary(await self.actor(), session_id)
        self.write_json({"members": members})


default_handlers = [
    (SESSION + r"/activity", ActivityHandler),
    (SESSION + r"/activity/summary", SummaryHandler),
]
