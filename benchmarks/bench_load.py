"""Load held: many open rooms on one server, and many clients on one room, stock vs guarded.

The hub of ``bench_room``: stock servers run jupyter-collaboration alone (hub_rtc
switched off through their own Jupyter config dir), guarded servers run it with
hub_rtc and host a session on ``lab1`` in which ``ed`` is an editor.  Each round
and part gets a fresh pair of servers (users ``sa<r>``/``ga<r>`` for part A,
``sb<r>``/``gb<r>`` for part B), so that every memory figure starts from a
server that has opened nothing; rounds alternate which server goes first.

**Part A, many rooms.** On each server, rooms are opened in steps (``--steps``,
by default 25, 50, 100, 200), each a distinct 20-cell notebook with one client
(on stock the owner's, on guarded ed's: the collaborator path, checked and
pinned).  Each client announces a JupyterLab-like awareness state on joining and
moves its cursor with every edit, as JupyterLab's editor does.  At each step the
clients type ``--rate`` edits/s per room (a 12-character marker, so that a
receiver can find it) for ``--seconds``, spread evenly over the rooms; every
``--sample``-th room has a second client, a listener that keeps no document,
and the delay from each of its room's edits being sent until the listener has
it is the *delivery latency* (a y-sync room never echoes an edit to its sender,
so the sender cannot time its own).  The throughput of accepted edits is what
was sent, times the share of sampled edits delivered, over the time until the
last was delivered.  RSS per room is the server's RSS above its own baseline
(started, nothing opened) divided by the rooms open: once they are opened (one
client, awareness set, no edit yet) and again after the step's edits (a guarded
room then holds the guard's mirror).  A step *holds* when every sampled edit
arrived within ``DRAIN_SECONDS``, p99 is under ``--hold-ms`` and the clients
kept their schedule; a server's ramp goes on past a step that does not hold,
and stops after one that delivered under half its sampled edits in time.

**Part B, many clients on one room.** ``--clients`` clients on one notebook per
server: ``--writers`` of them type ``--writer-rate`` edits/s each, the others
are listeners that keep no document.  Every client announces its state on
joining; every listener moves its cursor every ``--presence-seconds`` (an
awareness update carrying a marker).  Two phases of ``--seconds`` each: presence
only, then presence with the writers typing.  Edit delay is from each send until
each listener has it; awareness delay from each move until each other listener
has it.  RSS per idle client: the server's RSS growth from one client (the room
loaded) to all of them joined and announced, divided by the clients added.
Server CPU per edit per receiver: the typing phase's server CPU less the
presence-only phase's rate over the same time, divided by edits × receivers
(nan where presence alone already saturated the server or it fell behind).

Every measure starts with the servers and the proxy quiet; per-process CPU
(server, proxy, this process, and the rest of the machine from ``/proc/stat``)
is shown so that a reader can see which of them ran out.  Medians over the
rounds are printed with their spread (min-max), and guarded ÷ stock is taken
round by round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pycrdt import Encoder, Text, create_awareness_message

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from bench_fanout import Listener  # noqa: E402
from harness import (  # noqa: E402
    CLK_TCK,
    EDITOR,
    ROOT,
    cpu_seconds,
    host_session,
    hub_config,
    interleaved,
    local_hub,
    median,
    options,
    percentile,
    proxy_pid,
    quiet,
    retried,
    rss_kib,
    start_servers,
)

from hub_rtc.localhub import LocalHub  # noqa: E402
from tests.integration.yclient import YClient  # noqa: E402

KINDS = ("stock", "guarded")
CELLS = 20
#: after the last edit of a step is sent, receivers have this long to get every edit
DRAIN_SECONDS = 5.0
#: a server's ramp in part A stops after a step that delivered less than this share in time
COLLAPSED = 0.5
#: a server using more than this many cores on presence alone has no spare to measure edits against
SATURATED = 0.75
EDIT_MARK = re.compile(rb"\[E(\d+)\.(\d+)\]")
MOVE_MARK = re.compile(rb"\[P(\d+)\.(\d+)\]")
INF = float("inf")
STARTED = time.monotonic()


def say(line: str) -> None:
    """Progress on stderr, with the minutes since the start."""
    print(f"  {(time.monotonic() - STARTED) / 60:5.1f} min  {line}", file=sys.stderr, flush=True)


def users(part: str, r: int) -> dict[str, str]:
    """The pair of servers of round ``r`` of part ``part``: kind -> owner."""
    return {"stock": f"s{part}{r}", "guarded": f"g{part}{r}"}


# -- notebooks, servers, awareness --------------------------------------------


def notebook_json(cells: int = CELLS) -> dict[str, Any]:
    """``cells`` code cells of three short lines repeated three times, ids ``cell-<i>``."""
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"id": f"cell-{i}", "cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": f"# cell {i}\nvalue_{i} = compute({i})\nprint(value_{i})\n" * 3}
        for i in range(cells)]}


def create_notebooks(hub: LocalHub, server: str, token: str, paths: Iterable[str]) -> None:
    content = notebook_json()
    status, reply = hub.api("PUT", f"/user/{server}/api/contents/{ROOT}", {"type": "directory"}, token)
    assert status in (200, 201), (status, reply)
    for path in paths:
        status, reply = hub.api("PUT", f"/user/{server}/api/contents/{quote(path)}",
                                {"type": "notebook", "format": "json", "content": content}, token)
        assert status in (200, 201), (status, reply)


@dataclass
class Pair:
    """A stock and a guarded server, fresh for one round of one part."""

    owners: dict[str, str]
    pids: dict[str, int]
    tokens: dict[str, str]  # the clients' tokens, by kind: the owner's on stock, ed's on guarded
    proxy: int

    @classmethod
    def start(cls, hub: LocalHub, tokens: dict[str, str], owners: dict[str, str],
              paths: list[str]) -> Pair:
        started = start_servers(hub, list(owners.values()))
        for owner in owners.values():
            create_notebooks(hub, owner, tokens[owner], paths)
        host_session(hub, tokens[owners["guarded"]], time.monotonic() + 60)
        return cls(owners, {kind: started[owner] for kind, owner in owners.items()},
                   {"stock": tokens[owners["stock"]], "guarded": tokens[EDITOR]}, proxy_pid(hub))

    def stop(self, hub: LocalHub) -> None:
        for owner in self.owners.values():
            hub.api("DELETE", f"/hub/api/users/{owner}/server")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in self.pids.values()):
            time.sleep(0.2)

    @property
    def busy(self) -> list[int]:
        return [*self.pids.values(), self.proxy]


def awareness_frame(client_id: int, clock: int, state: dict[str, Any]) -> bytes:
    encoder = Encoder()
    for value in (1, client_id, clock):
        encoder.write_var_uint(value)
    encoder.write_var_string(json.dumps(state, separators=(",", ":")))
    return create_awareness_message(encoder.to_bytes())


def lab_state(name: str, path: str, cell: int, offset: int, mark: str = "") -> dict[str, Any]:
    """What JupyterLab announces: who (``user``, replaced by the guarded room), the
    document, and a collapsed selection in a cell's editor."""
    head = {"type": {"client": 0, "clock": offset}, "tname": None, "item": None, "assoc": 0}
    state: dict[str, Any] = {
        "user": {"username": name, "name": name, "display_name": name, "initials": name[:2].upper(),
                 "color": "var(--jp-collaborator-color3)", "avatar_url": None},
        "current": f"notebook:{path}",
        "cursors": [{"cell": cell, "anchor": head, "head": head, "primary": True, "empty": True}],
    }
    if mark:
        state["mark"] = mark
    return state


