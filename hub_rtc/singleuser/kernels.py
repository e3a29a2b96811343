"""``JUPYTER_AUTH_ID`` in the environment of kernels a user starts (if policy says so)."""

from __future__ import annotations

import os
from typing import Any

from .authorizer import KERNEL_STARTER

ENV_NAME = "JUPYTER_AUTH_ID"


def kernel_env(env: dict[str, str] | None) -> dict[str, str] | None:
    """The environment to start a kernel with, given who asked for it.

    Only who started it: the server's credentials are taken out of every
    kernel's environment by :mod:`hub_rtc.singleuser.provisioner`, whoever
    starts it."""
    starter = KERNEL_STARTER.get()
    if starter is None:
        return env
    out = dict(os.environ if env is None else env)
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
