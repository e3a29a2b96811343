"""Direct vs relayed clients of one guarded room, side by side, end to end.

One local hub with its proxy and the hub_rtc service; olive's server runs
jupyter-collaboration with hub_rtc and hosts a session in which ``ed`` is an
editor.  The same 50-cell notebook, the same edit stream, for 2, 10 and 100
clients of ed's on one room, either all **direct** (proxy -> server, as
JupyterLab connects) or all **relayed** (proxy -> service relay -> proxy ->
server, as a script connects to ``/services/rtc/api/v1/sessions/{id}/rooms/…``;
with ``--route direct`` the service skips the proxy on its way to the server).

In each run client 0 types and the last client connected is the receiver, which
keeps a replica: the edits have arrived when its copy of the cell holds them
(the room sends the updates it commits together as one frame, so frames are
not edits).  The others read everything, as live clients do.  Measures: throughput (one-character
edits sent as fast as the websocket takes them, timed until the receiver has
them all), latency (one edit at a time until the receiver has it; p50, p99),
and memory: the service's RSS per relayed client and the server's RSS per room
connection (what one upstream per client costs there, against one shared per
room).  Rounds alternate which mode goes first; medians over rounds are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from harness import (  # noqa: E402
    CELLS,
    EDITOR,
    NOTEBOOK,
    cpu_seconds,
    create_notebooks,
    host_session,
    hub_config,
    interleaved,
    local_hub,
    median,
    met,
    one,
    options,
    percentile,
    processes,
    proxy_pid,
    quiet,
    retried,
    round_trips,
    rss_kib,
    send_burst,
    start_servers,
)

from hub_rtc.localhub import LocalHub  # noqa: E402
from tests.integration.yclient import YClient, notebook_socket  # noqa: E402

OWNER = "olive"
MODES = ("direct", "relayed")
#: tornado's limit on one incoming message, raised above its 10 MiB default
MAX_MESSAGE = 1 << 28


# -- the hub -------------------------------------------------------------------


class Bench:
    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub
        self.tokens = {name: hub.user_token(name) for name in (OWNER, EDITOR)}
        self.session_id = ""
        self.server_pid = 0
        self.service_pid = 0
        self.proxy_pid = 0

    def start(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        self.server_pid = start_servers(self.hub, (OWNER,), timeout)[OWNER]
        self.service_pid = one(processes(self.hub.workdir, "hub_rtc serve"), "service")
        self.proxy_pid = proxy_pid(self.hub)
        create_notebooks(self.hub, OWNER, self.tokens[OWNER], [NOTEBOOK])
        self.session_id = host_session(self.hub, self.tokens[OWNER], deadline)

    @property
    def busy(self) -> list[int]:
        return [self.server_pid, self.service_pid, self.proxy_pid]


# -- clients ---------------------------------------------------------------------


async def open_direct(bench: Bench) -> WebSocketClientConnection:
    return await notebook_socket(bench.hub.url, OWNER, NOTEBOOK, bench.tokens[EDITOR], MAX_MESSAGE)


async def open_relayed(bench: Bench) -> WebSocketClientConnection:
    url = (bench.hub.url.replace("http", "ws", 1)
           + f"/services/rtc/api/v1/sessions/{bench.session_id}/rooms/nb.ipynb")
    return await websocket_connect(HTTPRequest(url, headers={
        "Authorization": f"token {bench.tokens[EDITOR]}"}), max_message_size=MAX_MESSAGE)


OPENERS: dict[str, Callable[[Bench], Awaitable[WebSocketClientConnection]]] = {
    "direct": open_direct, "relayed": open_relayed}


async def connect(bench: Bench, mode: str, n: int, timeout: float = 120) -> list[YClient]:
    """``n`` synced clients of ed's; the first keeps a replica to type into and the last
    one to read the edits from (a room merges the updates it commits together into one
    frame, so frames cannot be counted as edits); the others only count the frames
    they receive."""
    clients: list[YClient] = []
    for i in range(0, n, 10):  # ten at a time: the server opens sessions one by one anyway
        sockets = await asyncio.gather(*(retried(lambda: OPENERS[mode](bench), timeout=15)
                                         for _ in range(i, min(n, i + 10))))
        clients += [YClient(ws, replica=(i + k in (0, n - 1))) for k, ws in enumerate(sockets)]
    for client in clients:
        await client.hello()
    await asyncio.wait_for(asyncio.gather(*(c.synced.wait() for c in clients)), timeout)
    return clients


# -- measures ------------------------------------------------------------------


def grown(rx: YClient, cell: str, by: int) -> asyncio.Future[None]:
    """Done once ``rx``'s copy of ``cell`` holds ``by`` more characters than now."""
    text = rx.text(cell)
    length = len(text) + by
    return rx.when(lambda: len(text) >= length)