# -- machine-wide CPU ------------------------------------------------------------


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class Meter:
    """CPU seconds of the server, the proxy, this process and the machine since ``start``."""

    def __init__(self, server: int, proxy: int) -> None:
        self.pids = (server, proxy)
        self.at = time.perf_counter()
        self.before = self._now()

    def _now(self) -> list[float]:
        return [cpu_seconds(p) for p in self.pids] + [time.process_time(), machine_cpu_seconds()]

    def read(self) -> dict[str, float]:
        """CPU seconds used so far by each, and by everything else on the machine; and wall time."""
        server, proxy, this, machine = (b - a for a, b in zip(self.before, self._now(), strict=True))
        return {"server": server, "proxy": proxy, "this process": this,
                "others": max(0.0, machine - server - proxy - this), "wall": time.perf_counter() - self.at}


# -- part A: many rooms ---------------------------------------------------------


@dataclass
class OpenRoom:
    index: int
    path: str
    sender: YClient
    text: Text
    cell: int
    receiver: Listener | None = None
    typed: int = 0
    clock: int = 1

    def marker(self) -> str:
        self.typed += 1
        return f"[E{self.index}.{self.typed:05d}]"

    async def announce(self, name: str) -> None:
        """The awareness state a JupyterLab client sends on opening the notebook, or on
        moving its cursor (every edit moves it)."""
        self.clock += 1
        frame = awareness_frame(self.sender.doc.client_id, self.clock,
                                lab_state(name, self.path, self.cell, self.typed))
        await self.sender.ws.write_message(frame, binary=True)


