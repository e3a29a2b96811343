"""Direct vs relayed clients of one guarded room, side by side, end to end.

One local hub with its proxy and the hub_rtc service; olive's server runs
jupyter-collaboration with hub_rtc and hosts a session in which ``ed`` is an
editor.  The same 50-cell notebook, the same edit stream, for 1, 10 and 100
clients of ed's on one room, either all **direct** (proxy -> server, as
JupyterLab connects) or all **relayed** (proxy -> service relay -> proxy ->
server, as a script connects to ``/services/rtc/api/v1/sessions/{id}/rooms/…``;
with ``--route direct`` the service skips the proxy on its way to the server).

In each run client 0 types and the last client connected is the receiver (with
one client, the sender receives the room's echo of its own edits); the others
read everything, as live clients do.  Measures: throughput (one-character
edits sent as fast as the websocket takes them, timed until the receiver has
them all), latency (one edit at a time until the receiver has it; p50, p99),
and memory: the service's RSS per relayed client and the server's RSS per room
connection (what one upstream per client costs there, against one shared per
room).  Rounds alternate which mode goes first; medians over rounds are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from pycrdt import Array, Doc, Text, create_sync_message, create_update_message
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from bench_room import (  # noqa: E402
    CELLS,
    KEYS,
    NOTEBOOK,
    ROOT,
    cpu_seconds,
    host_session,
    notebook_json,
    one,
    percentile,
    processes,
    quiet,
    rss_kib,
    shutdown,
)

from hub_rtc.guard.frames import client_receive_sync  # noqa: E402
from hub_rtc.localhub import LocalHub  # noqa: E402

OWNER, EDITOR = "olive", "ed"
MODES = ("direct", "relayed")
UPDATE = b"\x00\x02"


# -- the hub -------------------------------------------------------------------


class Bench:
    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub
        self.home = hub.workdir / "home"
        self.tokens = {name: hub.user_token(name) for name in (OWNER, EDITOR)}
        self.session_id = ""
        self.server_pid = 0
        self.service_pid = 0
        self.proxy_pid = 0

    def start(self, timeout: float = 90) -> None:
        self.hub.api("POST", f"/hub/api/users/{OWNER}/server")
        deadline = time.monotonic() + timeout
        while not ((self.hub.api("GET", f"/hub/api/users/{OWNER}")[1] or {}).get("servers") or {}
                   ).get("", {}).get("ready"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{OWNER}'s server not ready in {timeout}s")
            time.sleep(0.3)
        self.server_pid = one(processes(self.home / OWNER, "jupyterhub.singleuser"), "server")
        self.service_pid = one(processes(self.hub.workdir, "hub_rtc serve"), "service")
        self.proxy_pid = one(processes(self.hub.workdir, "configurable-http-proxy"), "proxy")
        for path, body in ((f"api/contents/{ROOT}", {"type": "directory"}),
                           (f"api/contents/{NOTEBOOK}",
                            {"type": "notebook", "format": "json", "content": notebook_json()})):
            status, reply = self.hub.api("PUT", f"/user/{OWNER}/{path}", body, self.tokens[OWNER])
            assert status in (200, 201), (status, reply)
        self.session_id = host_session(self.hub, self.tokens[OWNER], deadline)

    @property
    def busy(self) -> list[int]:
        return [self.server_pid, self.service_pid, self.proxy_pid]


# -- clients ---------------------------------------------------------------------


class Client:
    """One of ed's room clients: keeps a synced replica (if it types) and counts
    the document updates it receives, so waits end on the frame that satisfies them."""

    def __init__(self, ws: WebSocketClientConnection, replica: bool) -> None:
        self.ws = ws
        self.doc: Doc | None = Doc() if replica else None
        self.updates = 0
        self.synced = asyncio.get_running_loop().create_future()
        self._waits: list[tuple[int, asyncio.Future[None]]] = []
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while True:
            message = await self.ws.read_message()
            if message is None:
                for _, future in self._waits:
                    if not future.done():
                        future.set_exception(ConnectionError(f"closed: {self.ws.close_code}"))
                return
            assert isinstance(message, bytes)
            if message[:2] == UPDATE:
                self.updates += 1
                if self._waits:
                    self._wake()
            if message[0] == 0 and self.doc is not None:
                reply, synced = client_receive_sync(message, self.doc)
                if reply is not None:
                    self.ws.write_message(reply, binary=True)
                if synced and not self.synced.done():
                    self.synced.set_result(None)
            elif message[:2] == b"\x00\x01" and not self.synced.done():
                self.synced.set_result(None)  # a reader needs no replica: its first step 2 will do

    def _wake(self) -> None:
        still = []
        for count, future in self._waits:
            if self.updates >= count and not future.done():
                future.set_result(None)
            elif not future.done():
                still.append((count, future))
        self._waits = still

    def seen(self, count: int) -> asyncio.Future[None]:
        """Done once this client has received ``count`` updates in all."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.updates >= count:
            future.set_result(None)
        else:
            self._waits.append((count, future))
        return future

    async def hello(self) -> None:
        doc = self.doc if self.doc is not None else Doc()
        await self.ws.write_message(create_sync_message(doc), binary=True)

    async def type(self, text: Text, key: str) -> None:
        """One insertion, one update frame."""
        assert self.doc is not None
        updates: list[bytes] = []
        subscription = self.doc.observe(lambda event: updates.append(event.update))
        text += key
        self.doc.unobserve(subscription)
        for update in updates:
            await self.ws.write_message(create_update_message(update), binary=True)

    def source(self, cell: str) -> Text:
        assert self.doc is not None
        for item in self.doc.get("cells", type=Array):
            if item.get("id") == cell:
                text = item["source"]
                assert isinstance(text, Text)
                return text
        raise KeyError(cell)

    def close(self) -> None:
        self.ws.close()
        stream = getattr(self.ws.protocol, "stream", None)
        if stream is not None:
            stream.close()
        self._reader.cancel()


