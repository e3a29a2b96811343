"""A lecture hall on the guarded room: where the tail of each edit's delay comes from.

``bench_fanout``'s lecture compares the stock room and the guarded room with all
300 viewers in the benchmark's own process.  Here the guarded room's lecture is
run twice per round, interleaved, with the same viewers in two places:

- **one process**: 300 viewers on one event loop, as in ``bench_fanout``;
- **K processes** (``--processes``): the same viewers spread over K child
  processes, each with its own event loop.

Each viewer moves its cursor every ``--presence-seconds`` and notes when each
edit's unique text first arrives (``time.perf_counter``: the system's monotonic
clock, the same in every process); the owner types 20 edits/s for
``--seconds``.  An edit not delivered ``DRAIN_SECONDS`` after the last was sent
counts as never delivered.  If the tail shrinks when the viewers have more event
loops, the viewers' own loop was what delayed them, not the room.  The cores each
process used say what the machine had left.

Guarded only: the stock room delivers about 1% of a lecture's edits within 20 s
(``bench_fanout``), so its percentiles say nothing here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from bench_fanout import GUARDED, Listener, moving  # noqa: E402
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
from tests.integration.yclient import YClient  # noqa: E402

CELL = "cell-7"
RATE = 20.0
#: after the last edit is sent, viewers have this long to receive every edit
DRAIN_SECONDS = 5.0
MARKER = re.compile(rb"\[L(\d{6})\]")
MODES = ("one process", "processes")


class Recorder(Listener):
    """A listener that notes when each edit marker first arrives."""

    def __init__(self, ws: Any) -> None:
        self.arrived: dict[int, float] = {}
        super().__init__(ws)

    async def _read(self) -> None:
        while (message := await self.ws.read_message()) is not None:
            assert isinstance(message, bytes)
            self.frames += 1
            if message[0] == 1:
                self.awareness += 1
                continue
            now = time.perf_counter()
            for found in MARKER.findall(message):
                self.arrived.setdefault(int(found), now)


class Viewers:
    """Recorders in this process, or in child processes (one line of JSON each back)."""

    def __init__(self, recorders: list[Recorder], children: list[subprocess.Popen[str]]) -> None:
        self.recorders = recorders
        self.children = children
        self._stop = asyncio.Event()
        self._mover: asyncio.Future[None] | None = None

    @classmethod
    async def start(cls, hub: LocalHub, token: str, path: str, count: int, processes: int,
                    presence: float) -> Viewers:
        if processes == 0:
            recorders = [await retried(lambda: Recorder.connect(hub, GUARDED, token, path))
                         for _ in range(count)]
            return cls(recorders, [])
        children = []
        for k in range(processes):
            share = count // processes + (1 if k < count % processes else 0)
            children.append(subprocess.Popen(
                [sys.executable, __file__, "--child", hub.url, token, path, str(share), str(presence)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a viewer process did not connect its viewers")
        return cls([], children)

    async def go(self, presence: float) -> None:
        """Cursors start moving."""
        if self.recorders:
            self._stop.clear()
            self._mover = asyncio.ensure_future(moving(self.recorders, presence, self._stop))
        for child in self.children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        await asyncio.sleep(presence)  # presence flows before the first edit

    async def stop(self) -> tuple[list[dict[int, float]], float]:
        """Cursors stop: every viewer's arrivals, and the CPU seconds the viewers used."""
        if self.recorders:
            self._stop.set()
            if self._mover is not None:
                await self._mover
            arrivals = [dict(r.arrived) for r in self.recorders]
            for r in self.recorders:
                r.arrived.clear()
            return arrivals, 0.0
        arrivals: list[dict[int, float]] = []
        cpu = 0.0
        for child in self.children:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write("stop\n")
            child.stdin.flush()
            reply = json.loads(child.stdout.readline())
            arrivals += [{int(k): v for k, v in seen.items()} for seen in reply["arrived"]]
            cpu += reply["cpu"]
        return arrivals, cpu

    def close(self) -> None:
        for r in self.recorders:
            r.close()
        for child in self.children:
            assert child.stdin is not None
            child.stdin.write("quit\n")
            child.stdin.flush()
            child.wait(10)


