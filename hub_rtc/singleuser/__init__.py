"""The hub_rtc jupyter_server extension, for shared single-user servers.

Enabled by ``jupyter_server_config.d/hub_rtc.json`` (installed with the
package); active only under JupyterHub.  What a user may do is the
decision's (:class:`hub_rtc.decision.Access`); this package asks for it and
enforces it.  Parts:

- :mod:`.targets`, :mod:`.roomid`: which question a request asks, and the
  room id read once (pure)
- :mod:`.links`: where a path on this server really leads
- :mod:`.service`, :mod:`.cache`, :mod:`.gate`: asking the service with the
  server's token, answers kept briefly, failing closed, re-checking live sockets
- :mod:`.authorizer`: the Authorizer and IdentityProvider
- :mod:`.connection`: one room connection's logic, frames in and out (pure)
- :mod:`.room`: the guarded collaboration room, a thin tornado handler over it
- :mod:`.disk`: the file on disk as a principal (the DiskGuard)
- :mod:`.counting`: what a checked update counts for, an edit or a refusal (pure)
- :mod:`.tally`, :mod:`.presence`: activity counted, open documents reported
- :mod:`.kernels`: ``JUPYTER_AUTH_ID`` for kernels
- :mod:`.unchecked`: API handlers that never ask the Authorizer, made to ask it
- :mod:`.app`: the extension that wires them in
"""