async def open_direct(bench: Bench) -> WebSocketClientConnection:
    auth = {"Authorization": f"token {bench.tokens[EDITOR]}"}
    response = await AsyncHTTPClient().fetch(HTTPRequest(
        f"{bench.hub.url}/user/{OWNER}/api/collaboration/session/{quote(NOTEBOOK)}", method="PUT",
        body=json.dumps({"format": "json", "type": "notebook"}), headers=auth))
    session = json.loads(response.body)
    url = (bench.hub.url.replace("http", "ws", 1) + f"/user/{OWNER}/api/collaboration/room/"
           f"json:notebook:{session['fileId']}?sessionId={session['sessionId']}")
    return await websocket_connect(HTTPRequest(url, headers=auth), max_message_size=1 << 28)


async def open_relayed(bench: Bench) -> WebSocketClientConnection:
    url = (bench.hub.url.replace("http", "ws", 1)
           + f"/services/rtc/api/v1/sessions/{bench.session_id}/rooms/nb.ipynb")
    return await websocket_connect(HTTPRequest(url, headers={
        "Authorization": f"token {bench.tokens[EDITOR]}"}), max_message_size=1 << 28)


OPENERS: dict[str, Callable[[Bench], Awaitable[WebSocketClientConnection]]] = {
    "direct": open_direct, "relayed": open_relayed}


async def connect(bench: Bench, mode: str, n: int, timeout: float = 120) -> list[Client]:
    """``n`` synced clients; the first keeps a replica to type into."""
    clients: list[Client] = []
    for i in range(0, n, 10):  # ten at a time: the server opens sessions one by one anyway
        sockets = await asyncio.gather(*(retry(lambda: OPENERS[mode](bench))
                                         for _ in range(i, min(n, i + 10))))
        clients += [Client(ws, replica=(i + k == 0)) for k, ws in enumerate(sockets)]
    for client in clients:
        await client.hello()
    await asyncio.wait_for(asyncio.gather(*(c.synced for c in clients)), timeout)
    return clients


async def retry(open_one: Callable[[], Awaitable[WebSocketClientConnection]], tries: int = 20,
                ) -> WebSocketClientConnection:
    """The hub's share for ed may take a moment after the session is created."""
    for attempt in range(tries):
        try:
            return await open_one()
        except HTTPClientError:
            if attempt == tries - 1:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


# -- measures ------------------------------------------------------------------


async def throughput(tx: Client, rx: Client, cell: str, edits: int) -> float:
    text = tx.source(cell)
    arrived = rx.seen(rx.updates + edits)
    start = time.perf_counter()
    for n in range(edits):
        await tx.type(text, KEYS[n % len(KEYS)])
    await asyncio.wait_for(arrived, 300)
    return edits / (time.perf_counter() - start)


async def latencies(tx: Client, rx: Client, cell: str, edits: int) -> list[float]:
    text = tx.source(cell)
    out = []
    for n in range(edits):
        arrived = rx.seen(rx.updates + 1)
        start = time.perf_counter()
        await tx.type(text, KEYS[n % len(KEYS)])
        await asyncio.wait_for(arrived, 30)
        out.append((time.perf_counter() - start) * 1000)
    return out


