"""The on-behalf assertion's pure parts (who may make it, what it allows) and the
upstream client's addressing: no servers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tornado import web

from hub_rtc.adapters.upstream import ServerRef, Upstream, UpstreamError
from hub_rtc.decision.access import Access, confined
from hub_rtc.singleuser.app import service_name_in
from hub_rtc.singleuser.authorizer import (
    asserted_user,
    hub_name,
    is_the_service,
    narrowed,
    on_behalf,
)

SERVICE = {"kind": "service", "name": "rtc", "scopes": ["access:servers", "shares"]}
MEMBER = Access(read=True, write=True, execute=True, terminal=True, role="editor",
                session_id="s1", root="lab1", server_owner=False)


def test_only_the_named_service_may_assert() -> None:
    assert is_the_service(SERVICE, "rtc")
    assert not is_the_service(SERVICE, "")  # no name configured: nobody
    assert not is_the_service({**SERVICE, "name": "ops"}, "rtc")  # another service
    assert not is_the_service({"kind": "user", "name": "rtc"}, "rtc")  # a user named like it


def test_the_asserted_user_is_that_user_marked_as_asserted() -> None:
    user = asserted_user(SERVICE, "%C3%A9d%C3%A8")
    assert hub_name(user) == "édè" and user.hub_user["kind"] == "user"
    assert on_behalf(user) and user.hub_user["scopes"] == SERVICE["scopes"]
    assert not on_behalf(SimpleNamespace(hub_user={"name": "ed"}))
    for bad in ("", "  ", "a%2Fb"):
        with pytest.raises(web.HTTPError):
            asserted_user(SERVICE, bad)


def test_the_assertion_gives_what_sessions_give_never_more() -> None:
    owner = Access(read=True, write=True, execute=True, terminal=True, manage=True, role="owner",
                   session_id="s1", server_owner=True)
    assert confined(owner) == Access(**{**owner.__dict__, "terminal": False, "server_owner": False})
    outside = Access(read=True, write=True, execute=True, terminal=True, role="owner")
    assert not confined(outside).read  # the owner's files outside every session: nothing
    ed = asserted_user(SERVICE, "ed")
    assert narrowed(ed, MEMBER).write and not narrowed(ed, MEMBER).terminal
    reader = asserted_user(SERVICE, "ed", read_only=True)
    only_read = narrowed(reader, MEMBER)
    assert only_read.read and not (only_read.write or only_read.execute or only_read.manage)
    signed_in = SimpleNamespace(hub_user={"name": "ed", "kind": "user"})
    assert narrowed(signed_in, MEMBER) is MEMBER  # users signed in themselves: unchanged


def test_the_service_name_comes_from_the_api_url() -> None:
    assert service_name_in("http://127.0.0.1:10101/services/rtc/api/v1") == "rtc"
    assert service_name_in("http://h/hub-prefix/services/my%20rtc/api/v1") == "my rtc"
    assert service_name_in("http://h/api/v1") == ""


def test_upstream_addresses_servers_below_the_hub_base_url() -> None:
    up = Upstream("http://proxy:8000/ignored/path", "tok", "/jh/")
    assert up.server_url(ServerRef("olive")) == "http://proxy:8000/jh/user/olive/"
    assert up.server_url(ServerRef("a b", "gpu")) == "http://proxy:8000/jh/user/a%20b/gpu/"
    assert Upstream("http://p:1", "t").server_url(ServerRef("x")) == "http://p:1/user/x/"
    headers = up._headers("édè", read_only=True)
    # the name on the wire, not only the shared constant: servers still running an older
    # extension read this exact header while a hub is upgraded
    assert headers["X-HubRTC-On-Behalf-Of"] == "%C3%A9d%C3%A8"
    assert headers["X-HubRTC-Read-Only"] == "1" and headers["Authorization"] == "token tok"
    assert "X-HubRTC-Read-Only" not in up._headers("ed")


def test_which_upstream_failures_are_worth_retrying() -> None:
    for status in (302, 424, 502, 503, 599):
        assert UpstreamError(status, "").transient
    for status in (400, 403, 404, 500):
        assert not UpstreamError(status, "").transient


def test_the_direct_route_reads_servers_targets_from_the_routing_table() -> None:
    from hub_rtc.adapters.upstream import route_targets

    page = {
        "/user/olive/": {"routespec": "/user/olive/", "target": "http://10.0.0.5:8888",
                         "data": {"user": "olive", "server_name": "", "last_activity": None}},
        "/user/olive/gpu/": {"target": "http://10.0.0.6:8888",
                             "data": {"user": "olive", "server_name": "gpu"}},
        "/services/rtc/": {"target": "http://127.0.0.1:10101", "data": {"service": "rtc"}},
        "/": {"target": "http://127.0.0.1:8081", "data": {"hub": True}},
    }
    assert route_targets(page) == {ServerRef("olive"): "http://10.0.0.5:8888",
                                   ServerRef("olive", "gpu"): "http://10.0.0.6:8888"}
    assert route_targets(list(page.values())) == route_targets(page)


def test_the_dropin_asks_for_the_proxy_scope_only_for_the_direct_route() -> None:
    from traitlets.config import Config

    from hub_rtc.resources import load_dropin

    def service_scopes(route: str | None) -> list[str]:
        c = Config()
        if route:
            c.RTCService.relay_route = route
        load_dropin(c)
        return next(r for r in c.JupyterHub.load_roles if r["name"] == "rtc-service")["scopes"]

    assert "proxy" not in service_scopes(None) and "proxy" not in service_scopes("proxy")
    assert "proxy" in service_scopes("direct")
