"""Close the server process to other processes of its own account.

Linux lets a process of the same account read another's ``/proc/<pid>/environ``
(the server's hub token), ``mem`` and ``maps``, and attach a debugger to it,
unless that process is not "dumpable".  Kernels run as the server's account
when they are not sandboxed, so the server makes itself non-dumpable at start.
Root still reads everything: that is what the sandbox is for
(:mod:`hub_rtc.singleuser.isolation`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: prctl(2) option numbers, from <linux/prctl.h>
PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def forbid_dumps() -> str | None:
    """Make this process non-dumpable; None when done, else why it could not be."""
    if not sys.platform.startswith("linux"):
        return f"cannot make the server non-dumpable on {sys.platform}"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            return f"prctl(PR_SET_DUMPABLE) failed: errno {ctypes.get_errno()}"
        if libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0:
            return "prctl(PR_SET_DUMPABLE) did not take"
    except (OSError, AttributeError) as e:
        return f"cannot call prctl: {e}"
    return None


__all__ = ["forbid_dumps"]
