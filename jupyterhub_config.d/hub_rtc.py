# hub_rtc drop-in for jupyterhub_config.py.
#
# Run it in jupyterhub_config.py's own namespace, at the END of that file,
# after your c.RTCPolicy and c.RTCService settings (it hands their values to
# the service):
#
#     from hub_rtc.resources import load_dropin
#     load_dropin(c)
#
# or, as zero-to-jupyterhub does for every file in jupyterhub_config.d/,
# exec() it there.  (traitlets' load_subconfig() will NOT do: it runs the
# file against an empty config and merges afterwards, so this file would
# neither see your settings nor keep your services and roles.)
#
# It registers:
# - the managed service (default name `rtc`, at /services/rtc/), or, when
#   c.JupyterHub.services already has a service of that name without a
#   command (zero-to-jupyterhub's hub.services.rtc with url and apiToken),
#   completes that external service, whose replicas run elsewhere
#   (`hub-rtc serve --RTCService.config_file=…`, see the zero-to-jupyterhub how-to),
# - the custom scopes `custom:rtc:*`,
# - the service's own least-privilege role `rtc-service`,
# - `access:services!service=rtc`, `custom:rtc:sessions` and
#   `custom:rtc:documents:read|write` in the `user` role, so every hub user can
#   reach the service and put those scopes in tokens that script it (a token
#   with only `custom:rtc:documents:read` can read documents and change nothing),
# - `custom:rtc:authorize` and `custom:rtc:activity:write` filtered to each
#   server (`!server`) in the `server` role, with `access:services!service=rtc`,
#   so a single-user server's own token can announce itself, ask for rights
#   on it, follow its events channel and record its activity (the role's
#   default scopes are kept).  The hub gives a server's token only what its
#   user holds, so the `user` role holds the same two filtered to the user's
#   own servers (`!user`): nobody can ask about, or speak for, another's server,
# - $HUB_RTC_API_URL in every spawned server's environment (c.Spawner's, and
#   any spawner's own section that sets one, such as zero-to-jupyterhub's
#   c.KubeSpawner): the service's API, under c.JupyterHub.base_url, reached
#   directly rather than through the proxy, and
#   $HUB_RTC_SERVICE_NAME: the one caller whose on-behalf header servers believe,
# - c.RTCService.upstream_url, if not set: the proxy's address, from
#   c.JupyterHub.bind_url (or ip and port), where the relay reaches servers,
# - a post-auth hook refusing logins as collaboration accounts (rtc-<id>),
# - `rtc-admin` (custom:rtc:admin) for c.Authenticator.admin_users,
# - `rtc-instructor` (custom:rtc:activity:read) for the instructor groups
#   named in c.RTCPolicy.instructor_groups.
import json
import sys

from traitlets.config import LazyConfigValue

c = get_config()  # noqa: F821  (jupyterhub_config.py's own namespace provides it)

SCOPES = {
    "custom:rtc:sessions": {
        "description": "Create and manage your own collaboration sessions and teams.",
    },
    "custom:rtc:activity:read": {
        "description": "Read the activity of collaboration sessions you may see.",
    },
    "custom:rtc:activity:write": {
        "description": "Record activity of collaboration sessions (shared servers).",
    },
    "custom:rtc:authorize": {
        "description": "Ask hub_rtc for decisions about other users (shared servers).",
    },
    "custom:rtc:documents:read": {
        "description": "Read the live notebooks of collaboration sessions you are a member of.",
    },
    "custom:rtc:documents:write": {
        "description": "Change the notebooks of collaboration sessions, as your role allows.",
        "subscopes": ["custom:rtc:documents:read"],
    },
    "custom:rtc:admin": {
        "description": "Administer every collaboration session and team.",
        "subscopes": [
            "custom:rtc:sessions",
            "custom:rtc:activity:read",
            "custom:rtc:activity:write",
            "custom:rtc:authorize",
            "custom:rtc:documents:read",
            "custom:rtc:documents:write",
        ],
    },
}

