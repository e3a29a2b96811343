"""The REST API through a real hub and proxy, as students, instructors and scripts."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from hub_rtc.localhub import LocalHub
from hub_rtc.service.spec import spec
from tests.integration.conftest import processes_in

pytestmark = pytest.mark.integration


def conforms(schema_name: str, value: object) -> None:
    """Responses must match the OpenAPI contract too, not only requests."""
    registry = Registry().with_resource("urn:s", Resource.from_contents(spec(), DRAFT202012))
    ref = {"$ref": f"urn:s#/components/schemas/{schema_name}"}
    Draft202012Validator(ref, registry=registry).validate(value)


def ok(result: tuple[int, object], status: int = 200) -> object:
    code, body = result
    assert code == status, body
    return body


def refused(result: tuple[int, object], status: int, words: str = "") -> None:
    code, body = result
    assert code == status, body
    assert isinstance(body, dict) and body["status"] == status and words in body["message"], body


def test_student_creates_and_manages_a_session(hub: LocalHub, tokens) -> None:
    alice, bob = tokens["alice"], tokens["bob"]
    ok(hub.rtc("POST", "/teams", {"name": "apis", "members": ["carol"]}, alice), 201)
    s = ok(hub.rtc("POST", "/sessions", {
        "title": "Group project", "host": "owner", "root": "project",
        "members": [{"user": "bob", "role": "editor"}, {"team": "apis", "role": "viewer"},
                    {"group": "empty", "role": "runner"}],
    }, alice), 201)
    conforms("Session", s)
    assert s["url"] == "/user/alice/lab/tree/project" and s["my_role"] == "owner"
    # people, not grants: the team is expanded to its members (the empty group adds nobody)
    assert s["people"] == ["bob", "carol"]
    assert next(m for m in s["members"] if m["kind"] == "team")["people"] == ["carol"]
    sid = s["id"]

    assert ok(hub.rtc("GET", f"/sessions/{sid}", token=tokens["carol"]))["my_role"] == "viewer"
    member = ok(hub.rtc("PUT", f"/sessions/{sid}/members/user/dave", {"role": "runner"}, alice), 201)
    conforms("Member", member)
    ok(hub.rtc("PUT", f"/sessions/{sid}/members/user/dave", {"role": "manager"}, alice), 200)
    ok(hub.rtc("PUT", f"/sessions/{sid}/members/group/cs101", {"role": "viewer"}, tokens["dave"]), 201)
    ok(hub.rtc("DELETE", f"/sessions/{sid}/members/team/apis", token=alice), 204)
    members = ok(hub.rtc("GET", f"/sessions/{sid}/members", token=bob))["members"]
    assert {(m["kind"], m["name"], m["role"]) for m in members} == {
        ("user", "bob", "editor"), ("group", "empty", "runner"),
        ("user", "dave", "manager"), ("group", "cs101", "viewer")}

    rule = ok(hub.rtc("PUT", f"/sessions/{sid}/cells", {
        "path": "project/nb.ipynb", "cell_id": "intro", "rule": "assigned",
        "writers": [{"user": "bob"}]}, alice), 201)
    conforms("CellRule", rule)
    refused(hub.rtc("PUT", f"/sessions/{sid}/cells", {
        "path": "nb.ipynb", "cell_id": "x", "rule": "locked"}, bob), 403, "owner and managers")
    assert len(ok(hub.rtc("GET", f"/sessions/{sid}/cells", token=bob))["cells"]) == 1

    changed = ok(hub.rtc("PATCH", f"/sessions/{sid}", {"title": "Renamed"}, tokens["dave"]))
    assert changed["title"] == "Renamed"
    refused(hub.rtc("DELETE", f"/sessions/{sid}", token=tokens["dave"]), 403, "only the owner")
    ok(hub.rtc("DELETE", f"/sessions/{sid}", token=alice), 204)
    assert ok(hub.rtc("GET", f"/sessions/{sid}", token=alice))["state"] == "ended"


def test_activity_recorded_by_a_server_is_read_by_owner_and_instructor(hub: LocalHub, tokens) -> None:
    s = ok(hub.rtc("POST", "/sessions", {"title": "Activity", "members": [
        {"user": "bob", "role": "editor"}]}, tokens["alice"]), 201)
    batch = {"events": [
        {"ts": "2026-11-21T10:00:01Z", "user": "bob", "kind": "edit", "path": "a.ipynb",
         "cell_id": "c1", "count": 5},
        {"ts": "2026-11-21T10:02:00Z", "user": "bob", "kind": "execute", "path": "a.ipynb"},
        {"ts": "2026-11-21T10:02:00Z", "user": "carol", "kind": "refused", "path": "a.ipynb",
         "cell_id": "c1"},
    ]}
    # the ops token stands in for a shared server: it holds custom:rtc:admin
    assert ok(hub.rtc("POST", f"/sessions/{s['id']}/activity", batch))["recorded"] == 7
    refused(hub.rtc("POST", f"/sessions/{s['id']}/activity", batch, tokens["bob"]), 403, "activity:write")
    events = ok(hub.rtc("GET", f"/sessions/{s['id']}/activity?user=bob&kind=edit", token=tokens["alice"]))
    assert [(e["user"], e["cell_id"], e["count"]) for e in events["events"]] == [("bob", "c1", 5)]
    for e in events["events"]:
        conforms("ActivityEvent", e)
    # ida teaches cs101: she may read it without being a member, but not change it
    summary = ok(hub.rtc("GET", f"/sessions/{s['id']}/activity/summary", token=tokens["ida"]))
    rows = {m["user"]: m for m in summary["members"]}
    assert rows["bob"]["edit"] == 5 and rows["bob"]["execute"] == 1 and rows["carol"]["refused"] == 1
    refused(hub.rtc("PATCH", f"/sessions/{s['id']}", {"title": "x"}, tokens["ida"]), 403)
    refused(hub.rtc("GET", f"/sessions/{s['id']}/activity", token=tokens["bob"]), 403, "activity")


def test_outside_reach_is_403(hub: LocalHub, tokens) -> None:
    s = ok(hub.rtc("POST", "/sessions", {"title": "Private"}, tokens["alice"]), 201)
    for method, path, body in [
        ("GET", f"/sessions/{s['id']}", None),
        ("PATCH", f"/sessions/{s['id']}", {"title": "mine"}),
        ("DELETE", f"/sessions/{s['id']}", None),
        ("PUT", f"/sessions/{s['id']}/members/user/bob", {"role": "manager"}),
        ("GET", f"/sessions/{s['id']}/activity", None),
        ("GET", "/sessions?which=all", None),
    ]:
        refused(hub.rtc(method, path, body, tokens["bob"]), 403)
    assert all(x["id"] != s["id"] for x in ok(hub.rtc("GET", "/sessions", token=tokens["bob"]))["sessions"])


def test_tokens_without_the_scopes_are_refused(hub: LocalHub) -> None:
    no_access = hub.user_token("bob", scopes=["read:users:name!user"])
    refused(hub.rtc("GET", "/me", token=no_access), 403)
    no_rtc = hub.user_token("bob", scopes=["access:services!service=rtc"])
    refused(hub.rtc("GET", "/sessions", token=no_rtc), 403, "custom:rtc:sessions")
    refused(hub.rtc("POST", "/sessions", {"title": "x"}, no_rtc), 403, "custom:rtc:sessions")
    refused(hub.rtc("GET", "/sessions", token="not-a-token"), 403)
    scoped = hub.user_token("bob", scopes=["access:services!service=rtc", "custom:rtc:sessions"])
    assert ok(hub.rtc("GET", "/me", token=scoped))["name"] == "bob"


@pytest.mark.parametrize("body,status,words", [
    ({"title": "x", "members": [{"user": "bob", "role": "owner"}]}, 422, "role"),
    ({"title": "x", "members": [{"user": "nobody-here", "role": "viewer"}]}, 422, "no hub user"),
    ({"title": "x", "members": [{"team": "no-such-team", "role": "viewer"}]}, 422, "no team"),
    ({"title": "x", "members": [{"group": "no-such-group", "role": "viewer"}]}, 422, "no hub group"),
    ({"title": "x", "members": [{"user": "bob", "role": "viewer"},
                                {"user": "bob", "role": "editor"}]}, 409, "twice"),
    ({"title": "x", "members": [{"user": f"u{i}", "role": "viewer"} for i in range(13)]}, 403, "at most 12"),
    ({"title": ""}, 422, "title"),
    ({"title": "x", "host": "cloud"}, 422, "host"),
    ({"title": "x", "root": "../../etc"}, 422, "outside"),
    ({"title": "x", "surprise": 1}, 422, "surprise"),
    ({"title": "x", "expires_at": "2001-01-01T00:00:00Z"}, 422, "future"),
    ({"title": "x", "course": "cs101-staff"}, 403, "not in hub group"),
])
def test_bad_input_is_refused_and_changes_nothing(hub: LocalHub, tokens, body, status, words) -> None:
    token = tokens["carol"]
    before = ok(hub.rtc("GET", "/sessions?which=mine", token=token))["sessions"]
    refused(hub.rtc("POST", "/sessions", body, token), status, words)
    assert ok(hub.rtc("GET", "/sessions?which=mine", token=token))["sessions"] == before


def _raw(hub: LocalHub, method: str, path: str, data: bytes, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(hub.service_url + path, data=data, method=method)
    request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_malformed_and_oversize_bodies(hub: LocalHub, tokens) -> None:
    refused(_raw(hub, "POST", "/sessions", b"{not json", tokens["carol"]), 400, "not valid JSON")
    refused(_raw(hub, "POST", "/sessions", b"[1, 2]", tokens["carol"]), 422)
    big = json.dumps({"title": "x" * (2 * 1024 * 1024)}).encode()
    refused(_raw(hub, "POST", "/sessions", big, tokens["carol"]), 413, "larger than")


def test_unknown_session_is_404_and_session_limit_is_403(hub: LocalHub, tokens) -> None:
    refused(hub.rtc("GET", "/sessions/nope", token=tokens["dave"]), 404, "no session")
    for i in range(5):
        ok(hub.rtc("POST", "/sessions", {"title": f"s{i}"}, tokens["dave"]), 201)
    refused(hub.rtc("POST", "/sessions", {"title": "one too many"}, tokens["dave"]), 403, "at most 5")


def test_teams(hub: LocalHub, tokens) -> None:
    team = ok(hub.rtc("POST", "/teams", {"name": "owls", "members": ["bob"]}, tokens["carol"]), 201)
    conforms("Team", team)
    refused(hub.rtc("POST", "/teams", {"name": "owls"}, tokens["bob"]), 409, "already exists")
    refused(hub.rtc("POST", "/teams", {"name": "x", "members": ["ghost"]}, tokens["bob"]), 422, "no hub user")
    added = ok(hub.rtc("PUT", "/teams/owls/members/dave", token=tokens["carol"]), 201)
    assert added["members"] == ["bob", "dave"]
    refused(hub.rtc("PUT", "/teams/owls/members/alice", token=tokens["bob"]), 403)
    assert [t["name"] for t in ok(hub.rtc("GET", "/teams", token=tokens["bob"]))["teams"]] == ["owls"]
    refused(hub.rtc("GET", "/teams/owls", token=tokens["alice"]), 403)
    ok(hub.rtc("DELETE", "/teams/owls/members/bob", token=tokens["carol"]), 204)
    ok(hub.rtc("DELETE", "/teams/owls", token=tokens["carol"]), 204)
    refused(hub.rtc("GET", "/teams/owls", token=tokens["carol"]), 404)


def test_me_identity_policy_and_spec(hub: LocalHub, tokens) -> None:
    me = ok(hub.rtc("GET", "/me", token=tokens["ida"]))
    conforms("Me", me)
    assert me["watches"] == ["cs101"] and not me["admin"] and me["can_create"]
    ident = ok(hub.rtc("GET", "/identity", token=tokens["ida"]))
    assert ident["id"] == me["id"]
    refused(hub.rtc("GET", "/identity?user=bob", token=tokens["ida"]), 403, "custom:rtc:authorize")
    assert ok(hub.rtc("GET", "/identity?user=bob"))["name"] == "bob"
    policy = ok(hub.rtc("GET", "/policy", token=tokens["bob"]))
    assert policy["max_members_per_session"] == 12
    assert policy["instructor_groups"] == {"cs101-staff": ["cs101"]}
    with urllib.request.urlopen(hub.service_url + "/openapi.yaml") as r:
        assert b"hub_rtc REST API" in r.read()


def test_persistent_id_survives_a_real_hub_rename(hub: LocalHub) -> None:
    token = hub.user_token("erin")
    before = ok(hub.rtc("GET", "/identity", token=token))
    ok(hub.api("PATCH", "/hub/api/users/erin", {"name": "erin-renamed"}))
    after = ok(hub.rtc("GET", "/identity", token=hub.user_token("erin-renamed")))
    assert after["name"] == "erin-renamed" and after["id"] == before["id"]


def test_hub_restarts_the_service_and_no_record_is_lost(hub: LocalHub, tokens) -> None:
    s = ok(hub.rtc("POST", "/sessions", {"title": "Survives", "members": [
        {"user": "bob", "role": "editor"}]}, tokens["carol"]), 201)
    [pid] = processes_in(hub.workdir, "hub_rtc serve")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        restarted = processes_in(hub.workdir, "hub_rtc serve")
        if restarted and restarted != [pid] and hub.rtc("GET", "/")[0] == 200:
            break
        time.sleep(0.5)
    else:
        pytest.fail("JupyterHub did not restart the service within 60 s")
    again = ok(hub.rtc("GET", f"/sessions/{s['id']}", token=tokens["bob"]))
    assert again["my_role"] == "editor" and again["title"] == "Survives"
