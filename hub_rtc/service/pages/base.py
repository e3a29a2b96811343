"""What every page shares: the hub's look, login, XSRF, errors shown in HTML.

Pages are thin like the REST handlers: they read and change things only
through the managers, so a page can do nothing the API would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from ... import __version__
from ...manager import Actor, RTCError
from ...manager.errors import Invalid
from ...manager.hosting.hosting import serves
from ..handlers.base import APIHandler
from ..spec import check


def when(value: str | None) -> str:
    """An ISO timestamp as people read it, in UTC (the service's clock).

    This is the text shown without script; static/times.js replaces it with
    the reader's own time zone (the ``when`` macro keeps the exact moment)."""
    if not value:
        return "–"
    stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def duration(hours: float) -> str:
    """A policy duration as people say it: "14 days", "36 hours"."""
    if hours >= 48 and hours % 24 == 0:
        return f"{int(hours // 24)} days"
    return f"{hours:g} hour{'' if hours == 1 else 's'}"


#: where a session lives, in words (policy names them ``account`` and ``owner``)
HOSTS = {"account": "a dedicated session server", "owner": "a folder of the owner's server"}


@dataclass(frozen=True)
class HostingWords:
    """Whether a session can be opened, as its members should read it.

    The hosting message ("hub_rtc 0.1.0 announced itself at …") is written for
    whoever runs the hub; a student reads it as the state of their session, so
    pages lead with these words and keep the message as a detail.
    """

    badge: str   # a word or two, in the badge (its colour is never the only sign)
    tone: str    # the badge's Bootstrap colour: success, info, warning, danger, secondary
    detail: str  # what it means for the person reading

    @property
    def sentence(self) -> str:
        badge = self.badge.rstrip("…")  # "Starting: …", not "Starting…: …"
        return f"{badge[:1].upper()}{badge[1:]}: {self.detail}"


def _whose_server(session: Mapping[str, Any]) -> str:
    if session.get("host") == "owner":
        return f"{session.get('owner', 'the owner')}'s server"
    return "the session's server"


#: per hosting state (``records.models.HOSTING_STATES``): badge, tone, and what it
#: means, where ``{server}`` is whose server it is
_HOSTING_WORDS = {
    "ready": ("ready", "success", "{server} is running with collaboration enabled"),
    "unmanaged": ("ready", "success", "{server} is running; this hub lets people in by its own settings"),
    "starting": ("starting…", "info", "{server} is being started with collaboration enabled;"
                 " reload the page in a moment to see it ready"),
    "waiting": ("waiting", "warning", "{server} is not running with collaboration enabled; nobody"
                " can open the session until it is"),
    "failed": ("could not start", "danger", "{server} did not start with collaboration enabled;"
               " the details say why"),
    "stopped": ("stopped", "secondary", "nobody is let in any more"),
}
#: a state added later: say it cannot be opened (as ``serves`` fails closed)
_UNKNOWN = ("not open", "warning", "the session cannot be opened right now")
#: an ended session, whatever its server does
_ENDED = ("ended", "secondary", "nobody can open it any more; its files and records are kept")


def hosting_words(session: Mapping[str, Any]) -> HostingWords:
    """The plain words for where ``session`` (the API's form) stands."""
    state = str((session.get("hosting") or {}).get("state", ""))
    badge, tone, detail = _ENDED if session.get("state") == "ended" else _HOSTING_WORDS.get(state, _UNKNOWN)
    return HostingWords(badge, tone, detail.format(server=_whose_server(session)))


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("hub_rtc.service", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["duration"] = duration
    env.filters["host"] = lambda key: HOSTS.get(key, key)
    env.globals["serves"] = serves  # whether a hosting state serves documents
    env.globals["hosting_words"] = hosting_words
    return env


class FormError(Exception):
    """A form's input was refused: what to show beside which field."""

    def __init__(self, errors: dict[str, str], status: int = 400) -> None:
        super().__init__(errors)
        self.errors, self.status = errors, status


def field_errors(error: RTCError, fields: tuple[str, ...]) -> dict[str, str]:
    """Put a refusal beside the field it names (``"title: …"``, ``"expires_at must …"``),
    else above the form."""
    head, sep, rest = error.message.partition(": ")
    key = head.split("/")[0]
    if sep and key in fields:
        return {key: rest}
    first = error.message.split(" ", 1)[0]
    if first in fields:
        return {first: error.message}
    return {"": error.message}


class PageHandler(APIHandler):
    """A page of the hub UI, for people logged in through the hub."""

    #: the nav entry this page belongs to (see ``_nav``)
    section = ""
    _viewer: Actor | None = None

    def set_default_headers(self) -> None:
        # scripts and styles come from the hub and this service only (no inline code)
        self.set_header("Content-Security-Policy",
                        "default-src 'self'; img-src 'self' data:; object-src 'none';"
                        " base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")

    @property
    def prefix(self) -> str:
        return str(self.settings["page_prefix"])

    def url(self, *parts: str, **query: str) -> str:
        """A page URL: path parts are quoted, so names never break out of them."""
        path = self.prefix + "/".join(quote(p, safe="") for p in parts)
        if query:
            path += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
        return path

    async def viewer(self) -> Actor:
        """The logged-in person, resolved once per request (a page re-renders after a refusal)."""
        if self._viewer is None:
            self._viewer = await self.actor()
        return self._viewer

    async def render_page(self, template: str, status: int = 200, **values: Any) -> None:
        actor = await self.viewer()
        page = self.settings["templates"].get_template(template).render(
            **self._common(actor), **values)
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(page)

    def _common(self, actor: Actor) -> dict[str, Any]:
        policy = self.manager.ctx.policy
        return {
            "me": {"name": actor.name, "admin": actor.is_admin,
                   "watches": sorted(policy.watched_groups(actor.groups)),
                   "can_create": self.manager.sessions.may_create(actor)},
            "xsrf": self.xsrf_token.decode() if isinstance(self.xsrf_token, bytes) else self.xsrf_token,
            "hub": self.settings["hub_prefix"],
            "api": self.settings["api_prefix"],
            "home": self.prefix,
            "version": __version__,
            "nav": self._nav(actor),
            "notice": self.get_argument("done", None) and NOTICES.get(self.get_argument("done")),
            "url": self.url,
            "static": lambda name: self.static_url(name),
        }

    def _nav(self, actor: Actor) -> list[dict[str, Any]]:
        items = [("sessions", "Sessions", self.url()), ("new", "New session", self.url("sessions", "new")),
                 ("teams", "Teams", self.url("teams"))]
        if self.manager.ctx.policy.watched_groups(actor.groups) or actor.is_admin:
            items.append(("dashboard", "Dashboard", self.url("dashboard")))
        if actor.is_admin:
            items.append(("admin", "Admin", self.url("admin")))
        return [{"label": label, "href": href, "current": key == self.section}
                for key, label, href in items]

    def form(self, schema: str, body: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
        """``body``, checked against the API's own schema; a FormError names the field."""
        try:
            check(schema, body)
        except Invalid as e:
            raise FormError(field_errors(e, fields), 400) from None
        return body

    def done(self, *parts: str, notice: str = "") -> None:
        """After a change: back to a page (303, so a reload does not post again)."""
        self.redirect(self.url(*parts, **({"done": notice} if notice else {})), status=303)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        status_code, message = self.error_of(status_code, kwargs)
        env = self.settings["templates"]
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(env.get_template("error.html").render(
            status=status_code, reason=self._reason, message=message, home=self.prefix,
            me={"name": (self.current_user or {}).get("name", "")}, nav=[], xsrf="",
            hub=self.settings["hub_prefix"], api=self.settings["api_prefix"], version=__version__,
            static=lambda name: self.static_url(name)))


#: what a page says after a change it redirected from (never user text: no reflection)
NOTICES = {
    "created": "Session created.",
    "member": "Members updated.",
    "removed": "Member removed.",
    "cells": "Cell rules updated.",
    "ended": "Session ended. Its records are kept.",
    "team": "Team saved.",
    "team-deleted": "Team deleted.",
    "joined": "You joined read-only: open the session to watch it live.",
    "left": "You left the session.",
}
