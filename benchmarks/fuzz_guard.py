"""A longer run of the guard's property test: random edits, random rights.

The model is tests/unit/test_guard_properties.py (clients with random rights editing
one room through its DocumentGuard; after every step: replicas converge, the protected
cell is as authorized, no refused content remains anywhere).  ``./dev test`` runs a
bounded number of examples; this runs as many as asked, from a seed, and prints the
smallest failing example hypothesis finds.

    .venv/bin/python benchmarks/fuzz_guard.py --examples 5000 --seed 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.unit.test_guard_properties import roles_strategy, run, steps_strategy  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="examples to generate")
    parser.add_argument("--seed", type=int, default=0, help="random seed (runs are repeatable)")
    parser.add_argument("--steps", type=int, default=60, help="most steps in one example")
    args = parser.parse_args()

    steps = steps_strategy if args.steps == 30 else _longer(args.steps)

    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, database=None, print_blob=True,
              phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(roles=roles_strategy, steps=steps)
    def fuzz(roles: list[str], steps: list[tuple[str, int, int, int]]) -> None:
        run(roles, steps)

    started = time.perf_counter()
    fuzz()
    elapsed = time.perf_counter() - started
    print(f"fuzz_guard: {args.examples} examples (seed {args.seed}, up to {args.steps} steps) "
          f"passed in {elapsed:.1f} s")


def _longer(most: int):  # type: ignore[no-untyped-def]
    from hypothesis import strategies as st

    from tests.unit.test_guard_properties import step_strategy

    return st.lists(step_strategy, max_size=most)


if __name__ == "__main__":
    main()
