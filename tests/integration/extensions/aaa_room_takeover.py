"""A server extension that serves the collaboration room route itself, as another
RTC server would (jupyter-server-documents does).  Its name sorts before
``hub_rtc``, so jupyter_server loads it first and tornado matches its route
first: the hub_rtc extension must then refuse to start."""

from __future__ import annotations

from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join


class OpenRoom(JupyterHandler):
    def get(self, *args: Any) -> None:
        self.finish("a room nobody guards")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "aaa_room_takeover"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    route = url_path_join(serverapp.web_app.settings["base_url"], "/api/collaboration/room/(.*)")
    serverapp.web_app.add_handlers(".*$", [(route, OpenRoom)])
