"""The student's home: my sessions and the ones shared with me."""

from __future__ import annotations

from tornado import web

from .base import PageHandler

SECTIONS = (
    ("mine", "My sessions", "You have no sessions yet."),
    ("shared", "Shared with me", "Nobody has shared a session with you yet."),
)


class HomePage(PageHandler):
    section = "sessions"

    @web.authenticated
    async def get(self) -> None:
        actor = await self.viewer()
        sections = []
        for key, label, empty in SECTIONS:
            found = await self.manager.sessions.list(actor, which=key, state="active")
            if key == "shared":  # my own sessions are listed above
                found = [s for s in found if s["owner"] != actor.name]
            sections.append({"key": key, "label": label, "empty": empty, "sessions": found})
        await self.render_page("home.html", sections=sections)


default_handlers = [(r"/?", HomePage)]
