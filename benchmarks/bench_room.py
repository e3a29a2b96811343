"""The stock collaboration room and the guarded room, side by side, end to end.

One local hub with its proxy and the hub_rtc service, and two single-user
servers on it: ``sam``'s runs jupyter-collaboration alone (hub_rtc is switched
off for him through his own Jupyter config dir), ``olive``'s runs it with
hub_rtc and hosts a session in which ``ed`` is an editor and 5 of the 50 cells
are locked.  The same 50-cell notebook on both, the same edit stream, and
rounds that alternate which server goes first, so that noise hits both rooms
alike; medians over the rounds are printed.

Scenarios, each measured on both servers:

- owner -> owner: sender and receiver are both the server's owner (on the
  guarded server: the guard's full-rights path plus attribution);
- editor -> owner: ``ed``, with 5 cells locked, types into a free cell (the
  restricted path).  The stock server has no sessions, so there a third
  client of its owner sends: the like-for-like baseline.

Each room has the same three clients throughout (two of the owner's, and ed's
or a third of the owner's), so both broadcast every edit to three replicas.

Measures: throughput (N one-character inserts sent as fast as the websocket
takes them, timed until the receiver has them all), latency (one edit at a
time until the receiver has it; p50 and p99), the CPU each process spends per
edit during the throughput runs (and the server's until it is quiet again), and
RSS per room (K more notebooks opened on each server, one client each, after
the edit rounds; then again once each of those clients typed a character, when
the guarded server holds the guard's mirror of each).  Every measure starts
with both servers and the proxy quiet.
Clients are pycrdt y-sync clients in this process, connected through
configurable-http-proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycrdt import Text

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from bench_guard import checked_and_echoed, median_rate, typing, unguarded  # noqa: E402
from bench_guard import notebook as guard_notebook  # noqa: E402
from harness import (  # noqa: E402
    CELLS,
    EDITOR,
    NOTEBOOK,
    ROOT,
    cpu_seconds,
    create_notebooks,
    host_session,
    hub_config,
    interleaved,
    local_hub,
    median,
    met,
    notebook_json,
    options,
    percentile,
    proxy_pid,
    quiet,
    retried,
    round_trips,
    rss_kib,
    send_burst,
    start_servers,
)

from hub_rtc.guard import Rights  # noqa: E402
from hub_rtc.localhub import LocalHub  # noqa: E402
from hub_rtc.singleuser.roomguards import GUARD_IDLE_SECONDS  # noqa: E402
from tests.integration.yclient import YClient  # noqa: E402

STOCK, GUARDED = "sam", "olive"
SERVERS = (STOCK, GUARDED)
LOCKED = tuple(f"cell-{i}" for i in range(0, CELLS, CELLS // 5))  # 5 cells
FREE = tuple(f"cell-{i}" for i in range(CELLS) if f"cell-{i}" not in LOCKED)
GUARDED_LOG_LINE = "document rooms are guarded"


# -- the hub -----------------------------------------------------------------


class Bench:
    """The hub, its users' tokens, the servers' processes and the session."""

    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub
        self.tokens = {name: hub.user_token(name) for name in (STOCK, GUARDED, EDITOR)}
        self.session_id = ""
        self.pids: dict[str, int] = {}

    def start_servers(self) -> None:
        self.pids = start_servers(self.hub, SERVERS)

    def create_notebooks(self, paths: list[str]) -> None:
        for server in SERVERS:
            create_notebooks(self.hub, server, self.tokens[server], paths)

    def create_session(self, timeout: float = 60) -> None:
        """ed edits olive's ``lab1``; the LOCKED cells of nb.ipynb are locked."""
        self.session_id = host_session(self.hub, self.tokens[GUARDED], time.monotonic() + timeout)
        for cell in LOCKED:
            status, reply = self.hub.rtc("PUT", f"/sessions/{self.session_id}/cells",
                                         {"path": "nb.ipynb", "cell_id": cell, "rule": "locked"},
                                         self.tokens[GUARDED])
            assert status in (200, 201), (status, reply)

    def activity(self) -> dict[str, dict[str, Any]]:
        status, reply = self.hub.rtc("GET", f"/sessions/{self.session_id}/activity/summary",
                                     token=self.tokens[GUARDED])
        assert status == 200, (status, reply)
        return {row["user"]: row for row in reply["members"]}

    def guarded_log_lines(self) -> int:
        return (self.hub.workdir / "hub.log").read_text(errors="replace").count(GUARDED_LOG_LINE)

    async def client(self, server: str, user: str, path: str = NOTEBOOK) -> YClient:
        """``user``'s synced client of ``path`` on ``server``'s room."""
        return await YClient.connect(self.hub.url, server, path, self.tokens[user], timeout=30)


