"""Run every benchmark in turn (``./dev bench``)."""

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent
for name in ("bench_decision.py", "bench_authorize.py", "bench_guard.py", "fuzz_guard.py",
             "bench_room.py", "bench_fanout.py", "bench_lecture.py", "bench_relay.py",
             "bench_documents.py", "bench_load.py",
             "bench_kernels.py"):
    print(f"\n##### {name}", flush=True)
    sys.argv = [str(HERE / name)]
    runpy.run_path(str(HERE / name), run_name="__main__")