def room_path(k: int) -> str:
    return f"{ROOT}/room-{k:03d}.ipynb"


class ManyRooms:
    """One server's open rooms for part A."""

    def __init__(self, hub: LocalHub, kind: str, pair: Pair, args: argparse.Namespace) -> None:
        self.hub, self.kind, self.args = hub, kind, args
        self.server = pair.owners[kind]
        self.token = pair.tokens[kind]
        self.pid = pair.pids[kind]
        self.proxy = pair.proxy
        self.rooms: list[OpenRoom] = []
        self.baseline = rss_kib(self.pid)
        self.stopped = ""  # why the ramp stopped, once it has

    async def _open(self, k: int) -> OpenRoom:
        path = room_path(k)
        sender = await retried(
            lambda: YClient.connect(self.hub.url, self.server, path, self.token, timeout=60))
        cell = k % CELLS
        room = OpenRoom(k, path, sender, sender.text(f"cell-{cell}"), cell)
        await room.announce(self.kind)
        return room

    async def _listener(self, path: str) -> Listener:
        return await Listener.connect(self.hub, self.server, self.token, path)

    async def open_to(self, count: int) -> None:
        while len(self.rooms) < count:
            batch = range(len(self.rooms), min(count, len(self.rooms) + 10))
            self.rooms += await asyncio.gather(*(self._open(k) for k in batch))

    async def add_receivers(self) -> None:
        for room in self.rooms:
            if room.index % self.args.sample == 0 and room.receiver is None:
                receiver = await retried(partial(self._listener, room.path))
                await receiver.move()
                room.receiver = receiver

    async def step(self, busy: list[int]) -> dict[str, float]:
        """Open rooms up to the step, measure memory, type for ``--seconds``; the figures."""
        count = len(self.rooms)
        await quiet(busy)
        opened = rss_kib(self.pid)
        await self.add_receivers()
        await quiet(busy)
        out = await self.load(count)
        await quiet(busy, timeout=60)
        edited = rss_kib(self.pid)
        out.update({"rss MiB": edited / 1024, "per room opened KiB": (opened - self.baseline) / count,
                    "per room edited KiB": (edited - self.baseline) / count})
        return out

    async def load(self, count: int) -> dict[str, float]:
        rate = self.args.rate * count
        total = max(1, int(self.args.seconds * rate))
        order = list(range(count))
        random.shuffle(order)
        sent: list[tuple[float, asyncio.Future[float]]] = []
        meter = Meter(self.pid, self.proxy)
        start = time.perf_counter()
        for n in range(total):
            room = self.rooms[order[n % count]]
            marker = room.marker()
            arrival = room.receiver.expect(marker.encode()) if room.receiver else None
            at = time.perf_counter()
            await room.sender.type(room.text, marker, at=0)
            await room.announce(self.kind)
            if arrival is not None:
                sent.append((at, arrival))
            await asyncio.sleep(max(0.0, start + (n + 1) / rate - time.perf_counter()))
        sending = time.perf_counter() - start
        await asyncio.wait([f for _, f in sent], timeout=DRAIN_SECONDS)
        delays = [(f.result() - at) * 1000 if f.done() else INF for at, f in sent]
        last = max((f.result() for _, f in sent if f.done()), default=start + sending)
        for room in self.rooms:
            if room.receiver is not None:
                room.receiver.forget()
        cpu = meter.read()
        delivered = sum(1 for d in delays if d != INF) / max(len(delays), 1)
        window = max(last - start, sending)
        figures = {"offered edits/s": rate, "sent edits/s": total / sending,
                   "accepted edits/s": total * delivered / window,
                   "delivered share": delivered, "p50 ms": percentile(delays, 50),
                   "p99 ms": percentile(delays, 99), "sampled edits": len(delays),
                   "server CPU per edit µs": cpu["server"] / total * 1e6}
        figures.update({f"cores, {k}": v / cpu["wall"] for k, v in cpu.items() if k != "wall"})
        figures["held"] = float(delivered == 1.0 and figures["p99 ms"] < self.args.hold_ms
                                and figures["sent edits/s"] >= 0.95 * rate)
        return figures

    def close(self) -> None:
        for room in self.rooms:
            room.sender.close()
            if room.receiver is not None:
                room.receiver.close()


