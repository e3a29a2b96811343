"""What every API handler shares: hub authentication, scopes, JSON in and out."""

from __future__ import annotations

import json
import logging
from typing import Any

from jupyterhub.services.auth import HubOAuthenticated
from tornado.web import HTTPError, RequestHandler

from ...adapters.hub import HubClient
from ...manager import Actor, Manager, RTCError
from ...manager.actor import SCOPE_SESSIONS, server_token_refusal
from ...manager.errors import BadRequest, TooLarge
from ...records import DatabaseUnavailable
from ..spec import check

log = logging.getLogger("hub_rtc.service")


class APIHandler(HubOAuthenticated, RequestHandler):
    """Base of the REST handlers.

    Scripts authenticate with ``Authorization: token …``; pages with the
    HubOAuth cookie, which HubOAuth accepts on state changes only with a
    valid ``_xsrf`` token.
    """

    @property
    def manager(self) -> Manager:
        return self.settings["manager"]

    @property
    def hub(self) -> HubClient:
        return self.settings["hub_client"]

    async def prepare(self) -> None:
        limit = self.settings["max_body_bytes"]
        length = int(self.request.headers.get("Content-Length") or 0)
        if length > limit or len(self.request.body or b"") > limit:
            raise TooLarge(f"request body is larger than {limit} bytes")
        # Resolve the user asynchronously: the mixin's synchronous
        # get_current_user would block the event loop on the hub.
        model = await self.hub_auth.get_user(self, sync=False)
        if model and self.hub_scopes and not self.hub_auth.check_scopes(self.hub_scopes, model):
            model = None
        self._hub_auth_user_cache = model
        self.current_user = model

    def check_xsrf_cookie(self) -> None:
        # HubOAuth decides per request (tokens need none, cookies do).
        return self.hub_auth.check_xsrf_cookie(self)

    async def actor(self, scope: str | None = SCOPE_SESSIONS, *, server_token: bool = False,
                    ) -> Actor:
        """The caller, who must hold ``scope`` (``custom:rtc:admin`` holds all).

        ``server_token``: the endpoint is one a shared server calls with its own
        token; everywhere else that token is refused, whatever its scopes
        (:mod:`hub_rtc.manager.actor` lists them).
        """
        model = self.current_user
        if not model:
            raise HTTPError(403, "authenticate with a hub token or log in through the hub")
        scopes = frozenset(model.get("scopes") or ())
        kind = model.get("kind", "user")
        groups = frozenset(model.get("groups") or ())
        refusal = server_token_refusal(Actor(model["name"], groups, scopes, kind))
        if refusal is not None and not server_token:
            log.warning("%s %s refused: %s", self.request.method, self.request.path, refusal)
            raise HTTPError(403, refusal)
        if kind == "user":
            found = await self.hub.user(model["name"])
            groups = found.groups if found else groups
        actor = Actor(model["name"], groups, scopes, kind)
        if scope and not actor.has(scope):
            raise HTTPError(403, f"this token lacks the {scope} scope")
        return actor

    def body(self, schema: str) -> dict[str, Any]:
        """The JSON body, checked against ``schema`` in the OpenAPI spec."""
        try:
            value = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(f"request body is not valid JSON: {e}") from None
        check(schema, value)
        return value

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(value))

    def compute_etag(self) -> None:
        # No ETag: API answers are live state, never revalidated by a cache, and
        # tornado would hash every body (a whole notebook, for a document read).
        return None

    def no_content(self) -> None:
        self.set_status(204)
        self.finish()

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        self.set_header("X-Content-Type-Options", "nosniff")

    def error_of(self, status_code: int, kwargs: dict[str, Any]) -> tuple[int, str]:
        """The status and the message meant for the person, of what went wrong."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, RTCError):
            self.set_status(exc.status)
            return exc.status, exc.message
        if isinstance(exc, DatabaseUnavailable):
            self.set_status(503)
            self.set_header("Retry-After", "5")
            return 503, str(exc)
        if isinstance(exc, HTTPError) and exc.log_message:
            return status_code, exc.log_message % exc.args if exc.args else exc.log_message
        return status_code, self._reason

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        status_code, message = self.error_of(status_code, kwargs)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"status": status_code, "message": message}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, RTCError):
            log.info("%s %s: %d %s", self.request.method, self.request.path, value.status, value.message)
            return
        if isinstance(value, DatabaseUnavailable):  # a fault to see, but no traceback to read
            log.warning("%s %s: 503 %s (%s)", self.request.method, self.request.path, value,
                        value.__cause__)
            return
        super().log_exception(typ, value, tb)
