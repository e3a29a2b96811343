"""A shared server's own hub token is nobody's browser (issue 11, item 1).

On the server: every place HubAuth takes a token from is compared with the
server's own, and the IdentityProvider, the Authorizer and the owner's
shortcut refuse it.  On the service: every endpoint but the six a server
calls for itself refuses a server's token, whatever its scopes.
The same with a real hub: tests/integration/test_server_token.py.
"""

from __future__ import annotations

import inspect
from typing import Any
from unittest import mock

import pytest
from jupyterhub.services.auth import HubOAuth
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from tornado.web import Application, HTTPError, RequestHandler, create_signed_value

from hub_rtc.decision.access import Access
from hub_rtc.manager.actor import (
    SCOPE_ADMIN,
    SCOPE_AUTHORIZE,
    SCOPE_SESSIONS,
    Actor,
    server_token_refusal,
)
from hub_rtc.singleuser.authorizer import HubRTCAuthorizer, HubRTCIdentityProvider, own_token_in
from hub_rtc.singleuser.own_token import REFUSED, carrying, header_token, same_token, same_token_id

OWN = "own-server-token-0123456789abcdef"
USERS = "olives-own-user-token-fedcba9876543210"
OWNER = "olive"
SECRET = "c" * 32
ACCESS = f"access:servers!server={OWNER}/"


# -- the pure parts ------------------------------------------------------------------------------

@pytest.mark.parametrize(("candidate", "own", "same"), [
    (OWN, OWN, True),
    (OWN + "x", OWN, False),
    (OWN[:-1], OWN, False),
    ("", OWN, False),
    (None, OWN, False),
    ("", "", False),  # a server without a token matches nothing, not every empty token
    ("tökén", "tökén", True),
])
def test_tokens_are_compared_whole(candidate: str | None, own: str, same: bool) -> None:
    assert same_token(candidate, own) is same


@pytest.mark.parametrize(("header", "found"), [
    (f"token {OWN}", [OWN]),
    (f"Bearer {OWN}", [OWN]),
    (f"TOKEN   {OWN}", [OWN]),
    (f"token {OWN} ", [f"{OWN} ", OWN]),  # what HubAuth sends on, and what it means
    (f"Basic {OWN}", []),
    ("", []),
])
def test_the_authorization_header_is_read_as_hubauth_reads_it(header: str, found: list[str]) -> None:
    assert header_token(header) == found


def test_carrying_names_the_source_that_holds_the_token() -> None:
    sources: dict[str, list[str | None]] = {"the header": ["other"], "the cookie": [None, OWN]}
    assert carrying(sources, OWN) == "the cookie"
    assert carrying({"the header": ["other"], "the cookie": [None]}, OWN) is None
    assert carrying({"the header": [OWN]}, "") is None


def test_the_hubs_answer_names_the_token_by_id() -> None:
    assert same_token_id({"token_id": "a7"}, "a7")
    assert not same_token_id({"token_id": "a8"}, "a7")
    assert not same_token_id({"token_id": None}, None)
    assert not same_token_id({}, "a7") and not same_token_id({"token_id": "a7"}, None)


# -- requests as tornado and HubOAuth see them ---------------------------------------------------

def hub_auth() -> HubOAuth:
    auth = HubOAuth(api_token=OWN, oauth_client_id=f"jupyterhub-user-{OWNER}",
                    access_scopes={ACCESS}, cookie_host_prefix_enabled=False)
    # HubOAuth patches the XSRF check of tornado's own classes: not in a test process
    auth._patch_xsrf = lambda handler: None  # type: ignore[method-assign]
    return auth


def request(uri: str = "/user/olive/api/contents/a.txt", method: str = "GET",
            headers: dict[str, str] | None = None, body: bytes = b"",
            cookie: str | None = None, auth: HubOAuth | None = None) -> RequestHandler:
    fields = HTTPHeaders(headers or {})
    if cookie is not None:
        assert auth is not None
        signed = create_signed_value(SECRET, auth.cookie_name, cookie).decode()
        fields["Cookie"] = f"{auth.cookie_name}={signed}"
    req = server_request(method, uri, fields, body)
    req._parse_body()
    return RequestHandler(Application([], cookie_secret=SECRET), req)


