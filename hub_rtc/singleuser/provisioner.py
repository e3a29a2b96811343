"""The kernel provisioner every kernel of a guarded server starts through.

jupyter_client's provisioner is the official place to decide how a kernel
process is started.  This one is jupyter_client's local provisioner plus two
things, for every kernel whoever starts it (a member through the REST API,
another extension, the server itself):

- the kernel's environment never holds the server's hub credentials
  (:data:`SERVER_SECRETS`), unless it is the owner's own kernel outside every
  session and the owner opted in (``HubRTCExtension.owner_kernels_keep_token``);
- a kernel whose folder is in a session runs as the session's policy says
  (:mod:`hub_rtc.singleuser.isolation`): in a sandbox that sees the session
  folder and not the server, or as the server's account.  Where the policy asks
  for a sandbox and none can be made, the kernel does not start.

Where a kernel is, is asked of the service at every launch (restarts too), as
the server's owner would ask: the answer names the session whose folder holds
the kernel's working directory, and that session's policy.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.provisioning import LocalProvisioner
from jupyter_core.paths import jupyter_runtime_dir

from ..decision.access import Access
from . import isolation
from .gate import UNREACHABLE

#: the entry point name (pyproject.toml), made the default by the extension
NAME = "hub-rtc-provisioner"
#: the server's own hub credentials: no kernel gets them (see the module docstring)
SERVER_SECRETS = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")


@dataclass
class Placement:
    """What the extension tells the provisioner (set once, at extension load)."""

    root_dir: str
    #: the service's answer for the server's owner at a folder (relative to root_dir)
    locate: Callable[[str], Awaitable[Access]]
    owner_keeps_token: bool = False
    #: the update store's files (absolute): read-only to a sandboxed kernel that can see them
    store: tuple[str, ...] = ()
    #: the Unix account session kernels run as where the mode is ``account``
    account: str = ""
    #: the server's home and runtime folder (its own and its kernels' connection files)
    home: str = field(default_factory=lambda: os.path.expanduser("~"))
    runtime: str = field(default_factory=jupyter_runtime_dir)


_placement: Placement | None = None


def configure(placement: Placement | None) -> None:
    """Set by the extension once it knows its gate (None: back to unconfigured)."""
    global _placement
    _placement = placement


def scrubbed(env: dict[str, str], keep: bool = False) -> dict[str, str]:
    """``env`` without the server's credentials (``keep``: the owner opted in)."""
    if keep:
        return dict(env)
    return {k: v for k, v in env.items() if k not in SERVER_SECRETS}


def _relative(root_dir: str, cwd: str) -> str | None:
    """``cwd`` as a folder below the server's root; None if it is not below it."""
    root, here = os.path.realpath(root_dir), os.path.realpath(cwd)
    if here == root:
        return ""
    if not here.startswith(root.rstrip("/") + "/"):
        return None
    return here[len(root.rstrip("/")) + 1:]


class HubRTCProvisioner(LocalProvisioner):  # type: ignore[misc]
    """jupyter_client's local provisioner, with hub_rtc's kernel isolation."""

    #: the mode this kernel was last launched in (its signals depend on it)
    isolation_mode: str = isolation.NONE
    #: the service's answer at the last launch that found a session (for restarts)
    _last: Access | None = None

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        launch = await super().pre_launch(**kwargs)
        placement = _placement
        cwd = str(launch.get("cwd") or os.getcwd())
        access = await self._session_at(placement, cwd)
        if placement is None or access is None or access.session_id is None:
            keep = bool(placement and placement.owner_keeps_token)  # the owner's own kernel
            launch["env"] = scrubbed(dict(launch.get("env") or os.environ), keep)
            self.isolation_mode = isolation.NONE
            return launch
        launch["env"] = scrubbed(dict(launch.get("env") or os.environ))
        decided = isolation.resolve(access.kernel_isolation, placement.account)
        self.isolation_mode = decided.mode
        if decided.mode == "refused":
            raise RuntimeError(f"hub_rtc: {decided.why}")
        if decided.mode in (isolation.SANDBOX, isolation.ACCOUNT):
            account = (isolation.account_ids(placement.account)
                       if decided.mode == isolation.ACCOUNT else None)
            launch["cmd"] = self._sandboxed(launch["cmd"], placement, access, cwd, account)
        self.log.info("hub_rtc: kernel %s of session %s: %s", self.kernel_id, access.session_id,
                      decided.why)
        return launch

    async def send_signal(self, signum: int) -> None:
        """Interrupts (and any signal but the ones that end it) go to a sandboxed kernel's
        own processes, not to the sandbox around it, which would stop and take the
        kernel with it."""
        if (self.isolation_mode not in (isolation.SANDBOX, isolation.ACCOUNT) or not self.pgid
                or signum in (signal.SIGKILL, signal.SIGTERM)):
            await super().send_signal(signum)
            return
        for pid in isolation.group_members(self.pgid):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:  # ended meanwhile
                continue

    async def _session_at(self, placement: Placement | None, cwd: str) -> Access | None:
        """The service's answer for the kernel's folder; where the service cannot be
        reached (a restart while it is down), what it said at the last launch, or, for a
        first launch, a session of the kernel's own folder: never no session at all."""
        if placement is None:
            return None
        folder = _relative(placement.root_dir, cwd)
        if folder is None:
            return None
        answer = await placement.locate(folder)
        if answer.reason == UNREACHABLE:
            self.log.warning("hub_rtc: cannot ask where kernel %s is: %s", self.kernel_id,
                             "as at its last start" if self._last else "sandboxed in its folder")
            answer = self._last or Access(session_id="(the service could not be asked)",
                                          root=folder, reason=UNREACHABLE)
        elif answer.session_id is not None:
            self._last = answer
        return answer

    def _sandboxed(self, cmd: list[str], placement: Placement, access: Access, cwd: str,
                   account: tuple[int, int] | None = None) -> list[str]:
        assert self.parent is not None  # the kernel manager: it wrote the connection file
        session = os.path.realpath(os.path.join(placement.root_dir, access.root))
        connection_file = os.path.realpath(self.parent.connection_file)
        if account is not None:  # the account reads its own connection file, writes the folder
            os.chown(connection_file, account[0], account[1])
            isolation.open_to(session, account[1])
        inside = isolation.within(cwd, session)
        if isolation.within(placement.home, session):  # the session holds the server's home
            isolation.make_home_entries(placement.home)
        home_protect, home_hide = isolation.home_files(placement.home, session, placement.runtime)
        box = isolation.Sandbox(
            session=session, cwd=os.path.realpath(cwd) if inside else session,
            connection_file=connection_file,
            protect=isolation.protected_files(session, placement.store) + home_protect,
            hide=home_hide, account=account)
        return isolation.sandbox_command(cmd, box)


__all__ = ["NAME", "SERVER_SECRETS", "HubRTCProvisioner", "Placement", "configure", "scrubbed"]
