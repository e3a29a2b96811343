"""Pure decision throughput, and decision with its records loaded from the database.

Prints medians over repeated runs; the in-memory dict lookup of the same
session is the baseline the ratio is taken against.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from hub_rtc.decision import CellRuleView, GrantView, Principal, Resource, SessionView, decide
from hub_rtc.manager.views import load_view
from hub_rtc.policy import RTCPolicy
from hub_rtc.records import Database

sys.path.insert(0, str(Path(__file__).parent))
from populate import populate  # noqa: E402

NOW = datetime.now(UTC)
REPEATS = 7


def rate(fn, n: int) -> float:
    """Median calls per second of ``fn`` over REPEATS runs of ``n`` calls."""
    rates = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def pure() -> float:
    grants = tuple(GrantView("user", f"u{i}", "editor") for i in range(10))
    rules = {("nb.ipynb", f"c{i}"): CellRuleView("locked") for i in range(20)}
    view = SessionView("s1", "owner", grants=grants, cell_rules=rules)
    who = Principal("u7", frozenset({"cs101"}), frozenset({"team1"}))
    policy = RTCPolicy().decision_view()
    resources = [Resource("s1"), Resource("s1", "nb.ipynb", "c3"), Resource("s1", "nb.ipynb", "free")]
    actions = ["read", "write", "execute"]
    i = 0

    def one() -> None:
        nonlocal i
        i += 1
        decide(who, actions[i % 3], resources[i % 3], view, policy, NOW)

    return rate(one, 20_000)


def with_records(url: str, label: str) -> None:
    print(f"{label}:")
    data = populate(url)
    db = Database(url)
    policy = RTCPolicy().decision_view()
    pairs = [p.split(":") for p in data["pairs"]]
    names = {uid: f"u{i}" for i, uid in enumerate(data["user_ids"])}
    i = 0

    def one() -> None:
        nonlocal i
        sid, uid = pairs[i % len(pairs)]
        i += 1
        who = Principal(names[uid])
        with db.sessions() as s:
            view = load_view(s, sid, who, "nb.ipynb", "c1")
        assert decide(who, "read", Resource(sid), view, policy, NOW).allowed

    per_s = rate(one, 500)
    print(f"  load records + decide: {per_s:,.0f}/s median ({1000 / per_s:.2f} ms each)")
    db.dispose()


def main() -> None:
    print("== pure decision (no I/O)")
    per_s = pure()
    print(f"  decide(): {per_s:,.0f} decisions/s median of {REPEATS}  (aim >= 50,000/s: "
          f"{per_s / 50_000:.1f}x the aim)")
    with tempfile.TemporaryDirectory() as d:
        label = "== decision with records, SQLite, 10k sessions / 100k grants"
        with_records(f"sqlite:///{d}/bench.sqlite", label)
    pg = pg_url()
    if pg:
        with_records(pg[0], "== decision with records, PostgreSQL, 10k sessions / 100k grants")
        pg[1]()


def pg_url():
    """A throw-away PostgreSQL database, or None if none answers."""
    sys.path.insert(0, str(Path(__file__).parents[1]))
    try:
        from tests.conftest import _postgres_url

        gen = _postgres_url()
        return next(gen), lambda: next(gen, None)
    except BaseException as e:  # pytest.skip raises a BaseException subclass
        print(f"== PostgreSQL skipped: {e}")
        return None


if __name__ == "__main__":
    main()