def server_request(method: str, uri: str, headers: HTTPHeaders | None = None,
                   body: bytes = b"") -> HTTPServerRequest:
    headers = headers or HTTPHeaders()
    headers.setdefault("Host", "127.0.0.1")
    return HTTPServerRequest(start_line=RequestStartLine(method, uri, "HTTP/1.1"),
                             headers=headers, body=body, connection=mock.Mock())


def carriers(auth: HubOAuth) -> dict[str, RequestHandler]:
    """The server's token, each way HubAuth takes one."""
    return {
        "header": request(headers={"Authorization": f"token {OWN}"}),
        "bearer": request(headers={"Authorization": f"bearer {OWN}"}),
        "url": request(uri=f"/user/olive/lab?token={OWN}"),
        "url, second of two": request(uri=f"/user/olive/lab?token=x&token={OWN}"),
        "form body": request(method="POST", body=f"token={OWN}".encode(),
                             headers={"Content-Type": "application/x-www-form-urlencoded"}),
        "websocket url": request(uri=f"/user/olive/api/kernels/k/channels?token={OWN}",
                                 headers={"Sec-Fetch-Mode": "websocket"}),
        "cookie": request(cookie=OWN, auth=auth),
        "cookie under a user's header": request(headers={"Authorization": "token not-valid"},
                                                cookie=OWN, auth=auth),
    }


WAYS = ["header", "bearer", "url", "url, second of two", "form body", "websocket url", "cookie",
        "cookie under a user's header"]


def test_every_way_is_tried() -> None:
    assert list(carriers(hub_auth())) == WAYS


@pytest.mark.parametrize("way", WAYS)
def test_the_servers_token_is_found_every_way_hubauth_takes_one(way: str) -> None:
    auth = hub_auth()
    assert own_token_in(carriers(auth)[way], auth) is not None


def test_a_users_own_token_is_found_nowhere() -> None:
    auth = hub_auth()
    for handler in (request(headers={"Authorization": f"token {USERS}"}),
                    request(uri=f"/user/olive/lab?token={USERS}"),
                    request(cookie=USERS, auth=auth), request()):
        assert own_token_in(handler, auth) is None


# -- the IdentityProvider and the Authorizer ------------------------------------------------------

class _Gate:
    owner = OWNER

    async def identity_of(self, name: str) -> Access:
        return Access(reason="")


def _model(token_id: str) -> dict[str, Any]:
    return {"name": OWNER, "kind": "user", "scopes": [ACCESS], "groups": [], "token_id": token_id}


def provider(ids: dict[str, str]) -> tuple[HubRTCIdentityProvider, list[str]]:
    """An IdentityProvider whose hub resolves each token in ``ids`` to olive, with that id."""
    auth = hub_auth()
    asked: list[str] = []

    async def user_for_token(token: str, use_cache: bool = True, session_id: str = "",
                             *, sync: bool = True) -> dict[str, Any] | None:
        asked.append(token)
        return _model(ids[token]) if token in ids else None

    auth.user_for_token = user_for_token  # type: ignore[method-assign]
    return HubRTCIdentityProvider(hub_auth=auth, gate=_Gate(), service_name="rtc"), asked


@pytest.mark.parametrize("way", WAYS)
async def test_the_identity_provider_refuses_it_before_asking_the_hub(way: str) -> None:
    ids = {OWN: "t-own", USERS: "t-user"}
    identity, asked = provider(ids)
    handler = carriers(identity.hub_auth)[way]
    with pytest.raises(HTTPError) as refused:
        await identity.get_user(handler)
    assert refused.value.status_code == 403 and refused.value.log_message == REFUSED
    assert asked == []  # nobody resolved it, nothing stored it in a cookie
    assert handler._jupyterhub_user is None and handler.current_user is None  # type: ignore[attr-defined]