Results = dict[tuple[str, str], dict[str, dict[int, float]]]  # (section, kind) -> measure -> round -> value


def record(results: Results, section: str, kind: str, r: int, figures: dict[str, float]) -> None:
    table = results.setdefault((section, kind), {})
    for name, value in figures.items():
        table.setdefault(name, {})[r] = value


async def many_rooms(hub: LocalHub, pair: Pair, args: argparse.Namespace, r: int, results: Results,
                     stops: list[str]) -> None:
    sides = {kind: ManyRooms(hub, kind, pair, args) for kind in KINDS}
    try:
        for i, count in enumerate(args.steps):
            for kind in interleaved(r + i, KINDS):
                side = sides[kind]
                if side.stopped:
                    continue
                try:
                    await side.open_to(count)
                except Exception as e:  # where the machine stops is a result
                    side.stopped = f"opening room {len(side.rooms) + 1}: {type(e).__name__}: {e}"
                    stops.append(f"round {r + 1}, {kind}: stopped {side.stopped}")
                    continue
                figures = await side.step(pair.busy)
                record(results, f"{count} rooms", kind, r, figures)
                if not figures["held"]:
                    # Slow is a figure worth having at the next step too; lost is not.
                    if figures["delivered share"] < COLLAPSED:
                        side.stopped = f"at {count} rooms"
                    stops.append(f"round {r + 1}, {kind}: {count} rooms did not hold (delivered "
                                 f"{figures['delivered share']:.1%} in {DRAIN_SECONDS:g} s, p99 "
                                 f"{figures['p99 ms']:.0f} ms, sent {figures['sent edits/s']:.0f} of "
                                 f"{figures['offered edits/s']:.0f}/s)"
                                 + ("; ramp stopped" if side.stopped else ""))
                say(f"round {r + 1} A {count:>4} rooms {kind:<8}: {figures['accepted edits/s']:6.0f} "
                      f"edits/s, p50 {figures['p50 ms']:6.1f} ms, p99 {figures['p99 ms']:7.1f} ms, "
                      f"{figures['per room opened KiB']:5.0f} KiB/room, server "
                      f"{figures['cores, server']:.2f} cores, proxy {figures['cores, proxy']:.2f}, this "
                      f"process {figures['cores, this process']:.2f}, others {figures['cores, others']:.2f}")
    finally:
        for side in sides.values():
            side.close()


# -- part B: many clients on one room -----------------------------------------


