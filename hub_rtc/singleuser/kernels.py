"""``JUPYTER_AUTH_ID`` in the environment of kernels a user starts (if policy says so)."""

from __future__ import annotations

import os
from typing import Any

from .authorizer import KERNEL_STARTER

ENV_NAME = "JUPYTER_AUTH_ID"
#: the server's own hub credentials: not handed to kernels collaborators start.
#: Defence in depth only: code running as the server's account can still read
#: them from the server process (see docs/security.md).
SERVER_SECRETS = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")


def kernel_env(env: dict[str, str] | None) -> dict[str, str] | None:
    """The environment to start a kernel with, given who asked for it."""
    starter = KERNEL_STARTER.get()
    if starter is None:
        return env
    out = dict(os.environ if env is None else env)
    if not starter.server_owner:
        for name in SERVER_SECRETS:
            out.pop(name, None)
    if starter.expose_identity and starter.identity.get("id"):
        out[ENV_NAME] = str(starter.identity["id"])
    return out


def hook_kernel_identity(kernel_manager: Any) -> None:
    """Wrap ``start_kernel`` of this server's kernel manager.

    The Authorizer notes who is starting a kernel in a context variable; the
    start runs in the same request task, so the value reaches this wrapper.
    """
    original = kernel_manager.start_kernel

    async def start_kernel(*args: Any, **kwargs: Any) -> Any:
        env = kernel_env(kwargs.get("env"))
        if env is not None:
            kwargs["env"] = env
        return await original(*args, **kwargs)

    kernel_manager.start_kernel = start_kernel
