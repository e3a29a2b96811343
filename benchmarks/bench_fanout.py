"""Fan-out: one sender, many receivers, stock room vs guarded room; and a lecture hall.

The same hub as ``bench_room``: ``sam``'s server runs jupyter-collaboration
alone, ``olive``'s runs it with hub_rtc and hosts a session in which ``ed`` is
an editor.  On each, per scenario, one client of the owner types into a 50-cell
notebook of its own (one room per number of receivers: every client of a room
receives every edit) and N listeners read the room (on the guarded server they are ed's: every
socket is a collaborator's, checked and pinned).  A listener keeps no
document: it answers the room's sync with an empty state and looks for each
edit's unique text in the frames it receives, so that 300 of them fit in this
process.  Rounds alternate which server goes first; medians over the rounds,
with the spread of the per-round ratio, are printed.

Scenarios:

- **receivers** (1, 10, 50, 100, 300; presence off): edits sent as fast as the
  websocket takes them, timed until every listener has the last; server CPU
  per update per receiver.
- **presence on** (50 receivers): the same while every listener moves its
  cursor (an awareness update) every ``--presence-seconds``.
- **lecture** (300 viewers, presence on): the owner types 20 edits/s for
  ``--lecture-seconds``; the delay from each edit's send until each viewer has
  it, p50 and p99, and what each viewer received per second.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pycrdt import Doc, Encoder, create_awareness_message, create_sync_message
from tornado.websocket import WebSocketClientConnection

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from harness import (  # noqa: E402
    EDITOR,
    ROOT,
    cpu_seconds,
    create_notebooks,
    host_session,
    hub_config,
    interleaved,
    local_hub,
    median,
    met,
    options,
    percentile,
    proxy_pid,
    quiet,
    retried,
    start_servers,
)

from hub_rtc.localhub import LocalHub  # noqa: E402
from tests.integration.yclient import YClient, close_socket, notebook_socket  # noqa: E402

STOCK, GUARDED = "sam", "olive"
SERVERS = (STOCK, GUARDED)
CELL = "cell-7"


class Listener:
    """A room socket that keeps no document: it notes when each awaited text arrives
    and counts what it receives."""

    def __init__(self, ws: WebSocketClientConnection) -> None:
        self.ws = ws
        self.client_id = random.getrandbits(31)
        self.clock = 0
        self.frames = 0
        self.awareness = 0
        self._waits: dict[bytes, asyncio.Future[float]] = {}
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, hub: LocalHub, server: str, token: str, path: str) -> Listener:
        listener = cls(await notebook_socket(hub.url, server, path, token))
        await listener.ws.write_message(create_sync_message(Doc()), binary=True)
        return listener

    async def _read(self) -> None:
        while (message := await self.ws.read_message()) is not None:
            assert isinstance(message, bytes)
            self.frames += 1
            if message[0] == 1:
                self.awareness += 1
            elif self._waits:
                now = time.perf_counter()
                for marker in [m for m in self._waits if m in message]:
                    self._waits.pop(marker).set_result(now)

    def forget(self) -> None:
        """Stop waiting for what has not come."""
        self._waits.clear()

    def expect(self, marker: bytes) -> asyncio.Future[float]:
        future = self._waits[marker] = asyncio.get_running_loop().create_future()
        return future

    async def move(self) -> None:
        """An awareness update: this listener's cursor moved."""
        self.clock += 1
        state = f'{{"user":{{"name":"listener"}},"cursor":{self.clock}}}'
        encoder = Encoder()
        for value in (1, self.client_id, self.clock):
            encoder.write_var_uint(value)
        encoder.write_var_string(state)
        await self.ws.write_message(create_awareness_message(encoder.to_bytes()), binary=True)

    def close(self) -> None:
        close_socket(self.ws)
        self._reader.cancel()


