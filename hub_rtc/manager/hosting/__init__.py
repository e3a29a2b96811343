"""Where a session lives: its server, the JupyterHub shares that let members in,
the server-facing side (announce, rights, events hello) and the baselines the
service keeps for the files on those servers."""
