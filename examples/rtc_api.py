"""What the example scripts share: the hub_rtc REST API with a hub token.

Standard library only.  Import it from a script in this folder
(``from rtc_api import Api``); Python puts the script's folder on the path.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class Api:
    """The hub_rtc REST API at <hub>/services/<service>/api/v1, with a hub token."""

    def __init__(self, hub_url: str, token: str, service: str = "rtc") -> None:
        self.base = f"{hub_url.rstrip('/')}/services/{service}/api/v1"
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"token {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as e:
            return e.code, _json(e.read())

    def must(self, method: str, path: str, body: Any = None) -> Any:
        status, reply = self.call(method, path, body)
        if status >= 400:
            raise SystemExit(f"{method} {path}: {status} {message(reply)}")
        return reply

    def sessions(self, ids: list[str] | None, course: str | None, query: str = "") -> list[dict[str, Any]]:
        """The sessions named by id, or every visible one (of ``course``, if given)."""
        if ids:
            return [self.must("GET", f"/sessions/{urllib.parse.quote(s)}") for s in ids]
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.must("GET", f"/sessions?which=visible&limit=1000&offset={offset}{query}")
            found += [s for s in page["sessions"] if not course or s.get("course") == course]
            if len(page["sessions"]) < 1000:
                return found
            offset += 1000


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def message(reply: Any) -> str:
    """The error message of a reply (the API answers errors as {"status", "message"})."""
    return str(reply.get("message")) if isinstance(reply, dict) else str(reply)


def add_hub_arguments(p: argparse.ArgumentParser) -> None:
    """--hub-url, --service and --token, with their environment defaults."""
    p.add_argument("--hub-url", default=os.environ.get("JUPYTERHUB_URL", "http://127.0.0.1:8000"),
                   help="the hub's public URL (default: $JUPYTERHUB_URL or %(default)s)")
    p.add_argument("--service", default="rtc", help="name of the hub_rtc service (default: %(default)s)")
    p.add_argument("--token", default=os.environ.get("JUPYTERHUB_API_TOKEN"),
                   help="hub API token (default: $JUPYTERHUB_API_TOKEN)")


def api_from(p: argparse.ArgumentParser, args: argparse.Namespace) -> Api:
    if not args.token:
        p.error("give a hub API token with --token or $JUPYTERHUB_API_TOKEN")
    return Api(args.hub_url, args.token, args.service)
