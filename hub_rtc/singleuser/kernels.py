"""Kernel starts: ``JUPYTER_AUTH_ID`` in the environment of kernels a user starts (if
policy says so), and no kernel that would bypass hub_rtc's provisioner.

A kernelspec may name a provisioner of its own in its metadata; jupyter_client then
uses that one instead of the default, and hub_rtc's isolation would not apply.  A
kernel whose spec names another provisioner is not started (fail closed)."""

from __future__ import annotations

import os
from typing import Any

from .authorizer import KERNEL_STARTER
from .provisioner import NAME as PROVISIONER

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
        refuse_other_provisioners(kernel_manager, kwargs.get("kernel_name"))
        env = kernel_env(kwargs.get("env"))
        if env is not None:
            kwargs["env"] = env
        return await original(*args, **kwargs)

    kernel_manager.start_kernel = start_kernel


def provisioner_of(spec: Any) -> str | None:
    """The provisioner a kernelspec names (None: the default)."""
    named = (getattr(spec, "metadata", None) or {}).get("kernel_provisioner") or {}
    return named.get("provisioner_name") if isinstance(named, dict) else None


def refuse_other_provisioners(kernel_manager: Any, kernel_name: str | None) -> None:
    """Raise if the kernel to start would not start through hub_rtc's provisioner."""
    name = kernel_name or kernel_manager.default_kernel_name
    try:
        spec = kernel_manager.kernel_spec_manager.get_kernel_spec(name)
    except Exception:  # no such kernel: jupyter_server says so itself
        return
    other = provisioner_of(spec)
    if other not in (None, PROVISIONER):
        raise RuntimeError(f"hub_rtc: the kernel {name!r} names its own provisioner ({other}); "
                           f"kernels on this server start through {PROVISIONER} only")