class Viewer(Listener):
    """A listener that notes when each edit and each other client's move first arrives,
    and moves its cursor with a marker in its state."""

    sent_moves: dict[tuple[int, int], float] = {}  # (client id, clock) -> when sent; shared

    def __init__(self, ws: Any) -> None:
        self.edits: dict[tuple[int, int], float] = {}
        self.moves: dict[tuple[int, int], float] = {}
        self.path = ""
        super().__init__(ws)

    async def _read(self) -> None:
        while (message := await self.ws.read_message()) is not None:
            assert isinstance(message, bytes)
            now = time.perf_counter()
            self.frames += 1
            if message[0] == 1:
                self.awareness += 1
                for cid, clock in MOVE_MARK.findall(message):
                    self.moves.setdefault((int(cid), int(clock)), now)
            else:
                for writer, n in EDIT_MARK.findall(message):
                    self.edits.setdefault((int(writer), int(n)), now)

    async def move(self) -> None:
        self.clock += 1
        mark = f"[P{self.client_id}.{self.clock}]"
        state = lab_state("viewer", self.path, 3, self.clock, mark)
        frame = awareness_frame(self.client_id, self.clock, state)
        Viewer.sent_moves[self.client_id, self.clock] = time.perf_counter()
        await self.ws.write_message(frame, binary=True)


async def presence(viewers: list[Viewer], every: float, stop: asyncio.Event) -> None:
    """Each viewer moves its cursor every ``every`` s, spread out, on schedule, until ``stop``."""
    start, n = time.perf_counter(), 0
    while not stop.is_set():
        await viewers[n % len(viewers)].move()
        n += 1
        await asyncio.sleep(max(0.0, start + n * every / len(viewers) - time.perf_counter()))


@dataclass
class OneRoom:
    kind: str
    pid: int
    writers: list[OpenRoom] = field(default_factory=list)
    viewers: list[Viewer] = field(default_factory=list)
    per_client_kib: float = 0.0

    def close(self) -> None:
        for w in self.writers:
            w.sender.close()
        for v in self.viewers:
            v.close()


B_PATH = f"{ROOT}/hall.ipynb"


async def join(hub: LocalHub, pair: Pair, kind: str, args: argparse.Namespace) -> OneRoom:
    """``--clients`` clients on the hall notebook; the RSS each idle one adds."""
    server, token = pair.owners[kind], pair.tokens[kind]
    room = OneRoom(kind, pair.pids[kind])
    loaded = 0
    for w in range(args.writers):
        sender = await retried(lambda: YClient.connect(hub.url, server, B_PATH, token, timeout=60))
        room.writers.append(OpenRoom(w, B_PATH, sender, sender.text(f"cell-{w % CELLS}"), w % CELLS))
        await room.writers[-1].announce(kind)
        if w == 0:
            await quiet(pair.busy)
            loaded = rss_kib(room.pid)
    for _ in range(args.clients - args.writers):
        viewer = await retried(lambda: Viewer.connect(hub, server, token, B_PATH), timeout=60)
        assert isinstance(viewer, Viewer)
        viewer.path = B_PATH
        await viewer.move()
        room.viewers.append(viewer)
    await quiet(pair.busy)
    room.per_client_kib = (rss_kib(room.pid) - loaded) / (args.clients - 1)
    return room


