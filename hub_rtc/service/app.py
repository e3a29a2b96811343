"""The hub-managed service: configuration, wiring and the tornado app."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado.httpserver import HTTPServer
from tornado.web import Application as WebApp
from traitlets import Bool, Enum, Float, Integer, Unicode, default
from traitlets.config import Application, Config

from .. import __version__
from ..adapters.events import EventHub
from ..adapters.hub import HubClient
from ..adapters.replicas import Replicas
from ..adapters.upstream import HubRoutes, Upstream
from ..manager import HostingSettings, Manager
from ..policy import RTCPolicy
from ..records import Database, DatabaseUnavailable, SchemaMismatch
from ..relay import RelayLimits
from .handlers import all_handlers
from .pages import all_pages, environment

#: the drop-in passes admin config through this environment variable
CONFIG_ENV = "HUB_RTC_CONFIG"


class RTCService(Application):
    """``hub-rtc serve``: what JupyterHub starts and restarts as a managed service."""

    name = "hub-rtc"
    version = __version__
    description = "Serve the hub_rtc REST API as a JupyterHub managed service."
    classes = [RTCPolicy]

    db_url = Unicode(
        "sqlite:///hub_rtc.sqlite",
        help="""SQLAlchemy URL of the service's own database (never the hub's).

        SQLite (the default) needs no set-up; the file is relative to the
        hub's working directory. For large hubs use PostgreSQL, e.g.
        `postgresql+psycopg://rtc@db.example.edu/rtc`.
        """,
    ).tag(config=True)
    service_name = Unicode(
        help="""Name of the service in JupyterHub; it lives at /services/<name>/.

        Default: $JUPYTERHUB_SERVICE_NAME, else `rtc`.""",
    ).tag(config=True)
    bind_url = Unicode(
        help="URL the service listens on. Default: $JUPYTERHUB_SERVICE_URL, as the hub assigns it.",
    ).tag(config=True)
    hub_cache_seconds = Float(
        10.0,
        help="""How long answers from the hub's API are reused, in seconds.

        Covers user and group look-ups and token checks: a token revoked at
        the hub keeps working here for at most this long.
        """,
    ).tag(config=True)
    max_body_bytes = Integer(
        1024 * 1024,
        help="Largest request body the API accepts; larger ones get 413.",
    ).tag(config=True)
    hub_base_url = Unicode(
        help="""The hub's public base URL path, for links into JupyterLab.

        Default: $JUPYTERHUB_BASE_URL, else `/`.""",
    ).tag(config=True)
    manage_hub_access = Bool(
        True,
        help="""Let the service host sessions: create collaboration accounts
        (`rtc-<id>`), start and stop their servers, and share servers with
        members through JupyterHub shares that follow the grants.

        Needs the hub scopes the drop-in then gives the service (see the
        security model). False: the service keeps records and answers
        decisions only; it creates no account and no share, and sessions on
        an owner's server need no announced server.
        """,
    ).tag(config=True)
    rights_cache_seconds = Float(
        10.0,
        min=0,
        help="""How long a shared server may reuse an answer of `/servers/rights`, in seconds.

        Revocations do not wait for it: the service pushes them to the
        server at once over its events channel.
        """,
    ).tag(config=True)
    server_start_timeout = Float(
        120.0,
        min=1,
        help="How long a collaboration account's server may take to start, in seconds.",
    ).tag(config=True)
    announce_timeout = Float(
        60.0,
        min=0,
        help="""How long, once a collaboration account's server is running, the
        hub_rtc extension on it has to announce itself, in seconds.

        Without the announcement the session's hosting fails and nobody is
        let in: a share of a server without the extension is full access.
        """,
    ).tag(config=True)
    announce_grace = Float(
        60.0,
        min=0,
        help="""How long a shared server may run a new run without announcing
        the hub_rtc extension before its shares are withdrawn, in seconds.

        They come back when it announces itself. A server seen stopped
        loses its shares at once.
        """,
    ).tag(config=True)
    push_ack_seconds = Float(
        2.0,
        min=0,
        help="""How long a change of rights waits for the shared servers hosting
        the session to confirm it is in force, in seconds.

        Cell rules, role changes, removed members, team changes, expired
        grants and ended sessions are pushed to the session's server, which
        drops its cached rights and re-checks every affected socket, then
        confirms. The API answers once every server confirmed; after this long
        it answers anyway, with `"enforced": false` and the servers in
        `pending_servers` (a DELETE answers 202 then), and the session page
        shows "not yet in force on the server" until they confirm.
        """,
    ).tag(config=True)
    sweep_seconds = Float(
        5.0,
        min=0.1,
        help="""How often the service applies what time alone changes, in seconds:
        expired sessions and grants lose access (shares withdrawn, servers
        told), unannounced servers lose their shares, failed hub calls are retried.
        """,
    ).tag(config=True)

    upstream_url = Unicode(
        "http://127.0.0.1:8000",
        help="""Where the service reaches single-user servers to relay documents:
        the origin (scheme://host:port) of JupyterHub's proxy as the service
        process sees it. Servers are at <hub base URL>user/<name>/ below it;
        a path given here is ignored.

        The drop-in sets it from c.JupyterHub.bind_url (or ip and port), which
        is right when the service runs next to the hub; in Kubernetes set the
        proxy's in-cluster service, e.g. `http://proxy-public`.""",
    ).tag(config=True)
    relay_route = Enum(
        ["proxy", "direct"],
        default_value="proxy",
        help="""How the service reaches shared servers for the relay and the document API.

        `proxy` (the default): through JupyterHub's proxy at upstream_url.
        `direct`: at each server's own address, read from the hub's copy of
        the proxy's routing table; this saves a proxy hop each way (about
        half the latency the relay adds, see docs/architecture.md) but needs
        the hub scope `proxy`, which the drop-in then gives the service (it
        also lets the service trigger a proxy sync or repoint the hub's proxy
        API), and the service must be able to reach servers' pods or ports.""",
    ).tag(config=True)
    relay_hold_bytes = Integer(
        4 * 1024 * 1024,
        min=0,
        help="""Most bytes of a relayed client's messages held while its shared
        server restarts and the relay reconnects; a client sending more is
        closed with code 1013 (try again later) and resyncs when it reconnects.
        Nothing held is lost either way: the client re-sends what the server
        lacks when it resyncs.""",
    ).tag(config=True)
    relay_reconnect_seconds = Float(
        120.0,
        min=0,
        help="""How long the relay keeps trying to reach a shared server that went
        away (restarted, stopped) before it closes its relayed clients with
        code 1013, in seconds. It retries with exponential backoff.""",
    ).tag(config=True)
    document_replica_seconds = Float(
        30.0,
        min=0,
        help="""How long the document API keeps a notebook's replica open after a
        call, per user, in seconds. A call on an open replica costs one round trip
        to the shared server instead of opening its room and syncing the whole
        notebook. The replica is the user's own room connection: the server
        checks and attributes every change as for any of their connections, and
        closes it when their access is withdrawn. 0: a room opened per call.""",
    ).tag(config=True)
    relay_stall_seconds = Float(
        30.0,
        min=0.1,
        help="""How long a relayed client may take to accept one message before it
        is closed with code 4408, in seconds. The relay reads nothing more from
        the server for a client until it has taken the last message, so a slow
        client costs the service one message at most.""",
    ).tag(config=True)
    relay_max_message_bytes = Integer(
        128 * 1024 * 1024,
        min=1024,
        help="""Largest single message the relay carries either way, in bytes; a
        larger one closes the connection (code 1009). A notebook's first sync
        carries the whole document, outputs included.""",
    ).tag(config=True)

    config_file = Unicode(
        "",
        help="""A Python file of settings (`c.RTCService.…`, `c.RTCPolicy.…`) read at
        start: how a service that runs outside the hub (replicas on Kubernetes) gets
        what a hub-managed one is handed by the drop-in. It is read after what the
        drop-in handed over ($HUB_RTC_CONFIG) and before the command line, which
        wins. Give the hub's config the same settings, since the drop-in reads some
        of them (service_name, manage_hub_access, relay_route, instructor_groups).""",
    ).tag(config=True)
    replicas = Bool(
        True,
        help="""Whether this service may run as several replicas on one PostgreSQL
        database (ignored on SQLite, which one process uses alone).

        Each replica listens on PostgreSQL (LISTEN/NOTIFY, one connection more
        per replica), so a change of rights made through any replica reaches
        every shared server whichever replica its events channel is open with,
        and is confirmed from there. Off: pushes reach only the channels open
        with the replica that made the change; right for exactly one replica.""",
    ).tag(config=True)
    cookie_secret = Unicode(
        help="""Key that signs the service's login and XSRF cookies, in hex (at least
        32 bytes). Replicas behind one balancer must share it, or a browser
        signed in through one is a stranger to the next. Default:
        $HUB_RTC_COOKIE_SECRET, else a new random key each start (one replica:
        people sign in again, silently, after a restart).""",
    ).tag(config=True)

    @default("cookie_secret")
    def _default_cookie_secret(self) -> str:
        return os.environ.get("HUB_RTC_COOKIE_SECRET", "")

    @default("service_name")
    def _default_service_name(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_NAME", "rtc")

    @default("bind_url")
    def _default_bind_url(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")

    @default("hub_base_url")
    def _default_hub_base_url(self) -> str:
        return os.environ.get("JUPYTERHUB_BASE_URL", "/")

    def load_env_config(self) -> None:
        """Apply what the drop-in handed over from ``jupyterhub_config.py``."""
        raw = os.environ.get(CONFIG_ENV)
        if raw:
            self.update_config(Config(json.loads(raw)))

    def initialize(self, argv: Any = None) -> None:
        self.load_env_config()
        super().initialize(argv)
        if self.config_file:
            self.load_settings_file(self.config_file)
        # the domain's module loggers (hub_rtc.hosting, …) write where the service does
        package = logging.getLogger("hub_rtc")
        package.handlers, package.propagate = list(self.log.handlers), False
        package.setLevel(self.log.level)
        self.policy = RTCPolicy(parent=self)
        problems = self.policy.problems()
        if problems:
            self.exit_with("; ".join(problems))
        self.db = Database(self.db_url)
        try:
            self.db.check()
        except SchemaMismatch as e:
            self.exit_with(str(e))

    def load_settings_file(self, path: str) -> None:
        """Read ``path`` as a traitlets config file; the command line still wins."""
        if not Path(path).is_file():
            self.exit_with(f"c.RTCService.config_file: no file at {path!r}")
        folder, name = os.path.split(os.path.abspath(path))
        self.load_config_file(name, path=folder)
        self.update_config(self.cli_config)

    def exit_with(self, message: str) -> None:
        self.log.critical(message)
        self.exit(1)

    def make_app(self) -> WebApp:
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{self.service_name}/")
        api_url = os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        hub = HubClient(api_url, token, self.hub_cache_seconds)
        self.events = EventHub()
        self.replicated = (Replicas(self.events, self.db)
                           if self.replicas and self.db.engine.dialect.name == "postgresql" else None)
        self.manager = Manager(self.db, hub, self.policy, self.hub_base_url,
                               self.hosting_settings(), self.replicated or self.events,
                               replica_seconds=self.document_replica_seconds)
        self._wire_ready()
        api = url_path_join(prefix, "api/v1")
        handlers: list[Any] = [(url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler)]
        handlers += [(prefix.rstrip("/") + p, h) for p, h in all_pages()]
        handlers += [(api + pattern, handler) for pattern, handler in all_handlers()]
        return WebApp(
            handlers,
            manager=self.manager,
            events=self.events,
            hub_client=hub,
            hub_auth=HubOAuth(api_url=api_url, api_token=token,
                              cache_max_age=int(self.hub_cache_seconds)),
            max_body_bytes=self.max_body_bytes,
            upstream=Upstream(self.upstream_url, token, self.hub_base_url,
                              routes=HubRoutes(api_url, token) if self.relay_route == "direct" else None,
                              max_message_bytes=self.relay_max_message_bytes),
            relay_limits=self.relay_limits(),
            api_prefix=api,
            page_prefix=prefix,
            hub_prefix=url_path_join(self.hub_base_url, "hub/"),
            templates=environment(),
            static_path=str(Path(__file__).parent / "static"),
            static_url_prefix=url_path_join(prefix, "static/"),
            cookie_secret=self.cookie_key(),
            log_function=self._log_request,
        )

    def _wire_ready(self) -> None:
        """A server's ``ready`` settles what this replica had pending for it, and, told
        across, what every other replica had."""
        settle = self.manager.hosting.server_ready
        replicated = self.replicated
        if replicated is None:
            self.events.on_ready = settle
            return
        replicated.on_ready = settle

        def here(server: tuple[str, str]) -> None:
            settle(server)
            replicated.ready(server)
        self.events.on_ready = here

    def cookie_key(self) -> bytes:
        if not self.cookie_secret:
            return os.urandom(32)
        try:
            key = bytes.fromhex(self.cookie_secret.strip())
        except ValueError:
            key = b""
        if len(key) < 32:
            self.exit_with("c.RTCService.cookie_secret ($HUB_RTC_COOKIE_SECRET) must be at least"
                           " 32 bytes in hex (64 hex digits), e.g. from `openssl rand -hex 32`")
        return key

    def relay_limits(self) -> RelayLimits:
        return RelayLimits(hold_bytes=self.relay_hold_bytes,
                           reconnect_seconds=self.relay_reconnect_seconds,
                           stall_seconds=self.relay_stall_seconds,
                           max_message_bytes=self.relay_max_message_bytes)

    def hosting_settings(self) -> HostingSettings:
        return HostingSettings(
            manage_hub_access=self.manage_hub_access,
            rights_cache_seconds=self.rights_cache_seconds,
            server_start_timeout=self.server_start_timeout,
            announce_timeout=self.announce_timeout,
            announce_grace=self.announce_grace,
            push_ack_seconds=self.push_ack_seconds,
        )

    def _log_request(self, handler: Any) -> None:
        """One line per request, at :func:`request_log_level`."""
        status, method = handler.get_status(), handler.request.method
        level = request_log_level(status, method)
        if self.log.isEnabledFor(level):
            self.log.log(level, "%d %s %s %.1fms", status, method, handler.request.uri,
                         1000.0 * handler.request.request_time())

    def start(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        url = urlparse(self.bind_url)
        # The socket limit sits above the API's own, so oversize bodies get a JSON 413.
        server = HTTPServer(self.make_app(), max_body_size=self.max_body_bytes * 4, xheaders=True)
        listening = await self._listen_to_replicas()
        server.listen(url.port or 80, url.hostname or "127.0.0.1")
        self.log.info("hub_rtc %s serving %s on %s (db %s)", __version__, self.service_name,
                      self.bind_url, self.db.engine.url.render_as_string(hide_password=True))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.manager.hosting.resume()
        sweeping = loop.create_task(self._sweep_forever())
        await stop.wait()
        server.stop()
        sweeping.cancel()
        if listening is not None and self.replicated is not None:
            listening.cancel()
            await self.replicated.close()
        await self.manager.hosting.close()
        self.db.dispose()

    async def _listen_to_replicas(self) -> asyncio.Task[None] | None:
        """Listen to the other replicas before taking events channels (a channel
        taken before would be closed once listening starts: it may have missed a push)."""
        if self.replicated is None:
            return None
        listening = asyncio.get_running_loop().create_task(self.replicated.run())
        try:
            await asyncio.wait_for(self.replicated.listening.wait(), 10)
        except TimeoutError:
            self.log.warning("not listening to the other replicas yet; serving meanwhile")
        return listening

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.manager.sweeper.sweep()
            except DatabaseUnavailable as e:  # a fault to see, but no traceback to read
                self.log.warning("the sweep waits for the database: %s", e)
            except Exception:  # one failed pass must not end the sweeping
                self.log.exception("the sweep failed; trying again in %g s", self.sweep_seconds)
            await asyncio.sleep(self.sweep_seconds)


def request_log_level(status: int, method: str) -> int:
    """How loud a request's line is: a successful read at DEBUG (scripts and pages
    poll; at INFO they filled the log, and building each line cost 5% of a call);
    a change, or a refusal (4xx: the rules at work, or a caller's mistake), at INFO;
    a failure of the service or of what it needs (5xx) at WARNING."""
    if status >= 500:
        return logging.WARNING
    if status >= 400 or method not in ("GET", "HEAD", "OPTIONS"):
        return logging.INFO
    return logging.DEBUG
