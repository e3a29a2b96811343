"""Kernel start and execute round-trip in each isolation mode, next to ``none``.

The account mode is measured where ./dev setup made its account (as root).

Each kernel is a real ipykernel started by jupyter_client through hub_rtc's
provisioner, as a guarded server starts a session kernel: the provisioner asks
where the kernel is (here a stand-in for the service's answer: a session at
``lab``, whose policy names the mode) and wraps the command in the sandbox, or
not.  ``none`` is the baseline in the same run: same provisioner, same
environment scrub, no sandbox.  Rounds alternate the modes so machine noise hits
both alike; medians, spreads and ratios are printed.

  start     from ``start_kernel`` to the kernel's first reply (kernel_info)
  execute   one ``execute_request`` of ``1 + 1`` to its reply
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from jupyter_client.manager import AsyncKernelManager  # noqa: E402
from jupyter_client.provisioning import KernelProvisionerFactory  # noqa: E402

from hub_rtc.decision.access import Access  # noqa: E402
from hub_rtc.singleuser import isolation, provisioner  # noqa: E402


def configure(root: Path, mode: str) -> None:
    async def locate(folder: str) -> Access:
        return Access(read=True, session_id="s1", root="lab", kernel_isolation=mode)

    provisioner.configure(provisioner.Placement(str(root), locate, runtime=str(root / "runtime"),
                                                account=isolation.KERNEL_ACCOUNT))


async def one_kernel(root: Path, mode: str, executes: int) -> tuple[float, list[float]]:
    """(start seconds, execute round-trips) of one kernel in ``mode``."""
    configure(root, mode)
    manager = AsyncKernelManager(kernel_name="python3", connection_file=str(
        root / "runtime" / f"kernel-{mode}-{time.monotonic_ns()}.json"))
    began = time.perf_counter()
    await manager.start_kernel(cwd=str(root / "lab"))
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        started = time.perf_counter() - began
        assert manager.provisioner is not None
        ran = getattr(manager.provisioner, "isolation_mode", "?")
        if ran != mode:
            raise RuntimeError(f"asked for {mode}, the kernel ran in {ran}")
        trips = []
        for _ in range(executes):
            t0 = time.perf_counter()
            reply = await client.execute_interactive("1 + 1", timeout=30, output_hook=lambda m: None)
            trips.append(time.perf_counter() - t0)
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"execute failed in {mode}: {reply['content']}")
        return started, trips
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


def spread(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"{statistics.median(ms):7.1f} ms  (min {ms[0]:.1f}, max {ms[-1]:.1f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--executes", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds, 5 executes")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 6)
    executes = args.executes or (5 if args.quick else 30)
    missing, no_account = isolation.probe(), isolation.probe_account(isolation.KERNEL_ACCOUNT)
    modes = [isolation.NONE] + ([isolation.SANDBOX] if missing is None else [])
    modes += [isolation.ACCOUNT] if no_account is None else []
    for mode, why in ((isolation.SANDBOX, missing), (isolation.ACCOUNT, no_account)):
        if why:
            print(f"{mode} is not measured: {why}")
    KernelProvisionerFactory.instance().default_provisioner_name = provisioner.NAME
    starts: dict[str, list[float]] = {m: [] for m in modes}
    trips: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "lab").mkdir()
        (root / "runtime").mkdir()
        for r in range(rounds):
            for mode in modes if r % 2 == 0 else list(reversed(modes)):
                start, round_trips = await one_kernel(root, mode, executes)
                starts[mode].append(start)
                trips[mode] += round_trips
    print(f"kernels: {rounds} rounds per mode, {executes} executes per kernel, modes alternating")
    for mode in modes:
        print(f"  {mode:<8} start   {spread(starts[mode])}")
        print(f"  {mode:<8} execute {spread(trips[mode])}")
    for mode in modes[1:]:
        ratio = [s / n for s, n in zip(starts[mode], starts[isolation.NONE], strict=True)]
        print(f"  {mode} / none: start {statistics.median(ratio):.2f}x (rounds "
              f"{', '.join(f'{x:.2f}' for x in ratio)}), execute "
              f"{statistics.median(trips[mode]) / statistics.median(trips[isolation.NONE]):.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