@dataclass
class Run:
    rate: list[float] = field(default_factory=list)  # edits/s delivered to every receiver
    server_us: list[float] = field(default_factory=list)  # server CPU per update per receiver
    proxy_us: list[float] = field(default_factory=list)
    client_us: list[float] = field(default_factory=list)  # this process, per update per receiver
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    awareness_per_s: list[float] = field(default_factory=list)  # per receiver
    lost: list[float] = field(default_factory=list)  # share of edits a viewer never got


class Room:
    """One server's sender and listeners."""

    def __init__(self, sender: YClient, listeners: list[Listener]) -> None:
        self.sender = sender
        self.listeners = listeners
        self.typed = 0

    def marker(self) -> str:
        self.typed += 1
        return f"[{self.typed:06d}]"


async def moving(listeners: list[Listener], every: float, stop: asyncio.Event) -> None:
    """Each listener moves its cursor every ``every`` seconds (spread out) until ``stop``."""
    step = every / max(len(listeners), 1)
    while not stop.is_set():
        for listener in listeners:
            if stop.is_set():
                return
            await listener.move()
            await asyncio.sleep(step)


async def burst(room: Room, receivers: list[Listener], edits: int, pids: list[int],
                busy: list[int], presence: float | None) -> tuple[float, list[float]]:
    """``edits`` sent as fast as the socket takes them; edits/s until every receiver
    has the last, and CPU per update per receiver (server, proxy, this process)."""
    stop = asyncio.Event()
    mover = asyncio.ensure_future(moving(receivers, presence, stop)) if presence else None
    if mover:
        await asyncio.sleep(presence or 0)  # presence is flowing before the edits start
    text = room.sender.text(CELL)
    markers = [room.marker() for _ in range(edits)]
    arrived = [r.expect(markers[-1].encode()) for r in receivers]
    before = [cpu_seconds(pid) for pid in pids] + [time.process_time()]
    start = time.perf_counter()
    for marker in markers:
        await room.sender.type(text, marker, at=0)
    await asyncio.wait_for(asyncio.gather(*arrived), 120)
    elapsed = time.perf_counter() - start
    during = [cpu_seconds(pid) for pid in pids] + [time.process_time()]
    stop.set()
    if mover:
        await mover
    await quiet(busy)
    per = edits * len(receivers)
    return edits / elapsed, [(b - a) / per * 1e6 for a, b in zip(before, during, strict=True)]


#: a lecture's edit that has not reached a viewer this long after the last was sent
#: counts as never delivered (its delay is infinite in the percentiles)
GIVE_UP_SECONDS = 20.0


async def lecture(room: Room, viewers: list[Listener], seconds: float, rate: float,
                  presence: float, pids: list[int]) -> tuple[list[float], float, list[float]]:
    """The owner types ``rate`` edits/s for ``seconds`` while every viewer moves its cursor
    every ``presence`` s: each edit's delay to each viewer (ms; inf if it never came), the
    awareness frames each viewer received per second, and the cores each of ``pids`` and
    this process used meanwhile."""
    stop = asyncio.Event()
    mover = asyncio.ensure_future(moving(viewers, presence, stop))
    await asyncio.sleep(presence)
    text = room.sender.text(CELL)
    awareness_before = sum(v.awareness for v in viewers)
    sent: list[tuple[float, list[asyncio.Future[float]]]] = []
    cpu_before = [cpu_seconds(pid) for pid in pids] + [time.process_time()]
    start = time.perf_counter()
    for n in range(int(seconds * rate)):
        marker = room.marker().encode()
        arrivals = [v.expect(marker) for v in viewers]
        sent.append((time.perf_counter(), arrivals))
        await room.sender.type(text, marker.decode(), at=0)
        await asyncio.sleep(max(0.0, start + (n + 1) / rate - time.perf_counter()))
    everything = [f for _, arrivals in sent for f in arrivals]
    await asyncio.wait(everything, timeout=GIVE_UP_SECONDS)
    elapsed = time.perf_counter() - start
    cores = [(b - a) / elapsed for a, b in zip(
        cpu_before, [cpu_seconds(pid) for pid in pids] + [time.process_time()], strict=True)]
    stop.set()
    await mover
    received = (sum(v.awareness for v in viewers) - awareness_before) / len(viewers) / elapsed
    delays = [(f.result() - at) * 1000 if f.done() else float("inf")
              for at, arrivals in sent for f in arrivals]
    for f in everything:
        f.cancel()
    for v in viewers:
        v.forget()
    return delays, received, cores