async def phase(room: OneRoom, proxy: int, args: argparse.Namespace, typing: bool,
                ) -> tuple[dict[str, float], dict[str, float]]:
    """Presence for ``--seconds`` (and the writers typing, if ``typing``); the delays and
    the CPU each process used."""
    stop = asyncio.Event()
    for v in room.viewers:
        v.edits.clear()
        v.moves.clear()
    Viewer.sent_moves.clear()
    mover = asyncio.ensure_future(presence(room.viewers, args.presence_seconds, stop))
    await asyncio.sleep(args.presence_seconds)  # presence flows before the measure starts
    Viewer.sent_moves.clear()
    for v in room.viewers:
        v.awareness = 0
    meter = Meter(room.pid, proxy)
    start = time.perf_counter()
    sent: dict[tuple[int, int], float] = {}
    rate = args.writer_rate * len(room.writers) if typing else 0.0
    n = 0
    while time.perf_counter() - start < args.seconds:
        if rate:
            w = room.writers[n % len(room.writers)]
            marker = w.marker()
            sent[w.index, w.typed] = time.perf_counter()
            await w.sender.type(w.text, marker, at=0)
            await w.announce(room.kind)
            n += 1
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        else:
            await asyncio.sleep(0.1)
    sending = time.perf_counter() - start
    moves = dict(Viewer.sent_moves)
    stop.set()
    await mover
    await drained(room.viewers, sent, moves)
    cpu = meter.read()
    edit_delays = [(v.edits[m] - at) * 1000 if m in v.edits else INF
                   for v in room.viewers for m, at in sent.items()]
    move_delays = [(v.moves[m] - at) * 1000 if m in v.moves else INF
                   for v in room.viewers for m, at in moves.items() if m[0] != v.client_id]
    receivers = len(room.viewers) + len(room.writers) - 1
    figures = {"moves/s sent": len(moves) / sending,
               "awareness p50 ms": percentile(move_delays, 50),
               "awareness p99 ms": percentile(move_delays, 99),
               "awareness delivered share": share(move_delays),
               "awareness frames per viewer per s": sum(v.awareness for v in room.viewers) / len(room.viewers)
               / cpu["wall"]}
    if typing:
        figures.update({"edits/s sent": len(sent) / sending,
                        "edit p50 ms": percentile(edit_delays, 50),
                        "edit p99 ms": percentile(edit_delays, 99),
                        "edit delivered share": share(edit_delays),
                        "edit deliveries/s to listeners": sum(1 for d in edit_delays if d != INF) / sending,
                        "edits": float(len(sent)), "receivers": float(receivers)})
    figures.update({f"cores, {k}": v / cpu["wall"] for k, v in cpu.items() if k != "wall"})
    return figures, cpu


def share(delays: list[float]) -> float:
    return sum(1 for d in delays if d != INF) / max(len(delays), 1)


async def drained(viewers: list[Viewer], edits: dict[tuple[int, int], float],
                  moves: dict[tuple[int, int], float]) -> None:
    """Until every viewer has every edit and every other viewer's last move, or DRAIN_SECONDS."""
    deadline = time.perf_counter() + DRAIN_SECONDS
    last: dict[int, int] = {}
    for cid, clock in moves:
        last[cid] = max(last.get(cid, 0), clock)

    def done(v: Viewer) -> bool:
        return (all(m in v.edits for m in edits)
                and all((cid, c) in v.moves for cid, c in last.items() if cid != v.client_id))

    while time.perf_counter() < deadline and not all(done(v) for v in viewers):
        await asyncio.sleep(0.1)


async def one_room(hub: LocalHub, pair: Pair, args: argparse.Namespace, r: int, results: Results) -> None:
    rooms: dict[str, OneRoom] = {}
    try:
        for kind in interleaved(r, KINDS):
            rooms[kind] = await join(hub, pair, kind, args)
        for kind in interleaved(r, KINDS):
            room = rooms[kind]
            await quiet(pair.busy, timeout=60)
            idle, idle_cpu = await phase(room, pair.proxy, args, typing=False)
            await quiet(pair.busy, timeout=60)
            busy, busy_cpu = await phase(room, pair.proxy, args, typing=True)
            # the typing phase's server CPU beyond what presence alone took over the same time
            extra = busy_cpu["server"] - idle_cpu["server"] / idle_cpu["wall"] * busy_cpu["wall"]
            if idle["cores, server"] > SATURATED or idle["awareness delivered share"] < 1.0:
                # presence alone already saturated the server (or starved it: it fell behind),
                # so there is no spare to tell the edits' cost from
                extra = float("nan")
            moves = idle["moves/s sent"] * idle_cpu["wall"]
            figures = {**{f"presence only: {k}": v for k, v in idle.items()},
                       **{f"typing: {k}": v for k, v in busy.items()},
                       "RSS per idle client KiB": room.per_client_kib,
                       "server CPU per edit per receiver µs":
                           extra / (busy["edits"] * busy["receivers"]) * 1e6,
                       "server CPU per move per receiver µs":
                           idle_cpu["server"] / (moves * busy["receivers"]) * 1e6}
            record(results, f"{args.clients} clients", kind, r, figures)
            say(f"round {r + 1} B {kind:<8}: edit p50 {busy['edit p50 ms']:.1f} p99 "
                  f"{busy['edit p99 ms']:.1f} ms, awareness p50 {busy['awareness p50 ms']:.1f} p99 "
                  f"{busy['awareness p99 ms']:.1f} ms, server {busy['cores, server']:.2f} cores, proxy "
                  f"{busy['cores, proxy']:.2f}, this process {busy['cores, this process']:.2f}, others "
                  f"{busy['cores, others']:.2f}")
    finally:
        for room in rooms.values():
            room.close()