# -- the measures ------------------------------------------------------------


def reached(text: Text, length: int) -> Callable[[], bool]:
    return lambda: len(text) >= length


def announced(peer: YClient, client_id: int) -> Callable[[], bool]:
    return lambda: client_id in peer.awareness.states


async def throughput(tx: YClient, rx: YClient, cell: str, edits: int, pids: list[int], busy: list[int],
                     ) -> tuple[float, list[float]]:
    """Edits/s from the first send until ``rx`` has all of them; and CPU seconds per edit:
    of ``pids`` and of this process over the same time, then of ``pids[0]`` (the server)
    until every process in ``busy`` is quiet again (the work that trails the delivery)."""
    sent, seen = tx.text(cell), rx.text(cell)
    arrived = rx.when(reached(seen, len(seen) + edits))
    before = [cpu_seconds(pid) for pid in pids] + [time.process_time()]
    elapsed = await send_burst(tx, sent, edits, arrived, 120)
    during = [cpu_seconds(pid) for pid in pids] + [time.process_time()]
    await quiet(busy)
    total = cpu_seconds(pids[0])
    cpu = [(b - a) / edits for a, b in zip(before, during, strict=True)]
    return edits / elapsed, cpu + [(total - before[0]) / edits]


async def latencies(tx: YClient, rx: YClient, cell: str, edits: int) -> list[float]:
    """Milliseconds from each single edit until ``rx`` has it."""
    sent, seen = tx.text(cell), rx.text(cell)
    return await round_trips(tx, sent, edits, lambda: rx.when(reached(seen, len(seen) + 1)))


async def memory_per_room(bench: Bench, server: str, paths: list[str]) -> tuple[float, float]:
    """KiB of the server's RSS per room opened (one client each), and then per room
    once each client typed a character (the guarded server then holds a mirror)."""
    pid = bench.pids[server]
    before = rss_kib(pid)
    peers = await asyncio.gather(*(bench.client(server, server, path) for path in paths))
    await quiet([pid])  # what each room starts on opening has run
    opened = rss_kib(pid)
    for peer in peers:
        peer.type_into(FREE[0], "m")
    await quiet([pid])
    edited = rss_kib(pid)
    for peer in peers:
        peer.close()
    return (opened - before) / len(paths), (edited - before) / len(paths)


# -- checks: the two servers really differ ---------------------------------


async def verify(bench: Bench, peers: dict[str, dict[str, YClient]]) -> list[str]:
    """Prove which room handler each server runs, and that the session's rules bite."""
    notes = []
    guarded_lines = bench.guarded_log_lines()
    if guarded_lines != 1:
        raise RuntimeError(f"{guarded_lines} servers logged {GUARDED_LOG_LINE!r}; expected 1 (olive's)")
    notes.append(f"hub.log: exactly one server logged {GUARDED_LOG_LINE!r}")
    # The stock room forwards awareness as the client wrote it; the guarded room
    # replaces ``user`` with the identity the service vouches for.
    for server in SERVERS:
        tx, rx = peers[server]["tx"], peers[server]["rx"]
        await tx.say({"user": {"name": "spoofed", "display_name": "spoofed"}})
        cid = tx.doc.client_id
        await asyncio.wait_for(rx.when(announced(rx, cid)), 10)
        shown = rx.awareness.states[cid].get("user", {}).get("name")
        stock_handler = shown == "spoofed"
        if stock_handler != (server == STOCK):
            raise RuntimeError(f"{server}'s room shows awareness name {shown!r}: wrong room handler")
        notes.append(f"{server}: a client's claimed awareness name shows as {shown!r} "
                     f"({'stock handler' if stock_handler else 'guarded handler'})")
    # An editor's edit to a locked cell is reverted on the guarded server.
    ed, owner = peers[GUARDED]["editor"], peers[GUARDED]["rx"]
    locked = ed.text(LOCKED[0])
    before = str(locked)
    await ed.type(locked, "LOCKED? ", at=0)
    await asyncio.wait_for(ed.when(lambda: str(locked) == before), 10)
    await asyncio.sleep(0.3)
    if owner.source(LOCKED[0]) != before:
        raise RuntimeError("the editor's edit to a locked cell reached the owner")
    notes.append(f"{GUARDED}: ed's edit to locked {LOCKED[0]} was reverted and never reached the owner")
    return notes