async def lecture(sender: YClient, viewers: Viewers, first: int, seconds: float, presence: float,
                  pids: list[int]) -> dict[str, float]:
    """One lecture: the delays' p50 and p99 (ms), the share never delivered, and the
    cores the server, the proxy, this process and the viewer processes used."""
    await viewers.go(presence)
    text = sender.text(CELL)
    sent: dict[int, float] = {}
    cpu_before = [cpu_seconds(pid) for pid in pids] + [time.process_time()]
    start = time.perf_counter()
    for n in range(int(seconds * RATE)):
        sent[first + n] = time.perf_counter()
        await sender.type(text, f"[L{first + n:06d}]", at=0)
        await asyncio.sleep(max(0.0, start + (n + 1) / RATE - time.perf_counter()))
    await asyncio.sleep(DRAIN_SECONDS)
    elapsed = time.perf_counter() - start
    cpu_after = [cpu_seconds(pid) for pid in pids] + [time.process_time()]
    arrivals, viewer_cpu = await viewers.stop()
    delays = [(seen[m] - at) * 1000 if m in seen else float("inf")
              for seen in arrivals for m, at in sent.items()]
    # An edit late for most viewers was held up before the fan-out (the server), one
    # late for a few after it (their sockets, the proxy, their event loops).
    per_edit = [median([(seen[m] - at) * 1000 if m in seen else float("inf") for seen in arrivals])
                for m, at in sent.items()]
    cores = [(b - a) / elapsed for a, b in zip(cpu_before, cpu_after, strict=True)]
    return {"p50": percentile(delays, 50), "p99": percentile(delays, 99),
            "late for most": sum(1 for d in per_edit if d > 100) / len(per_edit),
            "worst edit, median over viewers": max(per_edit),
            "lost": sum(1 for d in delays if d == float("inf")) / len(delays),
            "server": cores[0], "proxy": cores[1], "this process": cores[2],
            "viewer processes": viewer_cpu / elapsed}


