"""POST /authorize over HTTP through a real hub and proxy, at 10,000 sessions and
100,000 grants, on SQLite and PostgreSQL.

The baseline in the same run is the service's trivial endpoint (``GET /``):
same proxy, same token check, no records and no decision.  Rounds of the two
alternate so machine noise hits both alike; medians and ratios are printed.
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from bench_decision import pg_url  # noqa: E402
from populate import populate  # noqa: E402

from hub_rtc.localhub import LocalHub  # noqa: E402

HUB_USERS = 50
ROUNDS, PER_ROUND, WARMUP = 5, 400, 200


def timed(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None,
          headers: dict[str, str]) -> float:
    start = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"{method} {path}: {response.status} {payload[:200]!r}")
    return elapsed


def measure(hub: LocalHub, pairs: list[tuple[str, str]]) -> dict[str, list[float]]:
    conn = http.client.HTTPConnection("127.0.0.1", hub.port)
    headers = {"Authorization": f"token {hub.ops_token}", "Content-Type": "application/json"}
    base = "/services/rtc/api/v1"
    bodies = [json.dumps({"user": u, "action": "write", "resource": {"session_id": s}}).encode()
              for s, u in pairs]
    out: dict[str, list[float]] = {"authorize": [], "baseline": []}
    for i in range(WARMUP):  # fills the hub's token cache and the service's directory cache
        timed(conn, "POST", f"{base}/authorize", bodies[i % len(bodies)], headers)
    for _ in range(ROUNDS):
        for i in range(PER_ROUND):
            body = bodies[i % len(bodies)]
            out["authorize"].append(timed(conn, "POST", f"{base}/authorize", body, headers))
        for _ in range(PER_ROUND):
            out["baseline"].append(timed(conn, "GET", f"{base}/", None, headers))
    return out


def report(label: str, times: dict[str, list[float]]) -> None:
    def pct(xs: list[float], q: float) -> float:
        return sorted(xs)[int(q * (len(xs) - 1))] * 1000

    a, b = times["authorize"], times["baseline"]
    print(f"== {label}")
    for name, xs in (("POST /authorize", a), ("GET / (baseline)", b)):
        print(f"  {name:18s} p50 {pct(xs, .5):6.2f} ms  p99 {pct(xs, .99):6.2f} ms  "
              f"{len(xs) / sum(xs):7.0f} req/s (sequential)")
    print(f"  ratio authorize/baseline: p50 {statistics.median(a) / statistics.median(b):.2f}x; "
          f"aim p50 < 5 ms: {'met' if pct(a, .5) < 5 else 'MISSED'}")


def run(label: str, db_url: str, workdir: Path) -> None:
    data = populate(db_url)
    names = {uid: f"u{i}" for i, uid in enumerate(data["user_ids"])}
    pairs = [(s, names[u]) for s, u in (p.split(":") for p in data["pairs"])
             if int(names[u][1:]) < HUB_USERS]
    hub = LocalHub(workdir, db_url=db_url)
    hub.start()
    try:
        status, reply = hub.api("POST", "/hub/api/users", {"usernames": [f"u{i}" for i in range(HUB_USERS)]})
        assert status == 201, reply
        report(label, measure(hub, pairs))
    finally:
        hub.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        run("SQLite, 10k sessions / 100k grants", f"sqlite:///{d}/bench.sqlite", Path(d) / "hub-sqlite")
        pg = pg_url()
        if pg:
            try:
                run("PostgreSQL, 10k sessions / 100k grants", pg[0], Path(d) / "hub-pg")
            finally:
                pg[1]()


if __name__ == "__main__":
    main()
