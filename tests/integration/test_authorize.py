"""POST /authorize through a real hub agrees with the decision table, row by row.

The world of tests/decision_cases.py is built through the REST API, on the
default-policy hub (SQLite) and on a other-policy hub (PostgreSQL).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from hub_rtc import auth
from hub_rtc.decision import Resource
from hub_rtc.localhub import LocalHub
from tests import decision_cases as W
from tests.conftest import _postgres_url
from tests.integration.conftest import Tokens, start_hub

pytestmark = pytest.mark.integration
EXPIRY_SECONDS = 3


def _ok(result: tuple[int, object], status: int) -> dict:
    code, body = result
    assert code == status, body
    return body if isinstance(body, dict) else {}


def build_world(hub: LocalHub, tokens: Tokens) -> str:
    """The decision world, made as its people would make it; returns the session id."""
    olive = tokens[W.OWNER]
    for user in W.ALL_USERS:
        tokens[user]  # every person exists in the hub
    _ok(hub.rtc("POST", "/teams", {"name": W.TEAM[0], "members": list(W.TEAM[1])}, olive), 201)
    soon = datetime.now(UTC) + timedelta(seconds=EXPIRY_SECONDS)
    members = [{"user": u, "role": r} for u, r in W.USER_GRANTS.items() if r != "manager"]
    members += [
        {"team": W.TEAM[0], "role": W.TEAM[2]},
        {"group": W.GROUP[0], "role": W.GROUP[2]},
        {"user": W.EXPIRED[0], "role": W.EXPIRED[1], "expires_at": soon.isoformat()},
        {"user": W.REMOVED, "role": "editor"},
    ]
    sid = _ok(hub.rtc("POST", "/sessions", {"title": "world", "course": W.COURSE,
                                             "members": members}, olive), 201)["id"]
    # managers are granted by the ops token (an rtc admin): a narrowing
    # policy may forbid students to grant them, never an admin
    _ok(hub.rtc("PUT", f"/sessions/{sid}/members/user/max", {"role": "manager"}), 201)
    _ok(hub.rtc("DELETE", f"/sessions/{sid}/members/user/{W.REMOVED}", token=olive), 204)
    cells = f"/sessions/{sid}/cells"
    locked = {"path": W.NOTEBOOK, "cell_id": W.CELLS["locked"], "rule": "locked"}
    _ok(hub.rtc("PUT", cells, locked, olive), 201)
    writers = [{kind: name} for kind, name in W.ASSIGNED_TO]
    _ok(hub.rtc("PUT", cells, {"path": W.NOTEBOOK, "cell_id": W.CELLS["assigned"],
                               "rule": "assigned", "writers": writers}, olive), 201)
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.2)
    return sid


def ask(hub: LocalHub, sid: str, case: W.Case) -> dict:
    resource = {"session_id": sid}
    if case.cell:
        resource |= {"path": W.NOTEBOOK, "cell_id": W.CELLS[case.cell]}
    return _ok(hub.rtc("POST", "/authorize", {"user": case.user, "action": case.action,
                                              "resource": resource}), 200)


@pytest.fixture(scope="module")
def world(hub: LocalHub, tokens: Tokens) -> str:
    return build_world(hub, tokens)


def test_every_row_agrees_under_default_policy(hub: LocalHub, world: str) -> None:
    answers = {c.id: ask(hub, world, c) for c in W.cases()}
    wrong = [(c.id, answers[c.id]) for c in W.cases() if answers[c.id]["allowed"] is not c.allowed]
    assert wrong == []


@pytest.fixture(scope="module")
def other_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    """A second hub with another policy, its service on PostgreSQL."""
    urls = _postgres_url()
    db_url = next(urls)
    extra = "".join(f"c.RTCPolicy.{k} = {v!r}\n" for k, v in W.OTHER_POLICY.items())
    hub = start_hub(tmp_path_factory.mktemp("other"), extra, db_url=db_url)
    yield hub
    hub.stop()
    next(urls, None)


@pytest.mark.postgres
def test_every_row_agrees_under_another_policy(other_hub: LocalHub) -> None:
    sid = build_world(other_hub, Tokens(other_hub))
    answers = {c.id: ask(other_hub, sid, c) for c in W.other_policy_cases()}
    wrong = [(c.id, answers[c.id]) for c in W.other_policy_cases()
             if answers[c.id]["allowed"] is not c.allowed]
    assert wrong == []


def test_ended_and_expired_sessions_refuse_everyone(hub: LocalHub, tokens: Tokens) -> None:
    olive = tokens[W.OWNER]
    soon = datetime.now(UTC) + timedelta(seconds=EXPIRY_SECONDS)
    ended = _ok(hub.rtc("POST", "/sessions", {"title": "ended"}, olive), 201)["id"]
    expiring = _ok(hub.rtc("POST", "/sessions", {"title": "expiring",
                                                 "expires_at": soon.isoformat()}, olive), 201)["id"]
    _ok(hub.rtc("DELETE", f"/sessions/{ended}", token=olive), 204)
    owner_reads = W.Case(W.OWNER, "read", None, False)
    assert "ended" in ask(hub, ended, owner_reads)["reason"]
    assert ask(hub, expiring, owner_reads)["allowed"] is True
    time.sleep(EXPIRY_SECONDS + 0.2)
    answer = ask(hub, expiring, owner_reads)
    assert answer["allowed"] is False and "expired" in answer["reason"]


def test_python_hooks(hub: LocalHub, tokens: Tokens, world: str) -> None:
    api = hub.service_url
    resource = Resource(world, W.NOTEBOOK, W.CELLS["assigned"])
    assert auth.allowed(tokens["eddie"], "write", resource, api_url=api, caller_token=hub.ops_token)
    assert not auth.allowed(tokens["vic"], "write", resource, api_url=api, caller_token=hub.ops_token)
    # without a caller token, a user asks about themselves
    assert auth.allowed(tokens["vic"], "read", {"session_id": world}, api_url=api)
    with pytest.raises(auth.ServiceError) as e:
        auth.allowed(tokens["vic"], "read", {"session_id": world}, api_url=api,
                     caller_token=tokens["rui"])
    assert e.value.status == 403
    ident = _ok(hub.rtc("GET", "/identity", token=tokens["eddie"]), 200)
    assert auth.persistent_id(tokens["eddie"], api_url=api) == ident["id"]