async def run(hub: LocalHub, tokens: dict[str, str], pids: dict[str, int],
              args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    paths = {mode: f"{ROOT}/lecture-{n}.ipynb" for n, mode in enumerate(MODES)}
    senders = {mode: await YClient.connect(hub.url, GUARDED, path, tokens[GUARDED], timeout=30)
               for mode, path in paths.items()}
    viewers = {mode: await Viewers.start(hub, tokens[EDITOR], paths[mode], args.viewers,
                                         0 if mode == MODES[0] else args.processes,
                                         args.presence_seconds)
               for mode in MODES}
    busy = [pids[GUARDED], proxy_pid(hub)]
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    typed = 0
    try:
        for r in range(args.rounds):
            for mode in interleaved(r, MODES):
                await quiet(busy)
                results[mode].append(await lecture(senders[mode], viewers[mode], typed, args.seconds,
                                                   args.presence_seconds, busy))
                typed += int(args.seconds * RATE)
            print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        for v in viewers.values():
            v.close()
        for s in senders.values():
            s.close()
    return results


def report(args: argparse.Namespace, results: dict[str, list[dict[str, float]]]) -> None:
    print(f"== lecture on the guarded room: {args.viewers} viewers (ed's) moving their cursors every "
          f"{args.presence_seconds:g} s, the owner typing {RATE:g} edits/s for {args.seconds} s; "
          f"viewers in this process vs in {args.processes} processes; medians of {args.rounds} "
          f"interleaved rounds")
    print(f"  {'measure':<40} {'one process':>12} {f'{args.processes} processes':>12}")
    rows = (("edit delay p50, ms", "p50"), ("edit delay p99, ms", "p99"),
            (f"not delivered in {DRAIN_SECONDS:g} s, share", "lost"),
            ("edits > 100 ms for most viewers, share", "late for most"),
            ("worst edit's median delay, ms", "worst edit, median over viewers"),
            ("cores, server", "server"),
            ("cores, proxy", "proxy"), ("cores, this process", "this process"),
            ("cores, viewer processes", "viewer processes"))
    for name, key in rows:
        values = [median([run[key] for run in results[mode]]) for mode in MODES]
        spread = [f"{min(run[key] for run in results[mode]):.2f}-{max(run[key] for run in results[mode]):.2f}"
                  for mode in MODES]
        print(f"  {name:<40} {values[0]:>12.2f} {values[1]:>12.2f}   (rounds {spread[0]} / {spread[1]})")
    p99 = {mode: median([run["p99"] for run in results[mode]]) for mode in MODES}
    total = {mode: median([sum(run[k] for k in ("server", "proxy", "this process", "viewer processes"))
                           for run in results[mode]]) for mode in MODES}
    print(f"  cores used in all, of 2: {total[MODES[0]]:.2f} / {total[MODES[1]]:.2f}")
    print(f"  aim (p99 < 100 ms): one process {p99[MODES[0]]:.0f} ms {met(p99[MODES[0]] < 100)}; "
          f"{args.processes} processes {p99[MODES[1]]:.0f} ms {met(p99[MODES[1]] < 100)}")


# -- a viewer process --------------------------------------------------------------


async def child(url: str, token: str, path: str, count: int, presence: float) -> None:
    """Connect ``count`` viewers; on "go" move cursors, on "stop" print the arrivals."""
    hub = cast(LocalHub, SimpleNamespace(url=url))  # Listener.connect reads only its url
    recorders = [await retried(lambda: Recorder.connect(hub, GUARDED, token, path)) for _ in range(count)]
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    mover: asyncio.Future[None] | None = None
    while (line := (await loop.run_in_executor(None, sys.stdin.readline)).strip()) != "quit":
        if line == "go":
            stop.clear()
            cpu_at = time.process_time()
            mover = asyncio.ensure_future(moving(recorders, presence, stop))
        elif line == "stop":
            stop.set()
            if mover is not None:
                await mover
            print(json.dumps({"arrived": [r.arrived for r in recorders],
                              "cpu": time.process_time() - cpu_at}), flush=True)
            for r in recorders:
                r.arrived.clear()
        elif not line:
            break  # the parent is gone
    for r in recorders:
        r.close()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        url, token, path, count, presence = sys.argv[2:7]
        asyncio.run(child(url, token, path, int(count), float(presence)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    full = {"rounds": 3, "viewers": 300, "seconds": 10, "processes": 3}
    quick = {"rounds": 1, "viewers": 50, "seconds": 3, "processes": 2}
    parser.add_argument("--rounds", type=int, help=f"interleaved rounds ({full['rounds']})")
    parser.add_argument("--viewers", type=int, help=f"viewers in the lecture ({full['viewers']})")
    parser.add_argument("--seconds", type=int, help=f"how long the owner types ({full['seconds']})")
    parser.add_argument("--processes", type=int,
                        help=f"viewer processes in the second mode ({full['processes']})")
    parser.add_argument("--presence-seconds", type=float, default=1.0,
                        help="how often each viewer moves its cursor (1.0)")
    args = options(parser, full, quick)
    with local_hub("bench_lecture-", hub_config, (GUARDED,)) as hub:
        tokens = {name: hub.user_token(name) for name in (GUARDED, EDITOR)}
        pids = start_servers(hub, (GUARDED,))
        create_notebooks(hub, GUARDED, tokens[GUARDED], [f"{ROOT}/lecture-{n}.ipynb" for n in range(2)])
        host_session(hub, tokens[GUARDED], time.monotonic() + 60)
        report(args, asyncio.run(run(hub, tokens, pids, args)))


if __name__ == "__main__":
    main()
