"""A refusal by design is not a WARNING, whoever logs it (issue 12; docs/api.md).

The Authorizer logs each refusal once, at INFO, with its reason.  jupyter_server and
tornado then log the same 403 up to three more times, at WARNING: tornado's
``RequestHandler.log_exception`` ("403 GET … (ip): User is not authorized …"),
jupyter_server's ``APIHandler.write_error`` ("wrote error: …") and its access log
("403 GET … (eve@ip) 2.1ms").  A collaborator's JupyterLab asks for kernels,
terminals, workspaces and the event stream all day, so the demo's log filled with
hundreds of warnings for the rules at work, and a real warning drowned in them.

:func:`refused_by_design` marks the request being handled; :class:`LowerRefusals`
lowers only those three lines, and only for a marked request: the access line to
INFO (one line per request stays at INFO, as the service logs its 4xx), the two
repeats of the reason to DEBUG (the Authorizer's INFO line has said it).  Tornado
runs each request in its own asyncio task, so a ContextVar marks just that request,
as ``authorizer.KERNEL_STARTER`` does; everything else logs as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextvars import ContextVar

from tornado.log import gen_log

_REFUSED: ContextVar[bool] = ContextVar("hub_rtc_refused_by_design", default=False)

#: the formats of tornado's log_exception and jupyter_server's write_error: both
#: repeat the reason the Authorizer logged
TORNADO_ERROR, WROTE_ERROR = "%d %s: %s", "wrote error: %r"
FORBIDDEN = 403


def lowered_level(record: logging.LogRecord, refused: bool) -> int | None:
    """The level ``record`` goes down to when its request was ``refused`` by the rules;
    None to keep it."""
    if not refused or record.levelno != logging.WARNING:
        return None
    if record.msg == TORNADO_ERROR:
        return logging.DEBUG if isinstance(record.args, tuple) and record.args[:1] == (FORBIDDEN,) else None
    if record.msg == WROTE_ERROR:
        return logging.DEBUG
    if isinstance(record.msg, str) and record.msg.startswith(f"{FORBIDDEN} "):
        return logging.INFO  # jupyter_server's access line, formatted already
    return None


class LowerRefusals(logging.Filter):
    """On a log handler: the lines of a refused request at their level (see above)."""

    def filter(self, record: logging.LogRecord) -> bool:
        level = lowered_level(record, _REFUSED.get())
        if level is None:
            return True
        record.levelno, record.levelname = level, logging.getLevelName(level)
        # the logger let it through as a WARNING: ask again at its new level
        return logging.getLogger(record.name).isEnabledFor(level)


_FILTER = LowerRefusals()


def refused_by_design(*loggers: object) -> None:
    """Mark the request being handled as refused by the rules.

    ``loggers`` are the ones its lines go to (the handler's and the Authorizer's, a
    Logger or a LoggerAdapter; anything else is passed over); tornado's are added.
    The filter goes on their handlers here, at a refusal, rather than at start-up:
    by then every server app has set its logging up.
    """
    _REFUSED.set(True)
    found = (getattr(logger, "logger", logger) for logger in (*loggers, gen_log))
    for logger in found:
        if not isinstance(logger, logging.Logger):
            continue
        for handler in handlers_of(logger):
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


def handlers_of(logger: logging.Logger) -> Iterator[logging.Handler]:
    """Every handler a record of ``logger`` reaches (its own, then its parents')."""
    current: logging.Logger | None = logger
    while current is not None:
        yield from current.handlers
        if not current.propagate:
            return
        current = current.parent