async def test_the_identity_provider_refuses_whatever_the_hub_resolves_to_its_token() -> None:
    # a token the hub resolves to the server's own (by id), however it came
    identity, _ = provider({OWN: "t-own", "alias": "t-own"})
    with pytest.raises(HTTPError) as refused:
        await identity.get_user(request(headers={"Authorization": "token alias"}))
    assert refused.value.status_code == 403 and refused.value.log_message == REFUSED


async def test_the_owners_own_token_still_signs_them_in() -> None:
    identity, asked = provider({OWN: "t-own", USERS: "t-user"})
    user = await identity.get_user(request(headers={"Authorization": f"token {USERS}"}))
    assert user is not None and user.hub_user["name"] == OWNER
    assert asked == [USERS, OWN]  # the server's own token's id, asked for once
    await identity.get_user(request(headers={"Authorization": f"token {USERS}"}))
    assert asked == [USERS, OWN, USERS]


async def test_without_an_id_from_the_hub_the_tokens_are_still_compared() -> None:
    identity, _ = provider({USERS: "t-user"})  # the hub names no id for the server's token
    user = await identity.get_user(request(headers={"Authorization": f"token {USERS}"}))
    assert user is not None and identity._own_token_id == ""  # kept: not asked again

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise HTTPError(500, "hub down")

    identity, _ = provider({USERS: "t-user"})
    identity.hub_auth.user_for_token = down  # type: ignore[method-assign]
    assert await identity.own_token_id() is None and identity._own_token_id is None  # asked again
    with pytest.raises(HTTPError) as refused:
        await identity.get_user(request(headers={"Authorization": f"token {OWN}"}))
    assert refused.value.log_message == REFUSED


async def test_the_authorizer_gives_the_servers_token_nothing_even_as_the_owner() -> None:
    identity, _ = provider({})
    authorizer = HubRTCAuthorizer(identity_provider=identity, gate=_Gate())
    owner = type("U", (), {"hub_user": _model("t-own"), "username": OWNER})()
    for handler in carriers(identity.hub_auth).values():
        assert await authorizer.is_authorized(handler, owner, "read", "contents") is False
    user_request = request(headers={"Authorization": f"token {USERS}"})
    with pytest.warns(DeprecationWarning, match="oauth_scopes"):  # JupyterHub's own check
        assert await authorizer.is_authorized(user_request, owner, "read", "contents") is True


# -- the service: a server's token is refused by every endpoint but the server's own -------------

SERVER_SCOPES = frozenset({ACCESS, "users:activity!user=olive", "access:services!service=rtc",
                           f"{SCOPE_AUTHORIZE}!server={OWNER}/",
                           f"custom:rtc:activity:write!server={OWNER}/"})


@pytest.mark.parametrize(("actor", "refused"), [
    (Actor(OWNER, scopes=SERVER_SCOPES), f"{OWNER}'s server's own hub token"),
    (Actor(OWNER, scopes=frozenset({"access:servers!server=olive/lab"})), "olive's server 'lab'"),
    # whatever an admin's c.Spawner.server_token_scopes adds, it stays the server's
    (Actor(OWNER, scopes=SERVER_SCOPES | {SCOPE_SESSIONS, SCOPE_ADMIN}), "never as its user"),
    (Actor(OWNER, scopes=frozenset({"access:servers!user=olive", SCOPE_SESSIONS})), None),
    # bob reaches olive's server through a share: his token is still his
    (Actor("bob", scopes=frozenset({ACCESS, SCOPE_SESSIONS})), None),
    (Actor("rtc", scopes=frozenset({ACCESS}), kind="service"), None),
])
def test_the_service_tells_a_servers_token_from_its_users(actor: Actor, refused: str | None) -> None:
    why = server_token_refusal(actor)
    assert (why is None) if refused is None else (why is not None and refused in why)


#: (handler class name, method): the only ones a server's token may call
SERVER_FACING = {("AnnounceHandler", "post"), ("RightsHandler", "post"),
                 ("BaselinesHandler", "post"), ("BaselinesHandler", "put"),
                 ("PresenceHandler", "post"), ("ActivityHandler", "post"),
                 ("ServerEventsHandler", "get")}
