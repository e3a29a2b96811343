"""Who is who and who may do what in a session: people and their principals,
members and their roles, cell rules, the ``/authorize`` answer and the rights
a shared server caches.  The rules themselves are :mod:`hub_rtc.decision`'s."""
