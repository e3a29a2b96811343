"""How a session's kernels run: the policy's wish against what the host can do.

The policy (``RTCPolicy.kernel_isolation``) says ``auto``, ``account``, ``sandbox``
or ``none``; the shared server says whether it can make a sandbox, and run kernels
in it as an account of their own (and why not).  The same
rule answers on the server, which starts the kernels, and on the service, whose
pages say it to people.  Where the policy insists on a sandbox the host cannot
make, kernels do not start: running them with the server's authority instead
would be the one thing the admin ruled out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KernelMode = Literal["account", "sandbox", "none", "refused"]

#: what a runner can do where kernels run as the server's account (said on the pages)
AS_THE_SERVER = ("code run in this session's kernels runs as the server's account: whoever "
                 "may run code can read and change every file of that account, including the "
                 "notebooks outside the rules, and act as the server")


@dataclass(frozen=True)
class KernelIsolation:
    """The mode kernels run in, and one sentence for people."""

    mode: KernelMode
    why: str


def kernel_isolation(policy: str, cannot_sandbox: str | None,
                     cannot_switch: str | None = "no account is configured") -> KernelIsolation:
    """``policy``: auto, account, sandbox or none; ``cannot_sandbox`` and ``cannot_switch``:
    None where the host can make a sandbox, and run kernels in it as an account of their
    own, else why not.  ``auto`` takes the strongest the host can do."""
    if policy == "none":
        return KernelIsolation("none", f"the policy says so: {AS_THE_SERVER}")
    if cannot_sandbox is None and cannot_switch is None and policy in ("auto", "account"):
        return KernelIsolation("account", "kernels run in a bubblewrap sandbox that sees the "
                                          "session folder only, as an account of their own")
    if policy == "account":
        return KernelIsolation("refused", f"the policy asks for an account of their own, but "
                                          f"{cannot_sandbox or cannot_switch}: session kernels "
                                          "do not start")
    if cannot_sandbox is None:
        return KernelIsolation("sandbox", "kernels run in a bubblewrap sandbox that sees the "
                                          "session folder only, not the server")
    if policy == "sandbox":
        return KernelIsolation("refused", f"the policy asks for a sandbox, but {cannot_sandbox}:"
                                          " session kernels do not start")
    return KernelIsolation("none", f"no sandbox on this host ({cannot_sandbox}): {AS_THE_SERVER}")


__all__ = ["AS_THE_SERVER", "KernelIsolation", "KernelMode", "kernel_isolation"]