async def throughput(tx: YClient, rx: YClient, cell: str, edits: int) -> float:
    """Edits/s from the first send until ``rx`` has all of them."""
    elapsed = await send_burst(tx, tx.text(cell), edits, grown(rx, cell, edits), 300)
    return edits / elapsed


async def latencies(tx: YClient, rx: YClient, cell: str, edits: int) -> list[float]:
    """Milliseconds from each single edit until ``rx`` has it."""
    return await round_trips(tx, tx.text(cell), edits, lambda: grown(rx, cell, 1))


@dataclass
class Samples:
    rate: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    #: CPU seconds per edit of the service and the proxy during the throughput runs
    service_cpu: list[float] = field(default_factory=list)
    proxy_cpu: list[float] = field(default_factory=list)
    #: the service's CPU seconds per edit per client in the latency runs, where every
    #: edit is one frame to each client (a low-noise figure: CPU, not wall time)
    frame_cpu: list[float] = field(default_factory=list)


@dataclass
class Memory:
    #: KiB of service RSS per relayed client
    service: list[float] = field(default_factory=list)
    #: KiB of server RSS per room connection (relayed clients each hold one upstream)
    server: list[float] = field(default_factory=list)


async def measure(bench: Bench, mode: str, n: int, args: argparse.Namespace, cells: tuple[str, str],
                  samples: Samples, memory: Memory) -> None:
    await quiet(bench.busy)
    before = (rss_kib(bench.service_pid), rss_kib(bench.server_pid))
    clients = await connect(bench, mode, n)
    try:
        await quiet(bench.busy)
        if mode == "relayed":
            memory.service.append((rss_kib(bench.service_pid) - before[0]) / n)
            memory.server.append((rss_kib(bench.server_pid) - before[1]) / n)
        tx, rx = clients[0], clients[-1]
        cpu = (cpu_seconds(bench.service_pid), cpu_seconds(bench.proxy_pid))
        samples.rate.append(await throughput(tx, rx, cells[0], args.edits))
        samples.service_cpu.append((cpu_seconds(bench.service_pid) - cpu[0]) / args.edits)
        samples.proxy_cpu.append((cpu_seconds(bench.proxy_pid) - cpu[1]) / args.edits)
        await quiet(bench.busy)
        service = cpu_seconds(bench.service_pid)
        ms = await latencies(tx, rx, cells[1], args.latency_edits)
        samples.frame_cpu.append((cpu_seconds(bench.service_pid) - service) / args.latency_edits / n)
        samples.p50.append(percentile(ms, 50))
        samples.p99.append(percentile(ms, 99))
        # every client has every edit: nothing was dropped on the way
        await asyncio.wait_for(asyncio.gather(*(c.seen(rx.updates) for c in clients[1:])), 60)
    finally:
        for client in clients:
            client.close()
    await asyncio.sleep(0.5)  # the closes reach the server before the next run connects


async def run(bench: Bench, args: argparse.Namespace,
              ) -> tuple[dict[tuple[int, str], Samples], dict[int, Memory]]:
    samples = {(n, mode): Samples() for n in args.clients for mode in MODES}
    memory = {n: Memory() for n in args.clients}
    free = [f"cell-{i}" for i in range(CELLS)]
    for r in range(args.rounds):
        for k, n in enumerate(args.clients):
            cells = (free[(6 * r + 2 * k) % CELLS], free[(6 * r + 2 * k + 1) % CELLS])
            for mode in interleaved(r, MODES):
                await measure(bench, mode, n, args, cells, samples[n, mode], memory[n])
            d, rl = samples[n, "direct"], samples[n, "relayed"]
            print(f"  round {r + 1}/{args.rounds}, {n} clients: direct {d.rate[-1]:,.0f} vs relayed "
                  f"{rl.rate[-1]:,.0f} edits/s; p50 {d.p50[-1]:.2f} vs {rl.p50[-1]:.2f} ms",
                  file=sys.stderr, flush=True)
    return samples, memory