@dataclass
class Samples:
    rate: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    #: CPU seconds per edit of the service and the proxy during the throughput runs
    service_cpu: list[float] = field(default_factory=list)
    proxy_cpu: list[float] = field(default_factory=list)


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
        ms = await latencies(tx, rx, cells[1], args.latency_edits)
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
            for mode in MODES if r % 2 == 0 else MODES[::-1]:
                await measure(bench, mode, n, args, cells, samples[n, mode], memory[n])
            d, rl = samples[n, "direct"], samples[n, "relayed"]
            print(f"  round {r + 1}/{args.rounds}, {n} clients: direct {d.rate[-1]:,.0f} vs relayed "
                  f"{rl.rate[-1]:,.0f} edits/s; p50 {d.p50[-1]:.2f} vs {rl.p50[-1]:.2f} ms",
                  file=sys.stderr, flush=True)
    return samples, memory


# -- report ----------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


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
          f"{'svc µs/edit':>11} {'proxy µs d/r':>13}")
    aims = []
    for n in args.clients:
        d, r = samples[n, "direct"], samples[n, "relayed"]
        ratio = med(r.rate) / med(d.rate)
        dp50, dp99 = med(r.p50) - med(d.p50), med(r.p99) - med(d.p99)
        print(f"  {n:>7}  {med(d.rate):>10,.0f} {med(r.rate):>10,.0f} {ratio:>5.2f}x   "
              f"{med(d.p50):>6.2f}/{med(r.p50):<6.2f} {dp50:>+7.2f}   "
              f"{med(d.p99):>6.2f}/{med(r.p99):<6.2f} {dp99:>+7.2f}   "
              f"{med(r.service_cpu) * 1e6:>11.0f} "
              f"{med(d.proxy_cpu) * 1e6:>6.0f}/{med(r.proxy_cpu) * 1e6:<6.0f}")
        aims.append(f"{n}: {ratio:.2f}x {'met' if ratio >= 0.8 else 'MISSED'}, "
                    f"+{dp50:.2f} ms {'met' if dp50 < 1.0 else 'MISSED'}")
    print("  (svc µs/edit: the service's CPU per edit while relaying to every client; proxy: "
          "configurable-http-proxy's, direct/relayed)")
    for n in args.clients:
        m = memory[n]
        print(f"  memory with {n:>3} relayed clients: service {med(m.service):6.1f} KiB RSS per client; "
              f"server {med(m.server):6.1f} KiB RSS per upstream connection")
    print(f"  aim (relayed >= 0.8x direct throughput, < 1 ms added at p50): {'; '.join(aims)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    full = {"rounds": 3, "edits": 500, "latency_edits": 200}
    quick = {"rounds": 1, "edits": 100, "latency_edits": 30}
    parser.add_argument("--rounds", type=int, help=f"interleaved rounds ({full['rounds']})")
    parser.add_argument("--edits", type=int, help=f"edits per throughput run ({full['edits']})")
    parser.add_argument("--latency-edits", type=int, help=f"edits per latency run ({full['latency_edits']})")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 100],
                        help="client counts on the room (1 10 100)")
    parser.add_argument("--route", choices=["proxy", "direct"], default="proxy",
                        help="c.RTCService.relay_route: how the relay reaches the server (proxy)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: " + ", ".join(f"{k} {v}" for k, v in quick.items()))
    args = parser.parse_args()
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    workdir = Path(tempfile.mkdtemp(prefix="bench_relay-"))
    extra = f"c.SimpleLocalProcessSpawner.home_dir_template = {str(workdir / 'home')!r} + '/{{username}}'\n"
    extra += f"c.RTCService.relay_route = {args.route!r}\n"
    hub = LocalHub(workdir, extra_config=extra, manage_hub_access=True)
    bench: Bench | None = None
    try:
        hub.start()
        bench = Bench(hub)
        bench.start()
        samples, memory = asyncio.run(run(bench, args))
        report(args, samples, memory)
    except Exception:
        log = workdir / "hub.log"
        if log.exists():
            print(f"--- last lines of {log}:\n{log.read_text(errors='replace')[-4000:]}", file=sys.stderr)
        raise
    finally:
        if bench is not None and hub.process is not None and hub.process.poll() is None:
            try:
                hub.api("DELETE", f"/hub/api/users/{OWNER}/server")
            except OSError:
                pass
        shutdown(hub, None)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
