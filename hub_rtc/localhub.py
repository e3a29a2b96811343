"""A real local JupyterHub with its proxy and the hub_rtc service.

``hub-rtc demo`` and the integration tests both start hubs through this, so
the hub the tests exercise is the hub a newcomer sees.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_proxy() -> str:
    """configurable-http-proxy: $HUB_RTC_CHP, the checkout's .node/, or PATH."""
    candidates = [
        os.environ.get("HUB_RTC_CHP", ""),
        str(REPO / ".node" / "node_modules" / ".bin" / "configurable-http-proxy"),
        shutil.which("configurable-http-proxy") or "",
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "configurable-http-proxy not found: run `npm install --prefix .node "
        "configurable-http-proxy@5` or set $HUB_RTC_CHP"
    )


@dataclass
class LocalHub:
    """A hub in ``workdir``; ``start()`` it, ``stop()`` it, call ``api()`` in between."""

    workdir: Path
    port: int = field(default_factory=free_port)
    #: the hub's own API, the proxy's API and the service: chosen once, so that a hub
    #: started again in the same workdir is where the servers it left running expect it
    #: ($JUPYTERHUB_API_URL, $HUB_RTC_API_URL are in their environment)
    hub_port: int = field(default_factory=free_port)
    proxy_api_port: int = field(default_factory=free_port)
    service_port: int = field(default_factory=free_port)
    ops_token: str = field(default_factory=lambda: os.urandom(24).hex())
    #: extra lines of jupyterhub_config.py, placed before the drop-in is loaded
    extra_config: str = ""
    db_url: str | None = None
    #: c.RTCService.manage_hub_access: off by default here, because stock
    #: servers without the extension cannot announce themselves, so owner-host
    #: sessions would be refused and every account session would spawn a server
    manage_hub_access: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service_url(self) -> str:
        return f"{self.url}/services/rtc/api/v1"

    def config_text(self) -> str:
        db_url = self.db_url or f"sqlite:///{self.workdir / 'hub_rtc.sqlite'}"
        return CONFIG_TEMPLATE.format(
            python=sys.executable,
            port=self.port,
            hub_port=self.hub_port,
            proxy_api=self.proxy_api_port,
            service_port=self.service_port,
            chp=find_proxy(),
            ops_token=self.ops_token,
            db_url=db_url,
            manage_hub_access=self.manage_hub_access,
            home=str(self.workdir / "home"),
            extra=self.extra_config,
        )

    def start(self, timeout: float = 60) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "jupyterhub_config.py").write_text(self.config_text())
        with open(self.workdir / "hub.log", "ab") as log:
            since = log.tell()  # a hub started again in the workdir logs after the first
            # Own process group: stop() must take the proxy and every server with it.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
                cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.wait_until_up(timeout, since)

    def wait_until_up(self, timeout: float, since: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"jupyterhub exited; see {self.workdir / 'hub.log'}")
            # the hub's word first: through the proxy, every poll before the hub has
            # added its route is a 404 that the proxy logs as an error
            if (self._says_running(since) and self._answers("/hub/api/")
                    and self._answers("/services/rtc/api/v1/")):
                return
            time.sleep(0.3)
        raise TimeoutError(f"hub not up in {timeout}s; see {self.workdir / 'hub.log'}")

    def _says_running(self, since: int) -> bool:
        """Whether the hub has logged, after byte ``since`` of hub.log, that it runs."""
        with open(self.workdir / "hub.log", "rb") as log:
            log.seek(since)
            return b"JupyterHub is now running" in log.read()

    def _answers(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, grace: float = 10, *, leftovers: bool = True) -> None:
        """Stop the hub and its proxy; with ``leftovers``, also every process left in the
        workdir (servers the hub did not stop).  ``leftovers=False`` is a hub restart's
        first half: servers it leaves running (``cleanup_servers = False``) stay up."""
        if not self.process or self.process.poll() is not None:
            if leftovers:
                self._stop_leftovers()
            return
        pgid = os.getpgid(self.process.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        # The hub once hung in "Cleaning up services": never leave children behind.
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        if leftovers:
            self._stop_leftovers()

    def _stop_leftovers(self, grace: float = 5) -> None:
        """Single-user servers run in their own sessions, so the group kill misses
        any the hub did not stop in time: find them by their home under workdir."""
        pids = processes_under(self.workdir)
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = [p for p in pids if Path(f"/proc/{p}").exists()]
        for pid in pids:
            _signal(pid, signal.SIGKILL)

    def api(self, method: str, path: str, body: Any = None, token: str | None = None,
            ) -> tuple[int, Any]:
        """Call the hub (``/hub/api/…``) or the service (``/services/…``)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"token {token or self.ops_token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, _json(r.read())
        except urllib.error.HTTPError as e:
            return e.code, _json(e.read())

    def rtc(self, method: str, path: str, body: Any = None, token: str | None = None,
            ) -> tuple[int, Any]:
        """Call the hub_rtc API at ``/services/rtc/api/v1{path}``."""
        return self.api(method, "/services/rtc/api/v1" + path, body, token)

    def user_token(self, name: str, scopes: list[str] | None = None, *, create: bool = True) -> str:
        """Issue ``name`` an API token, creating them first unless told they exist
        (``create=False``: the demo's users come from ``load_groups``, and a POST for
        them would put a 409 WARNING into the hub's log)."""
        if create:
            self.api("POST", f"/hub/api/users/{name}")
        body: dict[str, Any] = {"note": "hub_rtc"}
        if scopes is not None:
            body["scopes"] = scopes
        status, reply = self.api("POST", f"/hub/api/users/{name}/tokens", body)
        if status != 201:
            raise RuntimeError(f"token for {name}: {status} {reply}")
        return str(reply["token"])


def processes_under(folder: Path) -> list[int]:
    """Pids of processes (not this one) whose working directory is ``folder`` or below it."""
    root = str(folder.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + "/"):
            found.append(int(entry.name))
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


CONFIG_TEMPLATE = """\
# Written by hub_rtc.localhub: a local hub for the demo and the tests.
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.authenticator_class = "dummy"   # any password: local use only
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
# every user's home (and so every server's working directory) inside the hub's folder
c.SimpleLocalProcessSpawner.home_dir_template = {home!r} + "/{{username}}"
c.Spawner.args = ["--allow-root"]
# -P: not the server's working folder first on sys.path: it is a session folder, which
# kernels may write, and a package planted there would be what the server imports
c.Spawner.cmd = [{python!r}, "-P", "-m", "jupyterhub.singleuser"]
c.JupyterHub.cleanup_servers = True
c.JupyterHub.services = [{{"name": "ops", "api_token": {ops_token!r}}}]
c.JupyterHub.load_roles = [
    {{"name": "ops", "services": ["ops"],
     "scopes": ["admin:users", "admin:groups", "admin:servers", "tokens", "shares",
                "access:services", "access:servers", "custom:rtc:admin"]}},
]
c.RTCService.bind_url = "http://127.0.0.1:{service_port}"
c.RTCService.db_url = {db_url!r}
c.RTCService.manage_hub_access = {manage_hub_access!r}
{extra}
from hub_rtc.resources import load_dropin
load_dropin(c)
"""
