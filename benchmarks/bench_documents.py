"""The document API, warm and cold: a call on a kept replica vs one that opens the room.

One local hub with its proxy and the hub_rtc service; olive's guarded server
hosts session "bench" with ``ed`` as an editor on the 50-cell notebook.  ed's
script reads the notebook (``GET …/documents/nb.ipynb``) and replaces a cell's
source (``PUT …/cells/<id>``) through the service:

- **warm**: calls back to back, on the replica the service keeps open between
  calls (``c.RTCService.document_replica_seconds``);
- **cold**: each call after the replica was closed for being idle (the service
  runs with a short idle time here), so it opens the room as ed and syncs the
  whole notebook, as every call did before replicas.

Calls go over one kept-alive HTTP connection, as a script's ``requests.Session``
makes them.  The same connection also times ``GET /sessions/{id}`` (the
service's floor: token check, session lookup, JSON) so that what a document
call adds to any call can be read off.

Rounds alternate which goes first; p50 and p99 per round, medians over rounds,
and cold ÷ warm are printed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from harness import (  # noqa: E402
    EDITOR,
    NOTEBOOK,
    create_notebooks,
    host_session,
    hub_config,
    interleaved,
    local_hub,
    median,
    met,
    options,
    percentile,
    start_servers,
)

from hub_rtc.localhub import LocalHub  # noqa: E402

OWNER = "olive"
#: the service's idle time for replicas here: cold calls wait it out
IDLE_SECONDS = 0.3
CELL = "cell-3"


class Script:
    """A script's kept-alive connection to the service, through the proxy (or, given
    ``port``, straight to the service's own port, to read off what the proxy adds)."""

    def __init__(self, hub: LocalHub, token: str, port: int | None = None) -> None:
        url = urlsplit(hub.service_url)
        self.base = url.path
        self.headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
        self.address = (url.hostname or "127.0.0.1", port or url.port)
        self.connection = http.client.HTTPConnection(*self.address, timeout=30)

    def reconnect(self, session: str) -> None:
        """A new connection, opened by one untimed call: the proxy (node) closes a
        connection after 5 s idle, as long as another mode's calls can take here."""
        self.connection.close()
        self.connection = http.client.HTTPConnection(*self.address, timeout=30)
        self.timed("GET", f"/sessions/{session}")

    def timed(self, method: str, path: str, body: object = None) -> float:
        """Milliseconds of one API call (it must succeed)."""
        data = json.dumps(body).encode() if body is not None else None
        start = time.perf_counter()
        self.connection.request(method, self.base + path, data, self.headers)
        response = self.connection.getresponse()
        reply = response.read()
        elapsed = (time.perf_counter() - start) * 1000
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {reply[:200]!r}")
        return elapsed

    def close(self) -> None:
        self.connection.close()


def calls(script: Script, session: str, doc: str, count: int, cold: bool) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"GET": [], "PUT": [], "floor": []}
    script.reconnect(session)
    for n in range(count):
        for method in ("GET", "PUT"):
            if cold:
                time.sleep(IDLE_SECONDS * 3)  # the replica is closed meanwhile
            if method == "GET":
                out[method].append(script.timed("GET", doc))
            else:
                out[method].append(script.timed("PUT", f"{doc}/cells/{CELL}", {"source": f"# call {n}\n"}))
        out["floor"].append(script.timed("GET", f"/sessions/{session}"))
    return out


def service_port(hub: LocalHub) -> int:
    """The port the service itself listens on (``c.RTCService.bind_url``)."""
    config = (hub.workdir / "jupyterhub_config.py").read_text()
    found = re.search(r'c\.RTCService\.bind_url = "http://127\.0\.0\.1:(\d+)"', config)
    if found is None:
        raise RuntimeError("no c.RTCService.bind_url in the hub's config")
    return int(found.group(1))


def short_idle(workdir: Path) -> str:
    return hub_config(workdir) + f"c.RTCService.document_replica_seconds = {IDLE_SECONDS}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    full = {"rounds": 3, "warm": 100, "cold": 10}
    quick = {"rounds": 1, "warm": 20, "cold": 3}
    parser.add_argument("--rounds", type=int, help=f"interleaved rounds ({full['rounds']})")
    parser.add_argument("--warm", type=int, help=f"warm calls of each kind per round ({full['warm']})")
    parser.add_argument("--cold", type=int, help=f"cold calls of each kind per round ({full['cold']})")
    args = options(parser, full, quick)
    with local_hub("bench_documents-", short_idle, (OWNER,)) as hub:
        tokens = {name: hub.user_token(name) for name in (OWNER, EDITOR)}
        start_servers(hub, (OWNER,))
        create_notebooks(hub, OWNER, tokens[OWNER], [NOTEBOOK])
        session = host_session(hub, tokens[OWNER], time.monotonic() + 60)
        doc = f"/sessions/{session}/documents/nb.ipynb"
        deadline = time.monotonic() + 30
        while hub.rtc("GET", doc, None, tokens[EDITOR])[0] != 200:  # ed's share reaches the hub
            if time.monotonic() > deadline:
                raise RuntimeError("ed cannot read the notebook")
            time.sleep(0.5)
        p50: dict[tuple[str, str], list[float]] = {}
        p99: dict[tuple[str, str], list[float]] = {}
        script = Script(hub, tokens[EDITOR])
        scripts = {"warm": script, "cold": script,
                   "service": Script(hub, tokens[EDITOR], service_port(hub))}
        for r in range(args.rounds):
            for mode in interleaved(r, ("warm", "cold", "service")):
                got = calls(scripts[mode], session, doc, args.cold if mode == "cold" else args.warm,
                            cold=mode == "cold")
                for method, ms in got.items():
                    p50.setdefault((mode, method), []).append(percentile(ms, 50))
                    p99.setdefault((mode, method), []).append(percentile(ms, 99))
            print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        for each in scripts.values():
            each.close()
    print(f"== document API through the proxy, as ed, on one kept-alive connection: warm (a kept "
          f"replica) vs cold (the room opened and the whole notebook synced); medians of "
          f"{args.rounds} interleaved rounds")
    print(f"  {'call':<36} {'cold':>9} {'warm':>9}   cold / warm")
    aims = []
    for method, label in (("GET", "GET the notebook"), ("PUT", "PUT one cell's source")):
        for name, table in (("p50", p50), ("p99", p99)):
            cold, warm = median(table["cold", method]), median(table["warm", method])
            print(f"  {label + ', ' + name + ', ms':<36} {cold:>9.1f} {warm:>9.1f}   {cold / warm:.1f}x")
        warm50 = median(p50["warm", method])
        aims.append(f"{method} warm p50 {warm50:.1f} ms {met(warm50 < 5)}")
    floor = median(p50["warm", "floor"])
    print(f"  {'GET /sessions/{id} (the floor), p50, ms':<36} {median(p50['cold', 'floor']):>9.1f} "
          f"{floor:>9.1f}")
    print("  warm, straight to the service's port (no proxy), p50: "
          + ", ".join(f"{label} {median(p50['service', method]):.1f} ms" for method, label in
                      (("GET", "GET the notebook"), ("PUT", "PUT a cell"), ("floor", "the floor"))))
    print(f"  aim (warm p50 < 5 ms): {'; '.join(aims)}; the document part of a warm call: GET "
          f"{median(p50['warm', 'GET']) - floor:+.1f} ms, PUT {median(p50['warm', 'PUT']) - floor:+.1f} ms "
          f"over the floor")


if __name__ == "__main__":
    main()
