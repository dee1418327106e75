"""SC-1 figures on the local stack: wall time for 50 and 500 iterations, the harness's own cost
per action (waits excluded), restart-to-healthy, and the detection table (each mutant x 20 seeds at
the gate's defaults, racy also at wider windows: caught, median actions until the first violation;
atomic must have zero FAILs). Targets: every mutant caught on >= 19 of 20 seeds, median <= 10.
Then the same table, on fewer seeds, in the soak's other settings (bench_soak.SETTINGS: REST and
the database far away, as a hosted Supabase project is; two CPU hogs): a mutant that passes there
is a PASS of a broken app where users run SimCity."""

from __future__ import annotations

import functools
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence

from harness.expectations import EXPECTED_CATCH, MUTANTS
from harness.shrink import steps_until_break
from harness.runner import RunConfig, RunResult, run_sc1
from harness.stacks.base import Stack
from harness.stacks.local import LocalStack
from tests.bench.bench_soak import SETTINGS, load_of
from tests.bench.stats import percentile

SEEDS = [f"sc1-{n}" for n in range(1, 21)]
# Makes a stack for an app environment; the detection table runs on any (local, Compose).
StackFactory = Callable[[Mapping[str, str]], Stack]


def actions_until_break(result: RunResult) -> int:
    """Schedule steps performed up to the first violation (every step, if it broke settling)."""
    first = result.verdict.first_violation
    steps = steps_until_break(result.history, first.index if first else None)
    return steps if steps is not None else len(result.schedule)



def timing() -> None:
    with LocalStack({"BOOKING_STRATEGY": "atomic"}) as stack:
        restarts: list[float] = []
        for iterations in (50, 500):
            started = time.monotonic()
            result = run_sc1(stack, RunConfig(seed="sc1-1", iterations=iterations))
            wall = time.monotonic() - started
            restarts += result.restart_seconds
            per_action_ms = result.harness_cpu_s / max(1, iterations) * 1000
            print(f"SC-1 {iterations:>3} iterations: wall {wall:6.2f} s, verdict {'PASS' if result.verdict.passed else 'FAIL'}, "
                  f"crashes {result.crashes}, harness cost {per_action_ms:.2f} ms CPU/action (waits excluded)", flush=True)
        print(f"restart-to-healthy over {len(restarts)} crashes: p50 {statistics.median(restarts):.2f} s, "
              f"p99 {percentile(restarts, 0.99):.2f} s")


# The slots of `make chaos` and the shipped certify matrices (README: why).
GATE_SLOTS = 4
# racy's window is its own round trips by default; these widen it, to show the curve.
RACY_WINDOWS_MS = (2, 10)


# Seeds per strategy in the settings beyond the local stack (a far run takes ~8 s).
SETTING_SEEDS = 8


def detection(strategies: list[str], stack_factory: StackFactory = LocalStack,
              seeds: Sequence[str] = SEEDS, slots: int = GATE_SLOTS, setting: str = "local") -> None:
    """Each strategy (and racy at wider windows) x seeds x 50 iterations, `slots` slots: caught,
    whether the headline is the right invariant, median actions to the first violation."""
    print(f"detection ({setting}): {len(seeds)} seeds x 50 iterations, --slots {slots}, profile default", flush=True)
    print(f"{'strategy':<18} {'caught':>8} {'right inv.':>10} {'median actions':>15}  first violations", flush=True)
    cells = [(s, {}) for s in strategies]
    if "racy" in strategies:
        cells += [("racy", {"MUTANT_WINDOW_MS": str(ms)}) for ms in RACY_WINDOWS_MS]
    for strategy, extra_env in cells:
        caught, right, actions, names = 0, 0, [], {}
        with stack_factory({"BOOKING_STRATEGY": strategy, **extra_env}) as stack:
            for seed in seeds:
                result = run_sc1(stack, RunConfig(seed=seed, iterations=50, slots=slots))
                first = result.verdict.primary
                if first is None:
                    continue
                caught += 1
                right += first.name in EXPECTED_CATCH.get(strategy, ())
                actions.append(actions_until_break(result))
                names[first.name.value] = names.get(first.name.value, 0) + 1
        median = f"{statistics.median(actions):.0f}" if actions else "-"
        label = strategy + (f"@{extra_env['MUTANT_WINDOW_MS']}ms" if extra_env else "")
        print(f"{label:<18} {caught:>5}/{len(seeds):<2} {right:>7}/{caught:<2} {median:>15}  {names}", flush=True)


def main() -> None:
    only = [a for a in sys.argv[1:] if a in MUTANTS or a == "atomic"]
    if not only:
        timing()
    strategies = only or ["atomic", *MUTANTS]
    detection(strategies)
    for setting, distance in SETTINGS.items():
        if setting != "local":
            with load_of(setting):
                detection(strategies, functools.partial(LocalStack, distance=distance), seeds=SEEDS[:SETTING_SEEDS],
                          setting=setting)


if __name__ == "__main__":
    main()