#: public: the version and the spec; and the forms' GETs, which only send people to the page
PUBLIC = {("RootHandler", "get"), ("SpecHandler", "get"),
          *((form, "get") for form in ("MemberAction", "RemoveMemberAction", "CellAction",
                                       "EndAction", "WatchAction"))}


class _Reached(Exception):
    """The request got past authentication, to the domain."""


class _Nowhere:
    """The domain: any attribute (arguments are evaluated after it), reached when called."""

    def __getattr__(self, name: str) -> Any:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise _Reached()


class _Hub:
    async def user(self, name: str) -> None:
        return None


def _endpoints() -> list[tuple[type, str]]:
    from hub_rtc.service.handlers import all_handlers
    from hub_rtc.service.pages import all_pages

    found = []
    for _, cls in all_handlers() + all_pages():
        for method in ("get", "post", "put", "patch", "delete"):
            if method in {k for c in cls.__mro__ if c.__module__.startswith("hub_rtc")
                          for k in vars(c)}:
                found.append((cls, method))
    return found


def test_every_endpoint_is_looked_at() -> None:
    names = {(cls.__name__, m) for cls, m in _endpoints()}
    assert SERVER_FACING | PUBLIC <= names and len(names) > 30


@pytest.mark.parametrize(("cls", "method"), _endpoints(),
                         ids=lambda v: v.__name__ if isinstance(v, type) else v)
async def test_a_servers_token_reaches_only_the_servers_own_endpoints(cls: type, method: str) -> None:
    model = {"name": OWNER, "kind": "user", "scopes": sorted(SERVER_SCOPES)}
    # the events channel resolves the token itself, as the hub would: to olive's server
    hub_auth = mock.Mock(user_for_token=mock.AsyncMock(return_value=model), access_scopes=set())
    settings = {"manager": _Nowhere(), "hub_client": _Hub(), "upstream": _Nowhere(),
                "templates": _Nowhere(), "page_prefix": "/services/rtc/", "hub_prefix": "/hub/",
                "api_prefix": "/services/rtc/api/v1/", "max_body_bytes": 1 << 20,
                "hub_auth": hub_auth}
    req = server_request(method.upper(), "/services/rtc/x",
                         HTTPHeaders({"Content-Type": "application/json"}), b"{}")
    handler = cls(Application([], **settings), req)
    handler._transforms = []  # (tornado sets them when it runs a request itself)
    handler.current_user = model
    args = {name: "x.ipynb" for name in list(inspect.signature(getattr(handler, method)).parameters)}
    try:
        await getattr(handler, method)(**args)
    except HTTPError as e:
        outcome = "refused" if e.status_code == 403 and "never as its user" in (e.log_message or "") \
            else f"HTTPError {e.status_code} {e.log_message}"
    except Exception as e:
        outcome = f"reached ({type(e).__name__})"
    else:
        outcome = "answered"
    key = (cls.__name__, method)
    if key in PUBLIC:
        assert outcome == "answered"
    elif key in SERVER_FACING:
        # past the token: to the domain, or to the body's check (the test sends {})
        assert outcome in ("reached (_Reached)", "reached (Invalid)"), outcome
    else:
        assert outcome == "refused", outcome


async def test_authorize_takes_no_servers_token_as_the_one_to_decide_about() -> None:
    from hub_rtc.manager.errors import Invalid
    from hub_rtc.service.handlers.me import AuthorizeHandler

    req = server_request("POST", "/authorize", body=b"{}")
    handler = AuthorizeHandler(Application([], manager=_Nowhere()), req)
    model = {"name": OWNER, "kind": "user", "scopes": sorted(SERVER_SCOPES)}
    handler._hub_auth = mock.Mock(user_for_token=mock.AsyncMock(return_value=model))
    caller = Actor("ops", scopes=frozenset({SCOPE_ADMIN}), kind="service")
    with pytest.raises(Invalid, match="own hub token"):
        await handler._subject(caller, {"token": OWN})
    with pytest.raises(_Reached):  # by name, the owner is asked about as ever
        await handler._subject(caller, {"user": OWNER})
