"""/sessions/{id}/cells: per-cell rules."""

from __future__ import annotations

from ...adapters.probe import notebook_probe
from .base import APIHandler
from .sessions import SESSION, changed


class CellsHandler(APIHandler):
    async def get(self, session_id: str) -> None:
        actor = await self.actor()
        rules = await self.manager.cells.rules(actor, session_id, self.get_argument("path", None))
        self.write_json({"cells": rules})

    async def put(self, session_id: str) -> None:
        actor = await self.actor()
        rule, created = await self.manager.cells.put(actor, session_id, self.body("CellRulePut"),
                                                     notebook_probe(self.settings["upstream"]))
        self.write_json(rule, 201 if created else 200)

    async def delete(self, session_id: str) -> None:
        actor = await self.actor()
        path, cell_id = self.get_argument("path"), self.get_argument("cell_id")
        changed(self, await self.manager.cells.delete(actor, session_id, path, cell_id))


default_handlers = [(SESSION + r"/cells", CellsHandler)]
