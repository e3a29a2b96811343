"""The jupyter_server extension: wires the Authorizer, IdentityProvider,
guarded room, attribution and the service's push channel into a JupyterHub
single-user server."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from typing import Any
from urllib.parse import unquote, urlparse

from jupyter_client.provisioning import KernelProvisionerFactory
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from jupyter_server_ydoc.handlers import YDocWebSocketHandler
from jupyterhub.singleuser.extension import JupyterHubIdentityProvider
from tornado.httputil import HTTPHeaders, HTTPServerRequest
from tornado.ioloop import IOLoop
from traitlets import Bool, Float, Int, TraitError, Unicode, default, validate

from .. import __version__
from ..decision.access import Access
from ..guard import Limits
from ..protocol import ROOM_ROUTE, ROOM_ROUTE_PATTERN
from . import anyioroot, gcpause, isolation, labrights, provisioner, releases, updatelog
from .authorizer import HubRTCAuthorizer, HubRTCIdentityProvider
from .cache import AccessCache
from .disk import DiskGuard
from .docroom import MAX_BACKLOG
from .gate import Gate
from .kernels import hook_kernel_identity
from .nodump import forbid_dumps
from .presence import PresenceReporter
from .room import GuardedRoomHandler
from .roomguards import GUARD_IDLE_SECONDS, RoomGuards
from .service import ServiceClient, ServiceUnavailable
from .tally import Tally
from .unchecked import check_unchecked

YDOC_EXTENSION = "jupyter_server_ydoc"
#: where jupyter_server_ydoc's SQLite update store is, unless configured otherwise
STORE_PATH = ".jupyter_ystore.db"
#: server extensions that keep collaborative documents of their own, outside
#: the guarded room: jupyter-server-documents (pulled in by jupyter-ai 3) runs
#: its own rooms and writes kernel outputs into documents on the server
OTHER_RTC_EXTENSIONS = ("jupyter_server_documents",)


def _file_id(ydoc: Any, path: str | None, room_id: str | None) -> str | None:
    """The file id a ``get_document`` call is about, as jupyter_server_ydoc finds it."""
    if room_id is not None:
        parts = room_id.split(":", 2)
        return parts[2] if len(parts) == 3 else None
    if path is None:
        return None
    manager = ydoc.serverapp.web_app.settings["file_id_manager"]
    return manager.index(path)  # type: ignore[no-any-return]


def service_name_in(url: str) -> str:
    """The service name in ``…/services/<name>/…``; "" if the URL names none."""
    match = re.search(r"/services/([^/]+)", urlparse(url).path)
    return unquote(match.group(1)) if match else ""


class HubRTCExtension(ExtensionApp):
    """hub_rtc on a shared single-user server."""

    name = "hub_rtc"
    description = "Enforce hub_rtc session rights on a JupyterHub single-user server"
    load_other_extensions = True

    service_url = Unicode(
        help="""Base URL of the hub_rtc service's API (…/services/rtc/api/v1).

        Default: $HUB_RTC_API_URL, which the hub_rtc drop-in puts into every
        single-user server's environment. Without it, collaborators are refused.""",
    ).tag(config=True)
    cache_seconds = Float(
        5.0,
        help="""How long the service's answers are reused, in seconds.

        Withdrawn access does not wait for this: the service pushes a message
        and affected sockets close at once.""",
    ).tag(config=True)
    max_update_bytes = Int(
        Limits.max_update,
        help="""The largest document update one client may send, in bytes.

        A larger one is refused whole and its connection closed (4413, with the
        reason). Yjs clients send one update per keystroke or paste; a whole
        notebook arrives as one update only when a client first syncs.""",
    ).tag(config=True)
    max_nesting = Int(
        Limits.max_depth,
        help="""How deep shared types and values may nest below a document's root.

        Deeper nesting made every later save of the notebook fail (nbformat
        recursion); an update that would nest deeper is refused (4413).""",
    ).tag(config=True)
    max_document_bytes = Int(
        Limits.max_document,
        help="""The largest a collaborative document may grow to, in bytes of its
        encoded state; an update that would grow it further is refused (4413).""",
    ).tag(config=True)
    allow_untested_releases = Bool(
        False,
        help="""Start guarded on releases of jupyter-server-ydoc, jupyter-collaboration
        or pycrdt outside the ranges hub_rtc is tested on
        (``hub_rtc.singleuser.releases.TESTED``). Off: such a server refuses to
        start, naming each release, because the guarded room is built into
        jupyter-server-ydoc's room and a release the tests never ran may change
        what enforcement relies on. On: it starts, with a warning naming them.""",
    ).tag(config=True)
    freeze_startup_objects = Bool(
        True,
        help="""Once the server has started, move the objects it holds then (its code
        and configuration, about 270,000) out of the garbage collector's full
        collections (``gc.freeze``).  Those collections stop the event loop; with 300
        clients in a room they took 130-210 ms each, and every edit sent meanwhile
        reached everyone that much later.  Frozen objects are never collected: they
        live as long as the server anyway.""",
    ).tag(config=True)
    guard_idle_seconds = Float(
        GUARD_IDLE_SECONDS,
        help="""Seconds after a room's last checked update before its guard's mirror
        (a second replica of the document, about 3 KiB per notebook cell) is dropped
        to save memory.  The next update rebuilds it from the room's document.
        0 keeps each mirror as long as its room is open.""",
    ).tag(config=True)
    @validate("guard_idle_seconds")
    def _idle_not_negative(self, proposal: dict[str, Any]) -> float:
        if proposal["value"] < 0:
            raise TraitError("c.HubRTCExtension.guard_idle_seconds must be 0 (keep) or more")
        return float(proposal["value"])

    room_backlog_bytes = Int(
        MAX_BACKLOG,
        min=1,
        help="""Most bytes of room messages that may wait, unsent, for one client's
        socket (one that stopped reading: a frozen tab, a stalled script).  Past it the
        client is closed with 4408 and resyncs when it reconnects, so the server does
        not buffer the room's history for it.  The room's largest update (16 MiB by
        default) should fit several times.""",
    ).tag(config=True)

    owner_kernels_keep_token = Bool(
        False,
        help="""Give the owner's own kernels (outside every session) the server's hub
        API token, as stock JupyterHub does, for code that calls the hub as its
        owner.

        No session kernel ever gets it: whoever may run code in a session could
        use it as the owner. Off by default, so that a notebook moved into a
        session later cannot find it either.""",
    ).tag(config=True)
    kernel_account = Unicode(
        "",
        help="""The Unix account session kernels run as, in their sandbox, where the
        policy's `kernel_isolation` is `account` (or `auto`, which takes it where it
        can). The server must run as root; the account must exist and not be root.
        Its group is given write access to session folders (not to the notebooks
        in them). Empty: kernels keep the server's user id.""",
    ).tag(config=True)
    batched_store = Bool(
        True,
        help="""Write collaborative documents' updates in batches, each one durable
        before any other client receives it (hub_rtc's update store, in the same
        SQLite file and format as jupyter-collaboration's `SQLiteYStore`, whose
        `db_path` it uses). A restarted room then loads whichever is newer, the
        store or the file.

        False: jupyter-collaboration's own store (`YDocExtension.ystore_class`),
        which writes each update after sending it, so a crash can lose edits
        other clients saw, and a restarted room loads the file over newer
        stored edits.""",
    ).tag(config=True)
    flush_seconds = Float(
        5.0, help="How often counted activity (edits, refusals, joins) is sent to the service, in seconds."
    ).tag(config=True)

    service_name = Unicode(
        help="""Name of the hub_rtc service in JupyterHub: the only caller whose
        `X-HubRTC-On-Behalf-Of` header this server believes (the service's relay
        and document API act for users with it). From anyone else the header
        is ignored and logged.

        Default: $HUB_RTC_SERVICE_NAME, which the hub_rtc drop-in sets, else the
        name in service_url (…/services/<name>/…). Empty: nobody may act for users.""",
    ).tag(config=True)

    @default("service_url")
    def _default_service_url(self) -> str:
        return os.environ.get("HUB_RTC_API_URL", "")

    @default("service_name")
    def _default_service_name(self) -> str:
        return os.environ.get("HUB_RTC_SERVICE_NAME", "") or service_name_in(self.service_url)

    active = False
    #: None where this server can run session kernels in a sandbox, else why not
    cannot_sandbox: str | None = None
    #: None where it can run them there as an account of their own, else why not
    cannot_switch: str | None = "not checked"

    def initialize_settings(self) -> None:
        app = self.serverapp
        assert app is not None
        if not isinstance(app.identity_provider, JupyterHubIdentityProvider):
            self.log.warning("hub_rtc: not a JupyterHub single-user server; staying inactive")
            return
        self.active = True
        if self.freeze_startup_objects:
            # once the loop runs: every extension has loaded and the server has started
            IOLoop.current().add_callback(gcpause.freeze_startup, self.log)
        self.tally = Tally()  # (durable once the update store is known, below)
        self.presence = PresenceReporter()
        self.guards = RoomGuards(Limits(max_update=self.max_update_bytes, max_depth=self.max_nesting,
                                        max_document=self.max_document_bytes),
                                 idle_seconds=self.guard_idle_seconds)
        self.gate = Gate(self._client(), os.environ.get("JUPYTERHUB_USER", ""),
                         AccessCache(self.cache_seconds), self.log)
        self.disk = DiskGuard(self.gate.client, self.tally, self.log)
        self.disk.trust_saves(app.contents_manager)
        ydoc = next(iter(app.extension_manager.extension_apps.get(YDOC_EXTENSION, ())), None)
        if self.batched_store and ydoc is not None:  # (without it, start-up refuses, below)
            # before jupyter_server_ydoc makes its handlers (it loads after hub_rtc)
            ydoc.ystore_class = updatelog.on_file(self.store_path())
            # counts are committed with the updates they count, and sent from there
            self.tally.journal = updatelog.UpdateLog.for_file(self.store_path(), self.log)
        self._install_auth()
        hook_kernel_identity(app.kernel_manager)
        self._isolate_kernels()

    def _isolate_kernels(self) -> None:
        """Every kernel starts through hub_rtc's provisioner; the server's memory and
        environment are closed to other processes of its account (where the OS can)."""
        app = self.serverapp
        assert app is not None
        why = forbid_dumps()
        if why:
            self.log.warning("hub_rtc: %s", why)
        # once, at start-up: said when announcing
        self.cannot_sandbox = isolation.probe()
        self.cannot_switch = isolation.probe_account(self.kernel_account)
        self.log.info("hub_rtc: session kernels %s; %s", "can run in a bubblewrap sandbox"
                      if self.cannot_sandbox is None else f"cannot be sandboxed: {self.cannot_sandbox}",
                      f"as {self.kernel_account}" if self.cannot_switch is None
                      else f"not as an account of their own: {self.cannot_switch}")
        root_dir = str(getattr(app.contents_manager, "root_dir", "") or os.getcwd())

        async def locate(folder: str) -> Access:
            return await self.gate.access(self.gate.owner, folder)

        provisioner.configure(provisioner.Placement(
            root_dir, locate, self.owner_kernels_keep_token, self._store_files(),
            account=self.kernel_account, runtime=str(app.runtime_dir)))
        factory = KernelProvisionerFactory.instance()
        if factory.default_provisioner_name != provisioner.NAME:
            self.log.info("hub_rtc: kernels start through %s (was %s)", provisioner.NAME,
                          factory.default_provisioner_name)
            factory.default_provisioner_name = provisioner.NAME

    def store_path(self) -> str:
        """The update store's database, as an absolute path: where jupyter_server_ydoc's
        SQLite store keeps it, as this server is configured (relative paths are from
        the server's working folder, as SQLite opens them)."""
        assert self.serverapp is not None
        return os.path.abspath(str(self.serverapp.config.get("SQLiteYStore", {}).get(
            "db_path", STORE_PATH)))

    def _store_files(self) -> tuple[str, ...]:
        """The update store's files: the database and its journals."""
        full = self.store_path()
        return tuple(full + suffix for suffix in ("", "-journal", "-wal", "-shm"))

    def _client(self) -> ServiceClient | None:
        if not self.service_url:
            self.log.error("hub_rtc: $HUB_RTC_API_URL is not set: only the owner gets in")
            return None
        return ServiceClient(self.service_url, os.environ.get("JUPYTERHUB_API_TOKEN", ""),
                             os.environ.get("JUPYTERHUB_SERVER_NAME", ""), self.log)

    def _install_auth(self) -> None:
        """Swap in our IdentityProvider and Authorizer.

        jupyterhub-singleuser sets its own classes with the highest config
        priority, so a config file cannot choose them; the web app reads both
        from its settings on every request, so replacing them there works.
        """
        app = self.serverapp
        assert app is not None
        hub_auth = app.identity_provider.hub_auth  # type: ignore[attr-defined]
        identity = HubRTCIdentityProvider(parent=app, hub_auth=hub_auth, gate=self.gate,
                                          service_name=self.service_name)
        authorizer = HubRTCAuthorizer(parent=app, identity_provider=identity, gate=self.gate,
                                      tally=self.tally)
        app.identity_provider = identity
        app.authorizer = authorizer
        # ExtensionApp copies the web app's settings before initialize_settings()
        # and writes its copy back after: replace them in both.
        for settings in (app.web_app.settings, self.settings):
            settings["identity_provider"] = identity
            settings["authorizer"] = authorizer

    def initialize_handlers(self) -> None:
        if self.active:
            # Loaded before jupyter_server_ydoc (extensions load alphabetically),
            # so this route is matched first; _check_takeover proves it.
            self.handlers.append((ROOM_ROUTE_PATTERN, GuardedRoomHandler, {"hub_rtc": self}))
            # what the JupyterLab extension shows (it decides nothing)
            self.handlers.append((labrights.ROUTE, labrights.RightsHandler, {"hub_rtc": self}))

    def room_handler_kwargs(self) -> dict[str, Any]:
        """The arguments jupyter_server_ydoc gives its own room handler."""
        assert self.serverapp is not None
        for ext in self.serverapp.extension_manager.extension_apps.get(YDOC_EXTENSION, ()):
            for spec in ext.handlers:
                if len(spec) > 2 and spec[1] is YDocWebSocketHandler:
                    return dict(spec[2])
        raise RuntimeError("jupyter_server_ydoc is not loaded: no collaboration rooms")

    def serving_room_handler(self) -> type | None:
        """Which handler class this server really uses for a document room."""
        assert self.serverapp is not None
        web_app = self.serverapp.web_app
        uri = url_path_join(web_app.settings["base_url"], ROOM_ROUTE + "json:notebook:x")
        request = HTTPServerRequest(method="GET", uri=uri, headers=HTTPHeaders({"Host": "localhost"}))
        return getattr(web_app.find_handler(request), "handler_class", None)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        if not self.active:
            return
        self._check_releases()
        self._check_takeover()
        self._check_no_other_rtc()
        self._check_auth()
        self._gate_get_document()
        try:  # settings, workspaces, lab extensions: API handlers that would let anyone in
            unchecked = check_unchecked(serverapp.web_app)
        except Exception:
            self.log.critical("hub_rtc: cannot make every API handler ask the Authorizer; "
                              "refusing to start", exc_info=True)
            os._exit(3)
        self.log.info("hub_rtc: API methods that skipped the Authorizer now ask it: %s",
                      ", ".join(unchecked))
        self._stop_on_sigint(serverapp)
        root = anyioroot.pin(self.log)  # (every save of the contents manager asks for it)
        self._tasks = [asyncio.ensure_future(self._flush_forever()),
                       asyncio.ensure_future(self._report_presence_forever())]
        if root is not None:
            self._tasks.append(root)  # cancelled at stop with the rest: anyio's threads go with it
        if self.gate.client is not None:
            self._tasks.append(asyncio.ensure_future(
                self.gate.client.follow_events(self._on_event, self._on_connected)))

    def _check_releases(self) -> None:
        """Refuse releases the guarded room was never tested on (or warn, if allowed)."""
        outside = releases.untested()
        if not outside:
            return
        if self.allow_untested_releases:
            self.log.warning("hub_rtc: starting on untested releases: %s", "; ".join(outside))
            return
        self.log.critical("hub_rtc: the guarded room is not tested on %s; install a tested"
                          " release, or set c.HubRTCExtension.allow_untested_releases = True."
                          " Refusing to start", "; ".join(outside))
        sys.stderr.flush()
        os._exit(3)

    def _check_takeover(self) -> None:
        """Refuse to run open: a stock room would let any reader write."""
        serving = self.serving_room_handler()
        if serving is not GuardedRoomHandler:
            self.log.critical("hub_rtc: document rooms are served by %s, not the guarded room; "
                              "refusing to start", getattr(serving, "__qualname__", serving))
            sys.stderr.flush()
            os._exit(3)
        try:
            self.room_handler_kwargs()
        except RuntimeError as e:
            self.log.critical("hub_rtc: %s; refusing to start", e)
            os._exit(3)
        self.log.info("hub_rtc %s: document rooms are guarded", __version__)

    def _check_no_other_rtc(self) -> None:
        """Refuse to run beside another collaboration server: its documents are not guarded."""
        assert self.serverapp is not None
        manager = self.serverapp.extension_manager
        enabled = [name for name in OTHER_RTC_EXTENSIONS
                   if name in manager.extension_apps or manager.extensions.get(name) is not None]
        if enabled:
            self.log.critical("hub_rtc: %s keeps collaborative documents outside the guarded room; "
                              "disable it on shared servers. Refusing to start", ", ".join(enabled))
            sys.stderr.flush()
            os._exit(3)

    def _ydoc_extension(self) -> Any:
        assert self.serverapp is not None
        return next(iter(self.serverapp.extension_manager.extension_apps.get(YDOC_EXTENSION, ())))

    def _gate_get_document(self) -> None:
        """Other server extensions reach documents through ``YDocExtension.get_document``.

        A copy (the default) changes nothing anyone sees.  The live document
        (``copy=False``) would let them change it past the guard, so it is refused;
        and a room such a call starts loads its file through the disk check too.
        """
        ydoc = self._ydoc_extension()
        original = ydoc.get_document
        disk = self.disk

        async def get_document(*, path: str | None = None, content_type: str | None = None,
                               file_format: str | None = None, room_id: str | None = None,
                               copy: bool = True, create: bool = False) -> Any:
            if not copy:
                raise PermissionError("hub_rtc: other server extensions get copies of guarded "
                                      "documents (copy=True); changes to the live document go "
                                      "through the guarded room")
            file_id = _file_id(ydoc, path, room_id)
            if file_id is not None:
                disk.protect_loader(ydoc.file_loaders[file_id])
            return await original(path=path, content_type=content_type, file_format=file_format,
                                  room_id=room_id, copy=copy, create=create)

        ydoc.get_document = get_document

    def _stop_on_sigint(self, serverapp: Any) -> None:
        """Shut down cleanly on SIGINT, as on SIGTERM.

        JupyterHub's local spawners stop servers with SIGINT, which
        jupyter_server handles only on a terminal; otherwise the process dies
        without running extension shutdown hooks, and the last activity
        batch would be lost with it.
        """
        if sys.stdin is not None and sys.stdin.isatty():
            return  # jupyter_server's own interactive handler asks for confirmation
        signal.signal(signal.SIGINT, serverapp._signal_stop)

    def _check_auth(self) -> None:
        """Refuse to run if anything put back another Authorizer (shares would be full
        access) or IdentityProvider (the server's own token would be its owner again)."""
        assert self.serverapp is not None
        settings = self.serverapp.web_app.settings
        for key, ours in (("authorizer", HubRTCAuthorizer), ("identity_provider", HubRTCIdentityProvider)):
            found = settings.get(key)
            if not isinstance(found, ours):
                self.log.critical("hub_rtc: requests are %s by %s, not hub_rtc; refusing to start",
                                  "authorized" if key == "authorizer" else "identified",
                                  type(found).__qualname__)
                os._exit(3)

    async def _on_connected(self) -> None:
        # pushes may have been missed while disconnected; the channel then says "ready"
        await self.gate.forget_all()
        self.disk.session_changed(None)  # who runs code in which session may have changed too
        assert self.gate.client is not None and self.serverapp is not None
        try:
            answer = await self.gate.client.announce(__version__, self.serverapp.base_url,
                                                     self.cannot_sandbox, self.cannot_switch)
        except ServiceUnavailable as e:
            self.log.error("hub_rtc: announcing this server failed: %s", e)
            return
        self.log.info("hub_rtc: announced; hosting sessions %s", answer.get("sessions"))

    async def _on_event(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """Handle one push; an ``invalidate`` is acknowledged only once it is in force here."""
        if message.get("type") != "invalidate":
            return None
        done = await self.gate.invalidate(message.get("session_id"), message.get("users"))
        self.disk.session_changed(message.get("session_id"))  # in the background
        self.log.info("hub_rtc: access changed in %s (%s): re-checked %d sockets%s",
                      message.get("session_id"), message.get("reason", ""), done.sockets,
                      f", {done.failed} failed" if done.failed else "")
        if message.get("id") is None:  # a service from before acknowledgements
            return None
        return {"type": "ack", "id": message["id"], "rechecked": done.sockets,
                "failed": done.failed}

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()

    async def flush(self) -> None:
        """Send counted activity; keep what the service did not take."""
        if self.gate.client is None:
            return
        journal = self.tally.journal
        if isinstance(journal, updatelog.UpdateLog):
            await self._send_journal(journal)
            return
        for session_id, events in self.tally.drain().items():
            try:
                await self.gate.client.record(session_id, events)
            except ServiceUnavailable as e:
                self.log.warning("hub_rtc: activity not sent yet: %s", e)
                self.tally.restore(session_id, events)

    async def _send_journal(self, journal: updatelog.UpdateLog) -> None:
        """Send the durable counts as one batch, forgotten only once the service has all
        of it: a part it already has is counted once, whatever is sent again."""
        assert self.gate.client is not None
        batch = await journal.take_counts()
        if batch is None:
            return
        for session_id, events in batch.events.items():
            try:
                await self.gate.client.record(session_id, events, batch=batch.id)
            except ServiceUnavailable as e:
                if not e.final:  # not there, or not answering: the whole batch again later
                    self.log.info("hub_rtc: activity kept until the service takes it: %s", e)
                    return
                # it answered and refused (the session is gone, or not ours any more):
                # sending it again would not help
                self.log.warning("hub_rtc: the service refused the activity of session %s;"
                                 " dropped: %s", session_id, e)
        await journal.confirm_counts(batch.id)

    async def _report_presence_forever(self) -> None:
        # checked every second, sent only when due: a join shows within ~1 s
        while True:
            await asyncio.sleep(1.0)
            if self.presence.due():
                await self._send_presence(self.presence.report())

    async def _send_presence(self, sessions: dict[str, dict[str, int]]) -> None:
        if self.gate.client is None or not sessions:
            return
        try:
            await self.gate.client.presence(sessions)
        except ServiceUnavailable as e:
            self.log.warning("hub_rtc: presence not sent: %s", e)
            self.presence.retry()

    async def stop_extension(self) -> None:
        if not self.active:
            return
        for task in getattr(self, "_tasks", []):
            task.cancel()
        await self.flush()
        await self._send_presence(self.presence.goodbye())
