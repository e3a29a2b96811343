"""How a session's kernels run: the policy's wish against what the host can do.

The policy (``RTCPolicy.kernel_isolation``) says ``auto``, ``sandbox`` or ``none``;
the shared server says whether it can make a sandbox (and why not).  The same
rule answers on the server, which starts the kernels, and on the service, whose
pages say it to people.  Where the policy insists on a sandbox the host cannot
make, kernels do not start: running them with the server's authority instead
would be the one thing the admin ruled out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KernelMode = Literal["sandbox", "none", "refused"]

#: what a runner can do where kernels run as the server's account (said on the pages)
AS_THE_SERVER = ("code run in this session's kernels runs as the server's account: whoever "
                 "may run code can read and change every file of that account, including the "
                 "notebooks outside the rules, and act as the server")


@dataclass(frozen=True)
class KernelIsolation:
    """The mode kernels run in, and one sentence for people."""

    mode: KernelMode
    why: str


def kernel_isolation(policy: str, cannot_sandbox: str | None) -> KernelIsolation:
    """``policy``: auto, sandbox or none; ``cannot_sandbox``: None where the host can make a
    sandbox, else why not."""
    if policy == "none":
        return KernelIsolation("none", f"the policy says so: {AS_THE_SERVER}")
    if cannot_sandbox is None:
        return KernelIsolation("sandbox", "kernels run in a bubblewrap sandbox that sees the "
                                          "session folder only, not the server")
    if policy == "sandbox":
        return KernelIsolation("refused", f"the policy asks for a sandbox, but {cannot_sandbox}:"
                                          " session kernels do not start")
    return KernelIsolation("none", f"no sandbox on this host ({cannot_sandbox}): {AS_THE_SERVER}")


__all__ = ["AS_THE_SERVER", "KernelIsolation", "KernelMode", "kernel_isolation"]