# What the service itself needs from the hub's API, and nothing more:
# look up users (name, groups, creation time) and groups.
SERVICE_SCOPES = ["list:users", "read:users", "list:groups", "read:groups"]

# ...and, when it hosts sessions (c.RTCService.manage_hub_access, the default):
HOSTING_SCOPES = [
    # create the collaboration accounts `rtc-<id>`: the hub has no narrower
    # scope for creating users (this one could also rename or delete them;
    # the service never does)
    "admin:users",
    # the state of servers (ready? started when?) and starting and stopping
    # the collaboration accounts' servers; unfiltered, because accounts are
    # created after the hub starts and sessions live on anyone's server
    "servers",
    # create and withdraw the shares that let members in; it includes
    # `access:servers` (to every server), because the hub lets a token share
    # only access it holds itself
    "shares",
]

# The hub's default `server` role: naming the role in load_roles replaces
# these, so they are put back.
SERVER_DEFAULT_SCOPES = ["users:activity!user", "access:servers!server"]


def _value(section, key, empty):
    """A config value as a plain object, whether set, appended to, or unset."""
    if key not in section:
        return empty
    value = section[key]
    return value.get_value(empty) if isinstance(value, LazyConfigValue) else value


def _plain(section):
    out = {}
    for key, value in section.items():
        if isinstance(value, LazyConfigValue):
            raise ValueError(f"hub_rtc: set {key} with '=', not append/update")
        out[key] = sorted(value) if isinstance(value, (set, frozenset)) else value
    return out


def _merge_role(roles, name, scopes, **members):
    """Add scopes and members to role ``name``, creating it if it is missing."""
    role = next((r for r in roles if r.get("name") == name), None)
    if role is None:
        role = {"name": name, "scopes": []}
        roles.append(role)
    role["scopes"] = sorted(set(role.get("scopes") or []) | set(scopes))
    for kind, names in members.items():
        role[kind] = sorted(set(role.get(kind) or []) | set(names))
    return role


name = _value(c.RTCService, "service_name", "rtc")
url = _value(c.RTCService, "bind_url", "http://127.0.0.1:10101")
hosting = _value(c.RTCService, "manage_hub_access", True)
handover = {"RTCService": _plain(c.RTCService), "RTCPolicy": _plain(c.RTCPolicy)}


def _proxy_origin(hub):
    """Where the proxy listens, as a local process reaches it: the relay's way to servers."""
    from urllib.parse import urlparse

    bind = urlparse(_value(hub, "bind_url", "") or "http://:8000")
    scheme = "https" if _value(hub, "ssl_cert", "") else (bind.scheme or "http")
    host = _value(hub, "ip", None) if "ip" in hub else bind.hostname
    port = _value(hub, "port", None) if "port" in hub else bind.port
    if not host or host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port or 8000}"


handover["RTCService"].setdefault("upstream_url", _proxy_origin(c.JupyterHub))

services = list(_value(c.JupyterHub, "services", []))
OAUTH = {
    "oauth_no_confirm": True,
    "oauth_client_allowed_scopes": [f"access:services!service={name}", *SCOPES],
    "display": True,
    "info": {"description": "Real-time collaboration sessions"},
}
external = next((s for s in services if s.get("name") == name), None)
if external is None:
    # the hub starts and restarts the service itself
    services.append({"name": name, "url": url, "command": [sys.executable, "-m", "hub_rtc", "serve"],
                     "environment": {"HUB_RTC_CONFIG": json.dumps(handover)}, **OAUTH})
elif "command" in external:
    raise ValueError(f"hub_rtc: c.JupyterHub.services already has a service {name!r} with a"
                     " command; leave it out (the drop-in adds it) or drop its command to run"
                     " the service outside the hub")
