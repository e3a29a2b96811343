"""Who is who and what they may do: people and their principals (users, teams,
hub groups), the ``/authorize`` answer and the rights a shared server caches.
The rules themselves are :mod:`hub_rtc.decision`'s.

The lowest of the sub-domains: it imports none of the others, and
``hosting``, ``sessions``, ``activity`` and ``documents`` build on it."""
