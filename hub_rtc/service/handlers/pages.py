"""The service's landing page: logs people in through the hub (HubOAuth).

The full hub UI comes later; this page exists so that browsers get the
OAuth cookie and the XSRF token every state change needs.
"""

from __future__ import annotations

from tornado import web
from tornado.escape import xhtml_escape

from ... import __version__
from .base import APIHandler

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="xsrf-token" content="{xsrf}">
<title>Collaboration sessions</title></head>
<body><main>
<h1>Collaboration sessions</h1>
<p>Signed in as <strong>{name}</strong>. hub_rtc {version} is running.</p>
<p>REST API: <a href="{api}/sessions">{api}/sessions</a>,
contract: <a href="{api}/openapi.yaml">openapi.yaml</a>.</p>
</main></body></html>
"""


class HomePage(APIHandler):
    @web.authenticated
    async def get(self) -> None:
        actor = await self.actor(scope=None)
        self.set_header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'self'")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(PAGE.format(
            xsrf=xhtml_escape(self.xsrf_token),
            name=xhtml_escape(actor.name),
            version=__version__,
            api=xhtml_escape(self.settings["api_prefix"]),
        ))


default_handlers = [(r"/?", HomePage)]
