"""The server's own hub token is nobody's browser.

JupyterHub gives every single-user server an API token of its own
(``$JUPYTERHUB_API_TOKEN``, also ``$JPY_API_TOKEN``) and resolves it, like
any token of that user, to the server's owner.  Code in a kernel running as
the server's account can find it, so a request that carries it is not the
owner at their browser: the IdentityProvider refuses it (403) before anyone
is asked what it may do, on every handler, REST and websocket alike (the
collaboration room, kernels, contents, terminals, pages).

Where a request can carry a token, as JupyterHub's ``HubAuth`` reads them
(jupyterhub/services/auth.py, ``get_token`` and ``_get_user``), and all are
compared with :func:`hmac.compare_digest`:

- the ``token`` argument: the URL query (HubAuth reads it when
  ``allow_token_in_url`` is on, and always on websockets) and a form body
  (tornado's ``get_argument`` reads both); refused wherever it appears, even
  where HubAuth would ignore it;
- the ``Authorization: token …`` / ``Authorization: bearer …`` header;
- the HubOAuth cookie, which HubAuth fills from a ``?token=`` on a page
  navigation: the URL token is refused before it could be stored;
- anything else the hub resolves: its answer names the token's id
  (``token_id``, JupyterHub 5+), compared with this server's own token's id.

Who calls this server with its own token: nobody.  Read from the sources
(jupyterhub 6.1, jupyter_server 2.21, jupyter-collaboration 5, jupyterlab 4):

- the hub's start-up check (``wait_for_http_server``) sends no credential;
  the hub's activity tracking, its proxy and its spawner polling call no
  server at all;
- jupyterhub-singleuser sends the token to the hub only: activity
  (``POST …/hub/api/users/<name>/activity``), the version check (no token),
  the OAuth code exchange (it is the OAuth client secret) and ``/hub/api/user``
  lookups, where the token asked about is sent, not this one;
- hub_rtc's extension sends it to the hub_rtc service only (announce, rights,
  baselines, presence, activity, the events channel: see
  :mod:`hub_rtc.manager.actor`), never to this server;
- jupyter-collaboration and jupyter_server_ydoc open documents in-process;
- JupyterLab puts the server's token into its page config
  (``identity_provider.token``), but JupyterHub's ``page_config_hook`` replaces
  it on every page with the token of the browser asking, so a browser never
  holds the server's token;
- jupyter_server writes it into its runtime file (``jpserver-<pid>.json``) and
  URLs it prints: ``jupyter server list`` / ``stop`` with it are refused now.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping

#: what a request carrying this server's own token is told, and what the log says
REFUSED = "hub_rtc: this server's own API token is not a user's credential"

#: how HubAuth reads the Authorization header (``HubAuth.auth_header_pat``)
HEADER_PATTERN = re.compile(r"(?:token|bearer)\s+(.+)", re.IGNORECASE)


def same_token(candidate: str | None, own: str) -> bool:
    """Whether ``candidate`` is ``own``, in constant time; never for an empty ``own``."""
    if not own or not candidate:
        return False
    return hmac.compare_digest(candidate.encode("utf-8", "replace"), own.encode("utf-8", "replace"))


def header_token(value: str, pattern: re.Pattern[str] = HEADER_PATTERN) -> list[str]:
    """The token an ``Authorization`` header carries, as HubAuth reads it (and trimmed)."""
    match = pattern.match(value or "")
    if match is None:
        return []
    return list(dict.fromkeys((match.group(1), match.group(1).strip())))


def carrying(sources: Mapping[str, Iterable[str | None]], own: str) -> str | None:
    """The first source (``"the Authorization header"``…) holding ``own``; None if none does.

    Every candidate is compared, none short-circuits another: the answer takes
    as long whichever source, if any, holds it.
    """
    found = None
    for where, candidates in sources.items():
        for candidate in candidates:
            if same_token(candidate, own) and found is None:
                found = where
    return found


def same_token_id(hub_user: Mapping[str, object], own_id: str | None) -> bool:
    """Whether the hub resolved the request to this server's own token (by its id)."""
    seen = hub_user.get("token_id")
    return bool(own_id) and isinstance(seen, str) and seen == own_id


__all__ = ["REFUSED", "carrying", "header_token", "same_token", "same_token_id"]
