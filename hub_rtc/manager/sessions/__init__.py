"""Sessions and teams: create, list, change and end them; instructors watching
courses; what time alone changes (expiry, lapsed grants)."""
