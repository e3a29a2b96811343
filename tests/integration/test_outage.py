"""The service's PostgreSQL restarts under a real hub: the API answers 503 with a
clear message meanwhile (never a 500), nothing asked for during the outage is
half-made, and the service carries on by itself once the database is back.

The service reaches PostgreSQL through :class:`tests.tcpcut.Cut`, a relay in
this process, so the restart is one of its connections, not of the server
that other tests share.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from hub_rtc.localhub import LocalHub
from tests.conftest import _postgres_url
from tests.integration.conftest import start_hub, wait_for
from tests.tcpcut import Cut, relayed

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def cut_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalHub, Cut]]:
    urls = _postgres_url()
    db_url, relay = relayed(next(urls))
    hub = start_hub(tmp_path_factory.mktemp("outage"), db_url=db_url)
    yield hub, relay
    hub.stop()
    next(urls, None)


def retry_after(hub: LocalHub, token: str) -> str | None:
    request = urllib.request.Request(hub.url + "/services/rtc/api/v1/sessions")
    request.add_header("Authorization", f"token {token}")
    try:
        urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as e:
        return e.headers.get("Retry-After")
    return None


def test_a_database_restart_is_a_503_to_retry_and_then_over(cut_hub: tuple[LocalHub, Cut]) -> None:
    hub, relay = cut_hub
    olive = hub.user_token("olive")
    status, before = hub.rtc("POST", "/sessions", {"title": "before"}, olive)
    assert status == 201, before
    relay.cut()
    calls = [("GET", "/sessions", None), ("GET", f"/sessions/{before['id']}", None),
             ("POST", "/sessions", {"title": "during"}),
             ("PATCH", f"/sessions/{before['id']}", {"title": "renamed during"})]
    for method, path, body in calls:
        status, answer = hub.rtc(method, path, body, olive)
        assert status == 503, (method, path, status, answer)
        assert "database cannot be reached right now" in answer["message"], answer
    assert retry_after(hub, olive) == "5"
    relay.start()

    def listed() -> dict | None:
        status, answer = hub.rtc("GET", "/sessions", token=olive)
        return answer if status == 200 else None

    mine = wait_for("the service back on its database", listed)
    assert [s["title"] for s in mine["sessions"]] == ["before"]  # nothing from the outage was made
    status, after = hub.rtc("POST", "/sessions", {"title": "after"}, olive)
    assert status == 201, after
    log = (hub.workdir / "hub.log").read_text()
    assert re.search(r"\b503 GET /services/rtc/api/v1/sessions\b", log)  # the service's own line
    assert not re.search(r"\b500 (GET|POST|PATCH|PUT|DELETE) ", log)