else:
    # An external service (zero-to-jupyterhub's hub.services.<name>: url and api_token):
    # its replicas run elsewhere with that token; complete the entry, keep its url.
    for key, value in OAUTH.items():
        external.setdefault(key, value)
    url = external.get("url") or url
    external["url"] = url
c.JupyterHub.services = services

custom_scopes = dict(_value(c.JupyterHub, "custom_scopes", {}))
custom_scopes.update(SCOPES)
c.JupyterHub.custom_scopes = custom_scopes

roles = list(_value(c.JupyterHub, "load_roles", []))
# c.RTCService.relay_route = "direct": the relay reads where the proxy sends each
# server (GET /hub/api/proxy) to reach it without the proxy hop
ROUTE_SCOPES = ["proxy"] if _value(c.RTCService, "relay_route", "proxy") == "direct" else []
_merge_role(roles, "rtc-service", SERVICE_SCOPES + (HOSTING_SCOPES if hosting else []) + ROUTE_SCOPES,
            services=[name])
SERVER_SPEAKS = ["custom:rtc:authorize", "custom:rtc:activity:write"]
server_scopes = [f"access:services!service={name}", *(f"{s}!server" for s in SERVER_SPEAKS)]
if not any(r.get("name") == "server" for r in roles):
    server_scopes += SERVER_DEFAULT_SCOPES
_merge_role(roles, "server", server_scopes)
_merge_role(roles, "user", ["self", f"access:services!service={name}", "custom:rtc:sessions",
                            "custom:rtc:documents:read", "custom:rtc:documents:write",
                            *(f"{s}!user" for s in SERVER_SPEAKS)])
_merge_role(
    roles, "rtc-admin", ["custom:rtc:admin", f"access:services!service={name}"],
    users=_value(c.Authenticator, "admin_users", set()),
)
instructor_groups = _value(c.RTCPolicy, "instructor_groups", {})
if instructor_groups:
    _merge_role(
        roles, "rtc-instructor", ["custom:rtc:activity:read"], groups=list(instructor_groups)
    )
c.JupyterHub.load_roles = roles

# Servers reach the service directly (not through the proxy) at its API, under the
# hub's base URL as every service is...
base = _value(c.JupyterHub, "base_url", "/").strip("/")
prefix = f"/{base}/services/{name}" if base else f"/services/{name}"
SERVER_ENV = {"HUB_RTC_API_URL": f"{url.rstrip('/')}{prefix}/api/v1",
              # ...and believe the on-behalf header from this service alone.
              "HUB_RTC_SERVICE_NAME": name}


def _with_server_env(section):
    environment = dict(_value(section, "environment", {}))
    for key, value in SERVER_ENV.items():
        environment.setdefault(key, value)
    section.environment = environment


_with_server_env(c.Spawner)
# A spawner's own section wins over c.Spawner's where it sets environment too
# (zero-to-jupyterhub always sets c.KubeSpawner.environment): fill those in as well.
for _section in [key for key in c if key.endswith("Spawner") and key != "Spawner"]:
    if "environment" in c[_section]:
        _with_server_env(c[_section])

# Collaboration accounts (rtc-<id>) are hub users that only the service drives:
# nobody may log in as one, whatever the authenticator says.  The prefix is
# reserved: a person whose login name starts with it is refused too.
from hub_rtc.manager.sessions.sessions import ACCOUNT_PREFIX  # noqa: E402

_admin_post_auth_hook = _value(c.Authenticator, "post_auth_hook", None)


def _refuse_account_logins(authenticator, handler, auth_model):
    name = str((auth_model or {}).get("name", ""))
    if name.startswith(ACCOUNT_PREFIX):
        authenticator.log.warning("hub_rtc: refused a login as %s: names starting with %r are"
                                  " collaboration accounts", name, ACCOUNT_PREFIX)
        return None
    if _admin_post_auth_hook is not None:
        return _admin_post_auth_hook(authenticator, handler, auth_model)
    return auth_model


c.Authenticator.post_auth_hook = _refuse_account_logins