# -- the run and the report ------------------------------------------------------


async def run(hub: LocalHub, tokens: dict[str, str], args: argparse.Namespace,
              ) -> tuple[Results, list[str]]:
    results: Results = {}
    stops: list[str] = []
    for r in range(args.rounds):
        if "A" in args.parts:
            pair = Pair.start(hub, tokens, users("a", r), [room_path(k) for k in range(max(args.steps))])
            try:
                await many_rooms(hub, pair, args, r, results, stops)
            finally:
                pair.stop(hub)
        if "B" in args.parts:
            pair = Pair.start(hub, tokens, users("b", r), [B_PATH])
            try:
                await one_room(hub, pair, args, r, results)
            finally:
                pair.stop(hub)
    return results, stops


def spread(values: dict[int, float], fmt: str) -> str:
    xs = list(values.values())
    if not xs:
        return "-"
    if len(xs) == 1:
        return format(xs[0], fmt)
    return f"{format(median(xs), fmt)} ({format(min(xs), fmt)}-{format(max(xs), fmt)})"


def ratio(gu: dict[int, float], st: dict[int, float]) -> str:
    xs = [gu[r] / st[r] for r in gu if r in st and st[r] not in (0, INF) and gu[r] != INF]
    if not xs:
        return "-"
    return f"{median(xs):.2f}x ({min(xs):.2f}-{max(xs):.2f})" if len(xs) > 1 else f"{xs[0]:.2f}x"


def table(results: Results, section: str, rows: list[tuple[str, str]]) -> None:
    st, gu = results.get((section, "stock"), {}), results.get((section, "guarded"), {})
    print(f"  {section}")
    for name, fmt in rows:
        if name not in st and name not in gu:
            continue
        a, b = st.get(name, {}), gu.get(name, {})
        print(f"    {name:<44} {spread(a, fmt):>24} {spread(b, fmt):>24}   {ratio(b, a)}")


A_ROWS = [("offered edits/s", ".0f"), ("sent edits/s", ".0f"), ("accepted edits/s", ".0f"),
          ("delivered share", ".3f"), ("p50 ms", ".1f"), ("p99 ms", ".1f"), ("sampled edits", ".0f"),
          ("rss MiB", ".0f"), ("per room opened KiB", ".0f"), ("per room edited KiB", ".0f"),
          ("server CPU per edit µs", ".0f"), ("cores, server", ".2f"), ("cores, proxy", ".2f"),
          ("cores, this process", ".2f"), ("cores, others", ".2f"), ("held", ".0f")]


def b_rows() -> list[tuple[str, str]]:
    common = [("moves/s sent", ".0f"), ("awareness p50 ms", ".1f"), ("awareness p99 ms", ".1f"),
              ("awareness delivered share", ".3f"), ("awareness frames per viewer per s", ".1f")]
    typing = [("edits/s sent", ".1f"), ("edit p50 ms", ".1f"), ("edit p99 ms", ".1f"),
              ("edit delivered share", ".3f"), ("edit deliveries/s to listeners", ".0f")]
    cores = [(f"cores, {k}", ".2f") for k in ("server", "proxy", "this process", "others")]
    return ([(f"presence only: {n}", f) for n, f in common + cores]
            + [(f"typing: {n}", f) for n, f in typing + common + cores]
            + [("RSS per idle client KiB", ".0f"), ("server CPU per edit per receiver µs", ".1f"),
               ("server CPU per move per receiver µs", ".1f")])


