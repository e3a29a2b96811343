"""Browser-style access: hub login, HubOAuth cookie, and XSRF on state changes."""

from __future__ import annotations

import re

import pytest
import requests

from hub_rtc.localhub import LocalHub

pytestmark = pytest.mark.integration


def browser_login(hub: LocalHub, name: str) -> requests.Session:
    """Log in at the hub and complete the service's OAuth, as a browser would."""
    s = requests.Session()
    s.get(f"{hub.url}/hub/login")
    r = s.post(f"{hub.url}/hub/login?next=/services/rtc/",
               data={"username": name, "password": "any", "_xsrf": s.cookies.get("_xsrf", path="/hub/")})
    assert r.status_code == 200 and r.url.rstrip("/").endswith("/services/rtc"), r.url
    return s


def page_xsrf(s: requests.Session, hub: LocalHub) -> str:
    html = s.get(f"{hub.url}/services/rtc/").text
    match = re.search(r'name="xsrf-token" content="([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_cookie_state_change_needs_xsrf(hub: LocalHub) -> None:
    s = browser_login(hub, "bob")
    api = f"{hub.url}/services/rtc/api/v1"
    assert s.get(f"{api}/me").json()["name"] == "bob"  # a GET needs no XSRF token
    refused = s.post(f"{api}/teams", json={"name": "xsrf-less"})
    assert refused.status_code == 403
    assert "xsrf-less" not in [t["name"] for t in s.get(f"{api}/teams").json()["teams"]]
    token = page_xsrf(s, hub)
    made = s.post(f"{api}/teams", json={"name": "with-xsrf"}, headers={"X-XSRFToken": token})
    assert made.status_code == 201, made.text


def test_page_escapes_the_user_name(hub: LocalHub) -> None:
    name = "<script>eve"  # hub names may not hold "/", so no closing tag
    status, _ = hub.api("POST", "/hub/api/users", {"usernames": [name]})
    assert status == 201
    s = browser_login(hub, name)
    html = s.get(f"{hub.url}/services/rtc/").text
    assert "<script>" not in html and "&lt;script&gt;eve" in html


@pytest.mark.parametrize("name", ["rtc-0123456789ab", "rtc-anything"])
def test_nobody_logs_in_as_a_collaboration_account(hub: LocalHub, name: str) -> None:
    s = requests.Session()
    s.get(f"{hub.url}/hub/login")
    r = s.post(f"{hub.url}/hub/login", data={"username": name, "password": "any",
                                             "_xsrf": s.cookies.get("_xsrf", path="/hub/")})
    assert r.status_code == 403
    assert hub.api("GET", f"/hub/api/users/{name}")[0] == 404
    assert browser_login(hub, "carol").get(f"{hub.url}/services/rtc/api/v1/me").json()["name"] == "carol"
