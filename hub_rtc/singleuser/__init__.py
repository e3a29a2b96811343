"""The hub_rtc jupyter_server extension, for shared single-user servers.

Enabled by ``jupyter_server_config.d/hub_rtc.json`` (installed with the
package); active only under JupyterHub.  Parts:

- :mod:`.targets` — which question a request asks (pure)
- :mod:`.access` — the service's answer (pure)
- :mod:`.cache`, :mod:`.tally` — answers kept briefly, activity counted (pure)
- :mod:`.gate` — asks the service, fails closed, re-checks live sockets
- :mod:`.auth` — the Authorizer and IdentityProvider
- :mod:`.room` — the guarded collaboration room
- :mod:`.kernels` — ``JUPYTER_AUTH_ID`` for kernels
- :mod:`.app` — the extension that wires them in
"""
