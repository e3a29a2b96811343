"""What one user may do on this server: the decision's :class:`~hub_rtc.decision.Access`.

The Authorizer, the guarded room and the kernel hook all read it; only
:mod:`.service` knows how it is fetched.  It and its rules live in
:mod:`hub_rtc.decision.access`; this name stays for the extension's modules.
"""

from __future__ import annotations

from ..decision.access import Access

__all__ = ["Access"]
