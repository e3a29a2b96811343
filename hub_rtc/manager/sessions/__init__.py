"""Sessions and teams: create, list, change and end them; their members and
cell rules; instructors watching courses; what time alone changes (expiry,
lapsed grants).  Builds on ``access`` and ``hosting``."""
