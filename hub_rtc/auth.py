"""The Python hooks for shared servers and scripts.

``allowed(token, action, resource)`` and ``persistent_id(token)`` ask the
hub_rtc service, which resolves the token through the hub's API and runs the
one decision.  By default they find the service the way a process started by
JupyterHub does: ``$JUPYTERHUB_API_URL`` and ``$JUPYTERHUB_API_TOKEN``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from .decision import Resource


class ServiceError(RuntimeError):
    """The service refused the question itself (not a "no" answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"hub_rtc service answered {status}: {message}")
        self.status = status


def service_api_url(service: str = "rtc") -> str:
    """``…/services/<service>/api/v1`` next to the hub of ``$JUPYTERHUB_API_URL``."""
    override = os.environ.get("HUB_RTC_API_URL")
    if override:
        return override.rstrip("/")
    hub_api = os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")
    origin = hub_api.rsplit("/hub/api", 1)[0]
    return f"{origin}/services/{service}/api/v1"


def _call(method: str, url: str, token: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read()).get("message", e.reason)
        except ValueError:
            message = e.reason
        raise ServiceError(e.code, message) from None


def decision(
    token: str,
    action: str,
    resource: Resource,
    *,
    api_url: str | None = None,
    caller_token: str | None = None,
) -> dict[str, Any]:
    """The full decision (``allowed``, ``reason``, ``role``, ``user``) for ``token``'s user.

    ``caller_token`` is whoever asks: by default ``$JUPYTERHUB_API_TOKEN``
    (which needs ``custom:rtc:authorize``), or ``token`` itself.
    """
    asker = caller_token or os.environ.get("JUPYTERHUB_API_TOKEN") or token
    body: dict[str, Any] = {"action": action, "resource": _resource_json(resource)}
    if asker != token:
        body["token"] = token
    return dict(_call("POST", f"{api_url or service_api_url()}/authorize", asker, body))


def allowed(token: str, action: str, resource: Resource | dict[str, str], **kwargs: Any) -> bool:
    """Whether the user behind ``token`` may do ``action`` on ``resource``."""
    if isinstance(resource, dict):
        resource = Resource(**resource)
    return bool(decision(token, action, resource, **kwargs)["allowed"])


def persistent_id(token: str, *, api_url: str | None = None) -> str:
    """The persistent id of the user behind ``token``; stable across hub renames."""
    return str(_call("GET", f"{api_url or service_api_url()}/identity", token)["id"])


def _resource_json(resource: Resource) -> dict[str, str]:
    out = {"session_id": resource.session_id}
    if resource.path is not None:
        out["path"] = resource.path
    if resource.cell_id is not None:
        out["cell_id"] = resource.cell_id
    return out