# -- report ----------------------------------------------------------------------


def report(args: argparse.Namespace, samples: dict[tuple[int, str], Samples],
           memory: dict[int, Memory]) -> None:
    route = "proxy -> service -> proxy -> server" if args.route == "proxy" else "proxy -> service -> server"
    print(f"== relay: ed's clients of one guarded room, direct (proxy -> server) vs relayed ({route}, "
          f"relay_route = {args.route!r})")
    print(f"   {CELLS}-cell notebook; medians of {args.rounds} interleaved rounds; {args.edits} edits per "
          f"throughput run, {args.latency_edits} per latency run; {os.cpu_count()} cores shared by "
          "the hub, proxy, server, service and these clients")
    print(f"  {'clients':>7}  {'direct /s':>10} {'relayed /s':>10} {'ratio':>6}   "
          f"{'p50 d/r ms':>13} {'+p50':>7}   {'p99 d/r ms':>13} {'+p99':>7}   "
          f"{'svc µs/edit':>11} {'µs/frame':>8} {'proxy µs d/r':>13}")
    aims = []
    for n in args.clients:
        d, r = samples[n, "direct"], samples[n, "relayed"]
        ratio = median(r.rate) / median(d.rate)
        dp50, dp99 = median(r.p50) - median(d.p50), median(r.p99) - median(d.p99)
        print(f"  {n:>7}  {median(d.rate):>10,.0f} {median(r.rate):>10,.0f} {ratio:>5.2f}x   "
              f"{median(d.p50):>6.2f}/{median(r.p50):<6.2f} {dp50:>+7.2f}   "
              f"{median(d.p99):>6.2f}/{median(r.p99):<6.2f} {dp99:>+7.2f}   "
              f"{median(r.service_cpu) * 1e6:>11.0f} {median(r.frame_cpu) * 1e6:>8.1f} "
              f"{median(d.proxy_cpu) * 1e6:>6.0f}/{median(r.proxy_cpu) * 1e6:<6.0f}")
        aims.append(f"{n}: {ratio:.2f}x {met(ratio >= 0.9)}, +{dp50:.2f} ms {met(dp50 < 1.0)}")
    print("  (svc µs/edit: the service's CPU per edit while relaying to every client; µs/frame: its CPU "
          "per edit per client one edit at a time; proxy: configurable-http-proxy's, direct/relayed)")
    for n in args.clients:
        m = memory[n]
        print(f"  memory with {n:>3} relayed clients: service {median(m.service):6.1f} KiB RSS per client; "
              f"server {median(m.server):6.1f} KiB RSS per upstream connection")
    print(f"  aim (relayed >= 0.9x direct throughput, < 1 ms added at p50): {'; '.join(aims)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    full = {"rounds": 3, "edits": 500, "latency_edits": 200}
    quick = {"rounds": 1, "edits": 100, "latency_edits": 30}
    parser.add_argument("--rounds", type=int, help=f"interleaved rounds ({full['rounds']})")
    parser.add_argument("--edits", type=int, help=f"edits per throughput run ({full['edits']})")
    parser.add_argument("--latency-edits", type=int, help=f"edits per latency run ({full['latency_edits']})")
    parser.add_argument("--clients", type=int, nargs="+", default=[2, 10, 100],
                        help="client counts on the room, 2 or more (2 10 100)")
    parser.add_argument("--route", choices=["proxy", "direct"], default="proxy",
                        help="c.RTCService.relay_route: how the relay reaches the server (proxy)")
    args = options(parser, full, quick)
    if min(args.clients) < 2:
        # the room merges the updates it commits together into one frame, so one
        # client's echo of its own edits says nothing about when they all arrived
        parser.error("--clients: a room needs a sender and a receiver (2 or more)")

    def config(workdir: Path) -> str:
        return hub_config(workdir) + f"c.RTCService.relay_route = {args.route!r}\n"

    with local_hub("bench_relay-", config, (OWNER,)) as hub:
        bench = Bench(hub)
        bench.start()
        samples, memory = asyncio.run(run(bench, args))
        report(args, samples, memory)


if __name__ == "__main__":
    main()