# -- the run -----------------------------------------------------------------


@dataclass
class Samples:
    rate: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    #: per run: server, proxy, this process while delivering; server until quiet again
    cpu: list[list[float]] = field(default_factory=list)

    def cpu_us(self, which: int) -> float:
        return median([run[which] for run in self.cpu]) * 1e6


SCENARIOS = (
    ("owner -> owner", "tx"),
    ("editor, 5 locked cells -> owner", "editor"),
)


async def run(bench: Bench, args: argparse.Namespace, memory_paths: list[list[str]],
              ) -> tuple[dict[tuple[int, str], Samples], dict[str, list[tuple[float, float]]], list[str]]:
    peers: dict[str, dict[str, YClient]] = {}
    for server in SERVERS:
        peers[server] = {"rx": await bench.client(server, server), "tx": await bench.client(server, server)}
    # ed's client: retried while the service's share reaches the hub.
    peers[GUARDED]["editor"] = await retried(lambda: bench.client(GUARDED, EDITOR))
    # No sessions on the stock server: a third client of its owner takes the
    # editor's seat, so that both rooms broadcast every edit to three clients.
    peers[STOCK]["editor"] = await bench.client(STOCK, STOCK)
    busy = [bench.pids[server] for server in SERVERS] + [proxy_pid(bench.hub)]
    samples = {(s, server): Samples() for s in range(len(SCENARIOS)) for server in SERVERS}
    memory: dict[str, list[tuple[float, float]]] = {server: [] for server in SERVERS}
    typed: dict[str, int] = {}
    try:
        notes = await verify(bench, peers)
        for r in range(args.rounds):
            order = interleaved(r, SERVERS)
            for s, (_, sender) in enumerate(SCENARIOS):
                rate_cell = FREE[(4 * r + 2 * s) % len(FREE)]
                latency_cell = FREE[(4 * r + 2 * s + 1) % len(FREE)]
                for server in order:
                    p = peers[server]
                    await quiet(busy)
                    rate, cpu = await throughput(p[sender], p["rx"], rate_cell, args.edits,
                                                 [bench.pids[server], busy[-1]], busy)
                    samples[s, server].rate.append(rate)
                    samples[s, server].cpu.append(cpu)
                for server in order:
                    p = peers[server]
                    await quiet(busy)
                    ms = await latencies(p[sender], p["rx"], latency_cell, args.latency_edits)
                    samples[s, server].p50.append(percentile(ms, 50))
                    samples[s, server].p99.append(percentile(ms, 99))
                typed[rate_cell] = typed.get(rate_cell, 0) + args.edits
                typed[latency_cell] = typed.get(latency_cell, 0) + args.latency_edits
            progress = ", ".join(f"{label} {samples[s, STOCK].rate[-1]:,.0f} vs "
                                 f"{samples[s, GUARDED].rate[-1]:,.0f} edits/s"
                                 for s, (label, _) in enumerate(SCENARIOS))
            print(f"  round {r + 1}/{args.rounds}: stock vs guarded: {progress}", file=sys.stderr, flush=True)
        await converge(peers, typed)
        # After the edit rounds: the rooms opened here stay loaded for a while and
        # would otherwise weigh on the edit measures of later rounds.
        for r in range(args.rounds):
            for server in interleaved(r, SERVERS):
                await quiet(busy)
                memory[server].append(await memory_per_room(bench, server, memory_paths[r]))
    finally:
        for group in peers.values():
            for peer in set(group.values()):
                peer.close()
    return samples, memory, notes


async def converge(peers: dict[str, dict[str, YClient]], typed: dict[str, int]) -> None:
    """Every replica ends with every typed character, identical per server."""
    base = {cell["id"]: len(cell["source"]) for cell in notebook_json()["cells"]}
    for server, group in peers.items():
        replicas = list(set(group.values()))
        for cell, count in typed.items():
            for peer in replicas:
                text = peer.text(cell)
                await asyncio.wait_for(peer.when(reached(text, base[cell] + count)), 30)
        states = {json.dumps(p.state(), sort_keys=True) for p in replicas}
        if len(states) != 1:
            raise RuntimeError(f"{server}: the replicas differ at the end")


