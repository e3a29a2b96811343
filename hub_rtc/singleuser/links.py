"""Where a path on this server really leads.

Code in a kernel runs as the server's account: it can put a symbolic link into
a session folder that points anywhere (another session's folder, the owner's
home, the kernels' connection files), or a second hard link to a file outside
it.  The contents manager, the ``/files/`` handler and nbconvert all follow
links.  So the Authorizer decides on the path a request's path really names,
as the file system resolves it now, against the contents manager's root.

Only the file system is read here: no tornado, no service.
"""

from __future__ import annotations

import os
import stat


def _on_disk(root_dir: str, path: str) -> str:
    return os.path.join(root_dir, *path.split("/"))


def real_path(root_dir: str, folder: str, path: str) -> str | None:
    """The API path ``path`` names once every link in it is followed, or None when it
    leads out of ``folder`` (a session's root folder, an API path, itself resolved:
    a session folder may be a link to a disk mounted elsewhere).

    The answer is named from ``folder``: ``folder/<where it leads inside it>``.  A
    link that leads nowhere yet counts where it leads (a write would create it there).
    """
    top = os.path.realpath(_on_disk(root_dir, folder))
    real = os.path.realpath(_on_disk(root_dir, path))
    relative = os.path.relpath(real, top)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep) or os.path.isabs(relative):
        return None
    inner = "" if relative == os.curdir else relative.replace(os.sep, "/")
    return "/".join(part for part in (folder, inner) if part)


def has_other_names(root_dir: str, path: str) -> bool:
    """Whether ``path`` is a file with more than one hard link: the same file may have a
    name outside the session folder, and writes to it change that one too."""
    try:
        info = os.stat(_on_disk(root_dir, path))
    except OSError:
        return False  # nothing there (yet): a write creates a new file
    return stat.S_ISREG(info.st_mode) and info.st_nlink > 1


def is_hidden(path: str) -> bool:
    """Whether a part of ``path`` is hidden, as jupyter_server counts it (a leading dot)."""
    return any(part.startswith(".") for part in path.split("/"))