def sizes(args: argparse.Namespace) -> list[int]:
    """The rooms' numbers of listeners."""
    return sorted({*args.receivers, args.presence_receivers, args.viewers})


def notebook_for(size: int) -> str:
    return f"{ROOT}/fan-{size}.ipynb"


async def run(hub: LocalHub, tokens: dict[str, str], pids: dict[str, int],
              args: argparse.Namespace) -> dict[tuple[str, str], Run]:
    # One room per size: every client of a room receives every edit, so a scenario's
    # receivers must be all the room has.
    rooms: dict[tuple[str, int], Room] = {}
    for server in SERVERS:
        user = server if server == STOCK else EDITOR
        for size in sizes(args):
            path = notebook_for(size)
            sender = await YClient.connect(hub.url, server, path, tokens[server], timeout=30)
            listeners = []
            for _ in range(size):
                listeners.append(await retried(
                    lambda s=server, u=user, p=path: Listener.connect(hub, s, tokens[u], p)))
            rooms[server, size] = Room(sender, listeners)
        print(f"  {server}: rooms of {', '.join(map(str, sizes(args)))} listeners connected",
              file=sys.stderr, flush=True)
    proxy = proxy_pid(hub)
    busy = [pids[s] for s in SERVERS] + [proxy]
    results: dict[tuple[str, str], Run] = {}
    scenarios = [(f"{n} receivers", n, None) for n in args.receivers]
    scenarios.append((f"{args.presence_receivers} receivers, presence on", args.presence_receivers,
                      args.presence_seconds))
    try:
        for r in range(args.rounds):
            for label, n, presence in scenarios:
                edits = max(20, args.edits * 10 // max(n, 10))
                for server in interleaved(r, SERVERS):
                    room = rooms[server, n]
                    await quiet(busy)
                    rate, cpu = await burst(room, room.listeners, edits, [pids[server], proxy],
                                            busy, presence)
                    out = results.setdefault((label, server), Run())
                    out.rate.append(rate)
                    out.server_us.append(cpu[0])
                    out.proxy_us.append(cpu[1])
                    out.client_us.append(cpu[2])
            print(f"  round {r + 1}/{args.rounds}: bursts done", file=sys.stderr, flush=True)
        # The lectures last: stock's backlog after one can outlast any wait for quiet.
        for r in range(args.rounds):
            for server in interleaved(r, SERVERS):
                room = rooms[server, args.viewers]
                await quiet(busy, timeout=120)
                ms, received, cores = await lecture(room, room.listeners,
                                                    args.lecture_seconds, 20.0,
                                                    args.presence_seconds, [pids[server], proxy])
                out = results.setdefault(("lecture", server), Run())
                out.p50.append(percentile(ms, 50))
                out.p99.append(percentile(ms, 99))
                out.lost.append(sum(1 for d in ms if d == float("inf")) / len(ms))
                out.awareness_per_s.append(received)
                out.server_us.append(cores[0])
                out.proxy_us.append(cores[1])
                out.client_us.append(cores[2])
            print(f"  lecture round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        for room in rooms.values():
            room.sender.close()
            for listener in room.listeners:
                listener.close()
    return results


def spread(gu: list[float], st: list[float]) -> str:
    ratios = [g / s for g, s in zip(gu, st, strict=True) if s]
    return f"{median(ratios):.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}x)" if ratios else "n/a"


def report(args: argparse.Namespace, results: dict[tuple[str, str], Run]) -> None:
    print(f"== fan-out: stock ({STOCK}) vs guarded ({GUARDED}: listeners are ed's), through the proxy;"
          f" medians of {args.rounds} interleaved rounds")
    print(f"  {'scenario / measure':<46} {'stock':>9} {'guarded':>9}   guarded vs stock")
    aims = []
    for (label, server), _ in results.items():
        if server != STOCK or label == "lecture":
            continue
        st, gu = results[label, STOCK], results[label, GUARDED]
        print(f"  {label}")
        print(f"    {'edits/s delivered to every receiver':<44} {median(st.rate):>9,.0f} "
              f"{median(gu.rate):>9,.0f}   {spread(gu.rate, st.rate)}")
        for name, attr in (("server", "server_us"), ("proxy", "proxy_us"),
                           ("clients (this process)", "client_us")):
            a, b = median(getattr(st, attr)), median(getattr(gu, attr))
            print(f"    {'CPU per update per receiver, µs, ' + name:<44} {a:>9.1f} {b:>9.1f}   "
                  f"{spread(getattr(gu, attr), getattr(st, attr))}")
        if label.startswith("50 receivers"):
            lowest = min(g / s for g, s in zip(gu.rate, st.rate, strict=True))
            aims.append(f"{label}: lowest round {lowest:.2f}x {met(lowest >= 1.0)}, server "
                        f"{median(gu.server_us):.1f} µs per update per receiver "
                        f"{met(median(gu.server_us) <= 20)}")
    st, gu = results["lecture", STOCK], results["lecture", GUARDED]
    print(f"  lecture: {args.viewers} viewers moving their cursors every {args.presence_seconds} s, "
          f"the owner typing 20 edits/s for {args.lecture_seconds} s")
    for name, attr in (("edit delay p50, ms", "p50"), ("edit delay p99, ms", "p99"),
                       (f"edits not delivered in {GIVE_UP_SECONDS:g} s, share", "lost"),
                       ("awareness frames per viewer per s", "awareness_per_s"),
                       ("cores used, server", "server_us"), ("cores used, proxy", "proxy_us"),
                       ("cores used, clients (this process)", "client_us")):
        print(f"    {name:<44} {median(getattr(st, attr)):>9.2f} {median(getattr(gu, attr)):>9.2f}")
    aims.append(f"lecture p99 {median(gu.p99):.0f} ms {met(median(gu.p99) < 100)}")
    print(f"  aims: {'; '.join(aims)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    full = {"rounds": 3, "edits": 300, "viewers": 300, "lecture_seconds": 10, "presence_receivers": 50}
    quick = {"rounds": 1, "edits": 100, "viewers": 50, "lecture_seconds": 3, "presence_receivers": 10}
    parser.add_argument("--rounds", type=int, help=f"interleaved rounds ({full['rounds']})")
    parser.add_argument("--edits", type=int,
                        help=f"edits per burst at 10 receivers, fewer for more ({full['edits']})")
    parser.add_argument("--viewers", type=int, help=f"viewers in the lecture ({full['viewers']})")
    parser.add_argument("--lecture-seconds", type=int,
                        help=f"how long the lecture types ({full['lecture_seconds']})")
    parser.add_argument("--presence-receivers", type=int,
                        help=f"receivers in the presence-on burst ({full['presence_receivers']})")
    parser.add_argument("--presence-seconds", type=float, default=1.0,
                        help="how often each listener moves its cursor with presence on (1.0)")
    parser.add_argument("--receivers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 10, 50, 100, 300], help="receiver counts (1,10,50,100,300)")
    args = options(parser, full, quick)
    if args.quick:
        args.receivers = [n for n in args.receivers if n <= 50]
    with local_hub("bench_fanout-", lambda workdir: hub_config(workdir, stock=(STOCK,)), SERVERS) as hub:
        tokens = {name: hub.user_token(name) for name in (STOCK, GUARDED, EDITOR)}
        pids = start_servers(hub, SERVERS)
        for server in SERVERS:
            create_notebooks(hub, server, tokens[server], [notebook_for(n) for n in sizes(args)])
        host_session(hub, tokens[GUARDED], time.monotonic() + 60)
        report(args, asyncio.run(run(hub, tokens, pids, args)))


if __name__ == "__main__":
    main()
