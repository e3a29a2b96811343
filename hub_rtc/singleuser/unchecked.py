"""API handlers that never ask the Authorizer, made to ask it.

jupyter_server consults the Authorizer only in handler methods decorated with
``@authorized``.  Several API handlers are merely ``@web.authenticated``:
jupyterlab_server's settings and workspaces, JupyterLab's extension, plugin
and build managers, and ``/api/me``.  To them everyone the hub lets reach this
server is its owner, and a share lets every collaborator reach it: a viewer
could change the owner's settings, overwrite their workspaces, or disable and
install JupyterLab extensions (which runs pip as the owner).

When the extension starts, :func:`check_unchecked` wraps every such method of
every API handler on the server, so that it asks the Authorizer first, as
``@authorized`` would.  Handlers added by other extensions are covered too:
what :mod:`.targets` does not know, collaborators may read but not change.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async
from tornado import web

#: the Authorizer's action for each HTTP method, as jupyter_server maps them
ACTIONS = {"get": "read", "head": "read", "post": "write", "put": "write", "patch": "write",
           "delete": "write"}
#: the resource named to the Authorizer when a handler names none
UNNAMED = "api"
#: set on the wrappers made here, so that nothing is wrapped twice
MARK = "_hub_rtc_asks_authorizer"


def check_unchecked(web_app: web.Application) -> list[str]:
    """Make every API method that skips the Authorizer ask it; returns what was wrapped."""
    wrapped = []
    for cls in _unique(handler_classes(web_app.default_router.rules)):
        if not issubclass(cls, APIHandler):
            continue  # pages, redirects, static files and websockets check for themselves
        for name, action in ACTIONS.items():
            method = getattr(cls, name, None)
            if method is None or method is getattr(web.RequestHandler, name) or asks_authorizer(method):
                continue
            setattr(cls, name, asking(method, action))
            wrapped.append(f"{name.upper()} {cls.__module__}.{cls.__qualname__}")
    return wrapped


def handler_classes(rules: Iterable[Any]) -> Iterator[type]:
    """Every handler class a tornado router (and the routers inside it) can reach."""
    for rule in rules:
        target = rule.target
        if hasattr(target, "rules"):
            yield from handler_classes(target.rules)
        elif inspect.isclass(target) and issubclass(target, web.RequestHandler):
            yield target


def _unique(classes: Iterable[type]) -> list[type]:
    return list(dict.fromkeys(classes))


def asks_authorizer(method: Callable[..., Any]) -> bool:
    """Whether ``method`` is decorated with ``@authorized`` (or wrapped here), or open to all.

    When in doubt it says no: a method wrapped needlessly only asks twice.
    """
    found: Any = method
    while found is not None:
        if getattr(found, MARK, False) or getattr(found, "__allow_unauthenticated", False):
            return True
        code = getattr(found, "__code__", None)
        if (code is not None and code.co_name == "inner"
                and code.co_filename.replace("\\", "/").endswith("jupyter_server/auth/decorator.py")):
            return True
        found = getattr(found, "__wrapped__", None)
    return False


def asking(method: Callable[..., Any], action: str) -> Callable[..., Any]:
    """``method``, asking the Authorizer first, as jupyter_server's ``@authorized`` does."""

    @functools.wraps(method)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        resource = getattr(self, "auth_resource", None) or UNNAMED
        user = self.current_user
        if not user or not await ensure_async(self.authorizer.is_authorized(self, user, action, resource)):
            raise web.HTTPError(403, f"hub_rtc: you may not {action} {self.request.path} on this server")
        return await ensure_async(method(self, *args, **kwargs))

    setattr(wrapper, MARK, True)
    return wrapper