def guard_cost_us(edits: int) -> dict[str, float]:
    """bench_guard's in-process cost per edit (check + echo), measured in this run."""
    initial = guard_notebook()
    updates = typing(initial, edits)
    editor = Rights(write=True, protected=frozenset(LOCKED))
    return {"unguarded": 1e6 / median_rate(unguarded, initial, updates, 3),
            "owner": 1e6 / median_rate(checked_and_echoed(Rights.full()), initial, updates, 3),
            "editor": 1e6 / median_rate(checked_and_echoed(editor), initial, updates, 3)}


def counted_activity(bench: Bench, expected: dict[str, int], timeout: float = 20,
                     ) -> dict[str, dict[str, Any]]:
    """The service's per-member totals, once the server's tally has been flushed (every 5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = bench.activity()
        if all(rows.get(user, {}).get("edit", 0) >= n for user, n in expected.items()):
            return rows
        if time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


# -- the report --------------------------------------------------------------


def report(args: argparse.Namespace, samples: dict[tuple[int, str], Samples],
           memory: dict[str, list[tuple[float, float]]], notes: list[str],
           activity: dict[str, dict[str, Any]],
           expected: dict[str, int], guard: dict[str, float]) -> None:
    print(f"== room: stock ({STOCK}: jupyter-collaboration alone) vs guarded ({GUARDED}: with hub_rtc), "
          f"through the proxy")
    print(f"   {CELLS}-cell notebook, same edit stream on both; medians of {args.rounds} interleaved "
          f"rounds; {args.edits} edits per throughput run, {args.latency_edits} per latency run, "
          f"{args.rooms} rooms per memory run")
    for note in notes:
        print(f"   check: {note}")
    print(f"  {'scenario / measure':<42} {'stock':>9} {'guarded':>9}   guarded vs stock")
    aims = []
    for s, (label, _) in enumerate(SCENARIOS):
        st, gu = samples[s, STOCK], samples[s, GUARDED]
        baseline = "  (stock: a third owner client sends, the like-for-like baseline)"
        print(f"  {label}{baseline if s else ''}")
        ratio = median(gu.rate) / median(st.rate)
        rates = median(st.rate), median(gu.rate)
        # each round's guarded ÷ stock, from the same round: the spread noise leaves
        per_round = [g / t for g, t in zip(gu.rate, st.rate, strict=True)]
        print(f"    {'throughput, edits/s':<40} {rates[0]:>9,.0f} {rates[1]:>9,.0f}   {ratio:.2f}x"
              f" (rounds {min(per_round):.2f}-{max(per_round):.2f}x)")
        for name, attr in (("latency p50, ms", "p50"), ("latency p99, ms", "p99")):
            a, b = median(getattr(st, attr)), median(getattr(gu, attr))
            print(f"    {name:<40} {a:>9.2f} {b:>9.2f}   {b - a:+.2f} ms")
        dp50 = median(gu.p50) - median(st.p50)
        for which, name in enumerate(("server", "proxy", "clients (this process)", "server, until quiet")):
            a, b = st.cpu_us(which), gu.cpu_us(which)
            times = f" ({b / a:.2f}x)" if a > 0 else ""
            print(f"    {'CPU per edit, µs, ' + name:<40} {a:>9.0f} {b:>9.0f}   {b - a:+.0f} µs{times}")
        cpu = gu.cpu_us(3) / st.cpu_us(3) if st.cpu_us(3) > 0 else float("nan")
        aims.append(f"{label}: {ratio:.2f}x, lowest round {min(per_round):.2f}x "
                    f"{met(min(per_round) >= 1.0)}, server CPU until quiet {cpu:.2f}x "
                    f"{met(cpu <= 0.5)}, p50 {dp50:+.2f} ms")
    memory_ratio = float("nan")
    for which, name in enumerate(("opened", "after an edit (mirror held)")):
        kib = (median([m[which] for m in memory[STOCK]]), median([m[which] for m in memory[GUARDED]]))
        relative = f" ({kib[1] / kib[0]:.2f}x)" if kib[0] > 0 else ""
        memory_ratio = kib[1] / kib[0] if which == 0 and kib[0] > 0 else memory_ratio
        print(f"  {'memory per room, KiB RSS, ' + name:<44} {kib[0]:>9.0f} {kib[1]:>9.0f}   "
              f"{kib[1] - kib[0]:+.0f} KiB{relative}")
    print(f"  aim (memory per open room <= 1.0x stock): {memory_ratio:.2f}x {met(memory_ratio <= 1.0)}; "
          f"a room that is being edited holds the guard's mirror until "
          f"{GUARD_IDLE_SECONDS:.0f} s after its last edit")
    print(f"  aim (throughput >= 1.0x stock in every round, server CPU per edit <= 0.5x stock): "
          f"{'; '.join(aims)}")
    print(f"  guard in process (bench_guard's check + echo, now): owner {guard['owner']:.0f} µs/edit, "
          f"editor {guard['editor']:.0f} µs/edit; Doc.apply_update alone {guard['unguarded']:.1f} µs")
    counted = "; ".join(
        f"{user} {activity.get(user, {}).get('edit', 0)} edits (sent {n}), "
        f"{activity.get(user, {}).get('refused', 0)} refused"
        + (" (1 expected: the locked-cell check)" if user == EDITOR else " (0 expected)")
        for user, n in expected.items())
    print(f"  counted by the guarded server (service activity): {counted}")
    print(f"  what limits it: {limits(samples, guard)}")


def limits(samples: dict[tuple[int, str], Samples], guard: dict[str, float]) -> str:
    """One sentence from the numbers: which process sets the pace, and what the guard adds to it."""
    def ratio(s: int) -> float:
        return median(samples[s, GUARDED].rate) / median(samples[s, STOCK].rate)

    s = min(range(len(SCENARIOS)), key=ratio)  # the scenario furthest from the aim
    st, gu = samples[s, STOCK], samples[s, GUARDED]
    server, proxy, clients, until_quiet = (st.cpu_us(i) for i in range(4))
    extra = gu.cpu_us(0) - server
    wall = 1e6 / median(st.rate)
    cores = len(os.sched_getaffinity(0))
    if server / wall >= 0.75:
        why = "the server's event loop sets the pace"
        predicted = server / max(server + extra, 1e-9)
    elif (server + proxy + clients) / wall >= 0.75 * cores:
        why = f"the {cores} cores are full"
        predicted = (server + proxy + clients) / max(sum(gu.cpu_us(i) for i in range(3)), 1e-9)
    else:
        why = "no process is saturated: round trips set the pace"
        predicted = (server + proxy + clients) / max(sum(gu.cpu_us(i) for i in range(3)), 1e-9)
    return (f"{SCENARIOS[s][0]}: on stock the server spends {server:.0f} µs CPU per edit while "
            f"delivering ({server / wall:.0%} of the {wall:.0f} µs of wall time per edit; proxy "
            f"{proxy:.0f}, clients {clients:.0f}) and {until_quiet - server:.0f} µs more after, so {why}; "
            f"the guarded server spends {extra:+.0f} µs per edit more while delivering, against "
            f"{guard['editor' if s else 'owner']:.0f} µs for the guard's check + echo in process -> "
            f"predicted {predicted:.2f}x, measured {ratio(s):.2f}x; for 0.9x the guarded room may add at "
            f"most {server / 9:.0f} µs per edit to the server")


# -- main --------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    full = {"rounds": 5, "edits": 1000, "latency_edits": 300, "rooms": 10}
    quick = {"rounds": 2, "edits": 200, "latency_edits": 50, "rooms": 3}
    parser.add_argument("--rounds", type=int,
                        help=f"interleaved rounds; medians are printed ({full['rounds']})")
    parser.add_argument("--edits", type=int, help=f"one-character edits per throughput run ({full['edits']})")
    parser.add_argument("--latency-edits", type=int,
                        help=f"single edits per latency run ({full['latency_edits']})")
    parser.add_argument("--rooms", type=int, help=f"rooms opened per memory run ({full['rooms']})")
    args = options(parser, full, quick)
    with local_hub("bench_room-", lambda workdir: hub_config(workdir, stock=(STOCK,)), SERVERS) as hub:
        bench = Bench(hub)
        bench.start_servers()
        memory_paths = [[f"{ROOT}/mem-{r}-{k}.ipynb" for k in range(args.rooms)] for r in range(args.rounds)]
        bench.create_notebooks([NOTEBOOK] + [p for paths in memory_paths for p in paths])
        bench.create_session()
        samples, memory, notes = asyncio.run(run(bench, args, memory_paths))
        sent = args.rounds * (args.edits + args.latency_edits)
        expected = {GUARDED: sent, EDITOR: sent}
        activity = counted_activity(bench, expected)
        guard = guard_cost_us(args.edits)
        report(args, samples, memory, notes, activity, expected, guard)


if __name__ == "__main__":
    main()
