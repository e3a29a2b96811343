"""A server extension that writes into collaborative documents from inside the
server, through jupyter-collaboration's ``get_document`` (as AI assistants and
other tools do).  ``POST /api/zz-live-writer`` with ``{"path", "copy", "text"}``
puts ``text`` at the start of every cell's source of that notebook and answers
what happened."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web


class LiveWriter(APIHandler):
    @web.authenticated
    async def post(self) -> None:
        body = json.loads(self.request.body)
        ydoc = next(iter(self.serverapp.extension_manager.extension_apps["jupyter_server_ydoc"]))
        try:
            doc = await ydoc.get_document(path=body["path"], content_type="notebook",
                                          file_format="json", copy=body["copy"], create=True)
        except PermissionError as e:
            self.finish({"written": False, "error": str(e)})
            return
        for cell in doc.ycells:
            cell["source"].insert(0, body["text"])
        self.finish({"written": True, "error": None})


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "zz_live_writer"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    route = url_path_join(serverapp.web_app.settings["base_url"], "/api/zz-live-writer")
    serverapp.web_app.add_handlers(".*$", [(route, LiveWriter)])
