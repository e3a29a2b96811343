"""A refusal by design is not a WARNING in a shared server's log (issue 12).

A real tornado server with jupyter_server's access log and tornado loggers wired the
way jupyter_server wires them (``ServerApp.init_logging``): a request the rules
refuse leaves its access line at INFO and nothing at WARNING; any other 403, and any
other warning of a refused request, stay WARNINGs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from jupyter_server.log import log_request
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, HTTPError, RequestHandler

from hub_rtc.singleuser.refusals import refused_by_design

APP_LOG = logging.getLogger("hub_rtc_test.ServerApp")


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


class Handler(RequestHandler):
    """A jupyter_server API handler in miniature: its ``log``, its ``write_error``."""

    @property
    def log(self) -> logging.Logger:
        return APP_LOG

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.log.warning("wrote error: %r", self._reason)  # as APIHandler.write_error does
        self.finish()


class Refused(Handler):
    def get(self) -> None:
        refused_by_design(self.log)  # what the Authorizer does when the rules say no
        raise HTTPError(403, "User is not authorized to read on resource: kernels.")


class RefusedAndBroken(Handler):
    def get(self) -> None:
        refused_by_design(self.log)
        self.log.warning("the disk is full")
        raise HTTPError(403, "User is not authorized to read on resource: kernels.")


class Forbidden(Handler):
    def get(self) -> None:  # a 403 the rules did not decide
        raise HTTPError(403, "somebody else's server")


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, Kept]]:
    kept = Kept()
    monkeypatch.setattr(APP_LOG, "handlers", [kept])
    monkeypatch.setattr(APP_LOG, "propagate", False)
    APP_LOG.setLevel(logging.INFO)
    tornado_log = logging.getLogger("tornado")
    monkeypatch.setattr(tornado_log, "parent", APP_LOG)  # ServerApp.init_logging's wiring
    monkeypatch.setattr(tornado_log, "propagate", True)
    app = Application([("/refused", Refused), ("/refused-and-broken", RefusedAndBroken),
                       ("/forbidden", Forbidden)], log_function=log_request)
    sockets = bind_sockets(0, "127.0.0.1")
    http = HTTPServer(app)
    http.add_sockets(sockets)
    yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}", kept
    http.stop()
    await http.close_all_connections()


async def fetch(url: str) -> int:
    response = await AsyncHTTPClient().fetch(url, raise_error=False)
    return response.code


async def test_a_refusal_by_design_leaves_no_warning(server: tuple[str, Kept]) -> None:
    url, kept = server
    assert await fetch(url + "/refused") == 403
    assert kept.lines(logging.WARNING) == []
    [access] = kept.lines(logging.INFO)
    assert access.startswith("403 GET /refused ")  # one line per request stays, at INFO


async def test_other_403s_and_other_warnings_stay_warnings(server: tuple[str, Kept]) -> None:
    url, kept = server
    assert await fetch(url + "/forbidden") == 403  # not refused by the rules
    assert await fetch(url + "/refused") == 403  # marks its own request only
    assert await fetch(url + "/forbidden") == 403
    warned = kept.lines(logging.WARNING)
    assert len(warned) == 6, warned  # tornado's, write_error's and the access line, twice
    assert all("forbidden" in line or "somebody else's" in line or "wrote error" in line
               for line in warned)
    kept.records.clear()
    assert await fetch(url + "/refused-and-broken") == 403
    assert kept.lines(logging.WARNING) == ["the disk is full"]