def report(args: argparse.Namespace, results: Results, stops: list[str]) -> None:
    print(f"== load: stock (jupyter-collaboration alone) vs guarded (with hub_rtc; clients are ed's), "
          f"through the proxy; medians of {args.rounds} interleaved rounds (min-max), guarded ÷ stock "
          f"per round")
    if "A" in args.parts:
        print(f"  part A: one {CELLS}-cell notebook per room, one client each (+ a listener in every "
              f"{args.sample}th), {args.rate:g} edits/s per room with a cursor move each, {args.seconds} s "
              f"per step; latency = send -> the room's listener; held = all sampled edits in "
              f"{DRAIN_SECONDS:g} s, p99 < {args.hold_ms:g} ms, schedule kept (1 = held)")
        print(f"  {'':<48} {'stock':>24} {'guarded':>24}   guarded ÷ stock")
        for count in args.steps:
            table(results, f"{count} rooms", A_ROWS)
        held = {kind: max((c for c in args.steps
                           if all(v == 1.0 for v in results.get((f"{c} rooms", kind), {})
                                  .get("held", {0: 0.0}).values())), default=0) for kind in KINDS}
        print(f"  most rooms held in every round: stock {held['stock']}, guarded {held['guarded']}")
        for line in stops or ["every step held on both servers"]:
            print(f"  stop: {line}")
    if "B" in args.parts:
        print(f"  part B: {args.clients} clients on one {CELLS}-cell notebook: {args.writers} writers at "
              f"{args.writer_rate:g} edits/s each (with a cursor move each), "
              f"{args.clients - args.writers} listeners moving "
              f"their cursors every {args.presence_seconds:g} s; {args.seconds} s per phase")
        print(f"  {'':<48} {'stock':>24} {'guarded':>24}   guarded ÷ stock")
        table(results, f"{args.clients} clients", b_rows())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    full: dict[str, Any] = {"rounds": 3, "seconds": 10, "clients": 100}
    quick: dict[str, Any] = {"rounds": 1, "seconds": 4, "clients": 20}
    parser.add_argument("--rounds", type=int, help=f"interleaved rounds ({full['rounds']})")
    parser.add_argument("--seconds", type=int, help=f"typing time per step or phase ({full['seconds']})")
    parser.add_argument("--steps", type=lambda s: [int(x) for x in s.split(",")],
                        help="numbers of open rooms in part A (25,50,100,200; quick: 5,10)")
    parser.add_argument("--rooms", type=int, help="the last step of part A, if --steps is not given (200)")
    parser.add_argument("--rate", type=float, default=1.0, help="edits/s per room in part A (1)")
    parser.add_argument("--sample", type=int, default=4, help="a listener in every Nth room of part A (4)")
    parser.add_argument("--hold-ms", type=float, default=1000.0,
                        help="a step holds if p99 is under this (1000)")
    parser.add_argument("--clients", type=int, help=f"clients on the room of part B ({full['clients']})")
    parser.add_argument("--writers", type=int, default=2, help="of them, writers (2)")
    parser.add_argument("--writer-rate", type=float, default=5.0, help="edits/s per writer (5)")
    parser.add_argument("--presence-seconds", type=float, default=1.0,
                        help="each listener moves its cursor this often (1.0)")
    parser.add_argument("--parts", default="AB", help="which parts to run (AB)")
    args = options(parser, full, quick)
    if args.steps is None:
        last = args.rooms or (10 if args.quick else 200)
        args.steps = [s for s in (last // 8, last // 4, last // 2) if s > 0] + [last]
    owners = [users(part, r) for r in range(args.rounds) for part in "ab"]
    stock = [o["stock"] for o in owners]
    all_servers = [name for o in owners for name in o.values()]
    Viewer.sent_moves = {}
    with local_hub("bench_load-", lambda workdir: hub_config(workdir, stock=stock), all_servers) as hub:
        tokens = {name: hub.user_token(name) for name in [*all_servers, EDITOR]}
        results, stops = asyncio.run(run(hub, tokens, args))
        report(args, results, stops)


if __name__ == "__main__":
    main()
