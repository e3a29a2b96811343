"""Session kernels, run apart from the server that starts them.

Code in a session's kernel is whoever may execute there: a student, a script,
anything the notebook imports.  Run as the server's own account, it could read
the server's hub token from ``/proc/<pid>/environ``, the runtime files (the
server's and every other kernel's connection file), every folder of the account
(other sessions' folders on an owner's server, the update store), and signal
the server.  So a session kernel runs in a bubblewrap sandbox that sees:

- the system (``/usr`` and its merged-``/usr`` links, ``/etc`` without its
  secrets), read-only;
- the Python installations the kernel needs (``sys.prefix`` and
  ``sys.base_prefix``), read-only;
- its own connection file, read-only;
- the session folder, where it may write its data files, except that the
  notebooks already there and the update store are read-only (a notebook
  written later is still only the file on disk, which the disk guard checks);
- where the session folder holds the server's home (a dedicated session
  server), the home's dot-files and folders read-only (Jupyter's and IPython's
  configuration and kernelspecs, the user site-packages: code the server or
  the next kernel would run), its credentials (``.ssh``, ``.netrc``, …) and the
  runtime folder (the server's and other kernels' connection files) not at all;
- an empty ``/tmp`` and home of its own, a ``/proc`` of its own process
  namespace (the server's processes are not there to read or signal), and no
  capabilities (as root, without ``--cap-drop ALL`` the sandbox could remount
  ``/`` read-write: see ../shared/RECIPES.md).

Nothing else of the host is in its view.  The network is shared: the kernel
talks to the server over loopback, and holds no token to talk to anyone with.

Where the server is root and an account is configured (the ``account`` mode),
the kernel then becomes that account inside the sandbox (``setpriv``, no groups,
no new privileges), and the operating system's permissions hold too: the
session folder is given to the account's group (:func:`open_to`), the server's
files in it stay the server's.

:func:`sandbox_command` builds the command (pure, tested alone); :func:`probe`
and :func:`probe_account` say once whether each mode works here.
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..decision.kernels import KernelIsolation, kernel_isolation

#: the modes a server runs session kernels in, strongest first
ACCOUNT, SANDBOX, NONE = "account", "sandbox", "none"
#: the account ./dev setup makes (as root) for session kernels, which the demo uses
KERNEL_ACCOUNT = "hub-rtc-kernel"
#: util-linux's setpriv: becomes the account inside the sandbox, with no new privileges
SETPRIV = "/usr/bin/setpriv"
#: the home the kernel sees (an empty tmpfs: IPython keeps its profile there)
KERNEL_HOME = "/home/kernel"
#: files of /etc that hold secrets, hidden behind an empty file
ETC_SECRETS = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-",
               "/etc/sudoers", "/etc/security/opasswd")
#: folders of /etc that hold secrets, hidden behind an empty tmpfs
ETC_SECRET_DIRS = ("/etc/ssh", "/etc/sudoers.d", "/etc/ssl/private", "/etc/jupyterhub")
#: the system folders bound read-only, where they exist (links are recreated as links)
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
#: how long the probe may take
PROBE_SECONDS = 10.0
#: at most this many notebooks of a session folder are bound read-only one by one
MAX_PROTECTED = 2000
#: at most this many entries of a session folder are looked at to find them
MAX_VISITED = 20000
#: what a server (and the shells of its terminals) reads from its home at start, made
#: before a kernel of a session that holds the home starts, so that it is there to be
#: bound read-only: a kernel must not be able to create one either
HOME_DIRS = (".jupyter", ".local", ".ipython", ".config", ".cache")
#: (name, content): bash reads the first of .bash_profile, .bash_login and .profile, so
#: .bash_profile is made to read .profile, as bash would without it
HOME_FILES = ((".bashrc", ""), (".profile", ""), (".zshenv", ""), (".bash_logout", ""),
              (".bash_profile", "[ -f ~/.profile ] && . ~/.profile\n"))
#: entries of a home that hold credentials: hidden, not only read-only
HOME_SECRETS = (".ssh", ".netrc", ".git-credentials", ".gnupg", ".aws", ".docker", ".kube",
                ".pgpass", ".my.cnf", ".pypirc")


@dataclass(frozen=True)
class Sandbox:
    """What one session kernel's sandbox sees.

    ``session``: the session folder (absolute, real); ``cwd``: where the kernel
    starts (inside ``session``); ``protect``: files in ``session`` the kernel
    may read but not write (notebooks, the update store); ``connection_file``:
    the kernel's own; ``prefixes``: the Python installations it runs from.
    """

    session: str
    cwd: str
    connection_file: str
    protect: tuple[str, ...] = ()
    #: folders or files inside ``session`` the kernel may not even read
    hide: tuple[str, ...] = ()
    #: (uid, gid) of the account the kernel runs as (None: the server's own)
    account: tuple[int, int] | None = None
    prefixes: tuple[str, ...] = field(default_factory=lambda: python_prefixes())


def python_prefixes() -> tuple[str, ...]:
    """The folders this Python runs from (a venv and the installation it is made of)."""
    found: list[str] = []
    for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        real = os.path.realpath(prefix)
        if real not in found and real != "/":
            found.append(real)
    return tuple(found)


def _system_binds(system: Iterable[str]) -> list[str]:
    args: list[str] = []
    for path in system:
        if os.path.islink(path):  # merged /usr: /bin -> usr/bin
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _hide_secrets() -> list[str]:
    args: list[str] = []
    for path in ETC_SECRETS:
        if os.path.isfile(path):
            args += ["--ro-bind", "/dev/null", path]
    for path in ETC_SECRET_DIRS:
        if os.path.isdir(path):
            args += ["--tmpfs", path]
    return args


def sandbox_command(cmd: Sequence[str], box: Sandbox, *, bwrap: str = "bwrap",
                    system: Iterable[str] = SYSTEM) -> list[str]:
    """``cmd`` (the kernel's command line) run inside ``box``'s sandbox.

    Order matters to bubblewrap: later mounts cover earlier ones, so the
    read-only notebooks come after the writable session folder.
    """
    switch = box.account is not None
    args = [bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--cap-drop", "ALL"]
    if switch:  # only to become the account; setpriv gives them up with root
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    args += _system_binds(system)
    args += _hide_secrets()
    made: set[str] = set()
    for prefix in box.prefixes:
        args += _reachable(prefix, made, switch) + ["--ro-bind", prefix, prefix]
    # another account must be able to write its own /tmp and home
    open_perms = ["--perms", "1777"] if switch else []
    args += ["--dev", "/dev", "--proc", "/proc", *open_perms, "--tmpfs", "/tmp", "--tmpfs", "/run",
             *open_perms, "--tmpfs", KERNEL_HOME, "--setenv", "HOME", KERNEL_HOME]
    # The server's pid means nothing in the kernel's own process namespace, where its
    # parent is pid 1: ipykernel would take that for "my parent died" and exit.  Pid 1
    # turns its parent polling off; --die-with-parent does that job instead.
    args += ["--setenv", "JPY_PARENT_PID", "1"]
    args += _reachable(box.session, made, switch) + ["--bind", box.session, box.session]
    for prefix in box.prefixes:  # a Python inside the session folder stays read-only: the
        if within(prefix, box.session):  # server runs from it too
            args += ["--ro-bind", prefix, prefix]
    for path in box.protect:
        args += ["--ro-bind", path, path]
    for path in box.hide:  # after protect: a hidden folder inside a protected one stays hidden
        # a file behind the null device, which the sandbox's nodev mounts make unreadable
        args += ["--tmpfs", path] if os.path.isdir(path) else ["--ro-bind", "/dev/null", path]
    args += _reachable(box.connection_file, made, switch)
    args += ["--ro-bind", box.connection_file, box.connection_file]
    args += ["--chdir", box.cwd, "--"]
    if box.account is not None:
        uid, gid = box.account
        args += [SETPRIV, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs",
                 "--"]
    return args + list(cmd)


def _reachable(path: str, made: set[str], switch: bool) -> list[str]:
    """The folders leading to ``path``, made traversable: bubblewrap makes them 0700 for
    its own (root's) use, which another account could not pass.  Folders under the
    system's read-only binds and the sandbox's own tmpfs mounts exist already."""
    if not switch:
        return []
    args: list[str] = []
    parts = Path(path).parent.parts[1:]
    for i in range(len(parts)):
        folder = "/" + "/".join(parts[:i + 1])
        if folder in made or folder in ("/tmp", "/run", KERNEL_HOME) or any(
                folder == s or folder.startswith(s + "/") for s in SYSTEM):
            continue
        made.add(folder)
        args += ["--perms", "0755", "--dir", folder]
    return args


def protected_files(session: str, store: Iterable[str] = ()) -> tuple[str, ...]:
    """The notebooks under ``session`` and the update store's files that lie inside it:
    what the sandbox binds read-only.

    Hidden folders are not searched (a home's are read-only whole, see
    :func:`home_files`), and the search stops after :data:`MAX_VISITED` entries or
    :data:`MAX_PROTECTED` notebooks, so that a kernel starts quickly in a big folder;
    a notebook not found is still only the file on disk, which the disk guard checks."""
    found: list[str] = []
    visited = 0
    for top, dirs, files in os.walk(session):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        visited += len(dirs) + len(files)
        found += [os.path.join(top, f) for f in files if f.endswith(".ipynb")
                  and not os.path.islink(os.path.join(top, f))]
        if visited >= MAX_VISITED or len(found) >= MAX_PROTECTED:
            break
    inside = [p for p in store if os.path.isfile(p) and within(p, session)]
    return tuple(found[:MAX_PROTECTED] + inside)


def make_home_entries(home: str) -> None:
    """Make :data:`HOME_DIRS` and :data:`HOME_FILES` that ``home`` lacks (empty: what
    their absence means), so that they exist to be bound read-only."""
    for name in HOME_DIRS:
        path = os.path.join(home, name)
        if not os.path.lexists(path):
            os.makedirs(path, mode=0o700, exist_ok=True)
    for name, content in HOME_FILES:
        path = os.path.join(home, name)
        if not os.path.lexists(path):
            with open(path, "x", encoding="utf-8") as f:
                f.write(content)


def home_files(home: str, session: str, runtime: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What of the server's ``home`` lies in ``session`` and must be kept from its kernels:
    (read-only: its dot-files and folders; hidden: its credentials and ``runtime``)."""
    if not within(home, session):
        return (), ()
    protect, hide = [], []
    try:
        entries = sorted(os.listdir(home))
    except OSError:
        entries = []
    for name in entries:
        path = os.path.join(home, name)
        if name in HOME_SECRETS:
            hide.append(path)
        elif name.startswith(".") and not os.path.islink(path):
            protect.append(path)
    if within(runtime, session) and os.path.isdir(runtime):
        hide.append(os.path.realpath(runtime))
    return tuple(protect), tuple(hide)


def within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it, links resolved."""
    real, top = os.path.realpath(path), os.path.realpath(folder)
    return real == top or real.startswith(top.rstrip("/") + "/")


def group_members(pgid: int, but: str = "bwrap") -> list[int]:
    """The processes of process group ``pgid`` except those named ``but``: a sandboxed
    kernel and what it started, without the sandbox's own processes.

    An interrupt goes to these: sent to the whole group, as jupyter_client does, it
    would stop bubblewrap too, and the kernel with it (``--die-with-parent``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, _, rest = stat.partition("(")[2].rpartition(")")
        fields = rest.split()  # state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == str(pgid) and name != but:
            found.append(int(entry))
    return found


@functools.cache
def probe(bwrap: str = "bwrap") -> str | None:
    """None if a sandbox can be made here; else why not (said on the pages and in the log).

    Tried once per process with the same options a kernel gets, so that a host
    without user namespaces (or without ``bwrap``) is found at start-up, not at
    a student's first run.
    """
    found = shutil.which(bwrap)
    if found is None:
        return f"{bwrap} (bubblewrap) is not installed"
    return _tried("import os; os.kill(1, 0)", None, found, bwrap)


def _tried(check: str, account: tuple[int, int] | None, bwrap: str, who: str) -> str | None:
    """Run Python ``check`` in a sandbox of the working folder (as ``account``); None if
    it exits 0, else why not, said of ``who`` (bwrap, or the sandbox as the account)."""
    here = os.path.realpath(os.getcwd())
    box = Sandbox(session=here, cwd=here, connection_file=os.devnull, account=account)
    cmd = sandbox_command([sys.executable, "-c", check], box, bwrap=bwrap)
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=PROBE_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{who} could not start: {e}"
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        return f"{who} failed: {why[-1] if why else f'exit {done.returncode}'}"
    return None


def account_ids(name: str) -> tuple[int, int] | None:
    """(uid, gid) of the Unix account ``name``; None if there is none."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


@functools.cache
def probe_account(name: str, bwrap: str = "bwrap") -> str | None:
    """None if session kernels can run as the account ``name`` here; else why not.

    The server must be root (to make the sandbox, then give the kernel the
    account), the account must exist and not be root, and the sandbox must run
    as it: tried once, as a kernel would be."""
    if not name:
        return "no account is configured (HubRTCExtension.kernel_account)"
    if os.geteuid() != 0:
        return "the server is not root, so it cannot run kernels as another account"
    ids = account_ids(name)
    if ids is None:
        return f"there is no account {name!r} on this host"
    if ids[0] == 0:
        return f"the account {name!r} is root"
    missing = probe(bwrap)
    if missing is not None:
        return missing
    if not os.access(SETPRIV, os.X_OK):
        return f"{SETPRIV} (util-linux) is not installed"
    check = f"import os, sys; sys.exit(0 if os.getuid() == {ids[0]} else 1)"
    return _tried(check, ids, shutil.which(bwrap) or bwrap, f"the sandbox as {name!r}")


def open_to(session: str, gid: int) -> None:
    """Let the account's group write ``session`` and its folders (not its files: the
    notebooks there stay the server's), and have what is made there keep the group.
    Hidden folders are left as they are; the walk stops after :data:`MAX_VISITED`."""
    visited = 0
    for top, dirs, _ in os.walk(session):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        visited += len(dirs) + 1
        st = os.lstat(top)
        if st.st_gid != gid:
            os.chown(top, -1, gid, follow_symlinks=False)
        if (st.st_mode & 0o2070) != 0o2070:
            os.chmod(top, (st.st_mode & 0o7777) | 0o2070)
        if visited >= MAX_VISITED:
            break


def resolve(mode: str, account: str = "", bwrap: str = "bwrap") -> KernelIsolation:
    """How kernels really run here for the policy's ``mode`` (the decision's rule, with
    this host's answers; the probes run only where the policy may want them)."""
    if mode == NONE:
        return kernel_isolation(mode, None, None)
    return kernel_isolation(mode, probe(bwrap), probe_account(account, bwrap))


__all__ = ["ACCOUNT", "KERNEL_ACCOUNT", "KERNEL_HOME", "NONE", "SANDBOX", "Sandbox", "account_ids",
           "group_members", "home_files", "make_home_entries", "open_to", "probe", "probe_account",
           "protected_files", "python_prefixes", "resolve", "sandbox_command", "within"]
