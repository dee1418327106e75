"""False-verdict soak of the correct app: many seeded SC-1 runs of `atomic` over six profiles in
three settings, counted per verdict. A FAIL here is a false FAIL (the app is correct); an
INCONCLUSIVE must be explained by a fault or crash the run injected itself.

Settings: the local stack as it is; REST 100 ms away and the database 15 ms from the app (a hosted
Supabase project, `LocalStack(distance=...)`); and two busy processes loading both cores. Seeds per
cell: $SIMCITY_SOAK_SEEDS (default 12: 3 settings x 6 profiles x 12 = 216 runs); slots per run:
$SIMCITY_SOAK_SLOTS (default 1, the seed's scenario; the gate's default is 4)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping

from harness.checker import Validity
from harness.errors import SimCityError
from harness.faults import FAULT_ACTIONS
from harness.history import Action, OpKind
from harness.runner import RunConfig, RunResult, run_sc1
from harness.stacks.local import LocalStack

PROFILES = ("calm", "default", "storm", "drops", "partition", "timeouts")
SETTINGS: Mapping[str, Mapping[str, int]] = {
    "local": {},
    "far (REST 100 ms, db 15 ms)": {"rest": 100, "app-db": 15},
    "busy (2 CPU hogs)": {},
}
BUSY_FOR_S = 3600  # a hog's own bound: it stops by itself even if the bench is killed


@contextlib.contextmanager
def cpu_hogs(count: int) -> Iterator[None]:
    """`count` processes spinning on the CPU, each bounded in time, all killed on exit."""
    code = f"import time\nend = time.monotonic() + {BUSY_FOR_S}\nwhile time.monotonic() < end: pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def load_of(setting: str) -> contextlib.AbstractContextManager[None]:
    """What else runs on the machine in `setting`: two CPU hogs when it is the busy one."""
    return cpu_hogs(2) if setting.startswith("busy") else contextlib.nullcontext()


def injected_trouble(result: RunResult) -> bool:
    return any(op.kind is OpKind.INVOKE and (op.action in FAULT_ACTIONS or op.action is Action.RESTART_SIMCITY)
               for op in result.history.ops)


def soak(seeds: int, slots: int = 1) -> None:
    print(f"soak: {seeds} seeds per cell, --slots {slots}", flush=True)
    print(f"{'setting':<28} {'profile':<10} {'runs':>4} {'PASS':>5} {'FAIL':>5} {'INC.':>5} "
          f"{'unexpl.':>7} {'ERROR':>5} {'wall/run':>9}", flush=True)
    totals: Counter[str] = Counter()
    notes: list[str] = []
    for setting, distance in SETTINGS.items():
        with load_of(setting), LocalStack({"BOOKING_STRATEGY": "atomic"}, distance=distance) as stack:
            for profile in PROFILES:
                counts: Counter[str] = Counter()
                started = time.monotonic()
                for n in range(1, seeds + 1):
                    seed = f"soak-{n}"
                    try:
                        result = run_sc1(stack, RunConfig(seed=seed, iterations=50, profile=profile, slots=slots))
                    except SimCityError as exc:
                        counts["ERROR"] += 1
                        notes.append(f"{setting} {profile} {seed}: ERROR {exc}")
                        continue
                    verdict = result.verdict
                    counts[verdict.valid.value] += 1
                    if verdict.valid is Validity.FAIL:
                        notes.append(f"{setting} {profile} {seed}: FAIL {verdict.primary.message if verdict.primary else ''}")
                    elif verdict.valid is Validity.INCONCLUSIVE:
                        explained = injected_trouble(result)
                        counts["unexplained"] += not explained
                        notes.append(f"{setting} {profile} {seed}: INCONCLUSIVE "
                                     f"({'after injected faults' if explained else 'UNEXPLAINED'}) {verdict.reason}")
                totals.update(counts)
                wall = (time.monotonic() - started) / seeds
                print(f"{setting:<28} {profile:<10} {seeds:>4} {counts['PASS']:>5} {counts['FAIL']:>5} "
                      f"{counts['INCONCLUSIVE']:>5} {counts['unexplained']:>7} {counts['ERROR']:>5} {wall:>8.1f}s",
                      flush=True)
    runs = seeds * len(PROFILES) * len(SETTINGS)
    print(f"total: {runs} runs, PASS {totals['PASS']}, FAIL {totals['FAIL']} (target 0), INCONCLUSIVE "
          f"{totals['INCONCLUSIVE']} ({totals['unexplained']} unexplained, target 0), ERROR {totals['ERROR']}")
    for note in notes:
        print(f"  {note}")


def main() -> None:
    soak(int(os.environ.get("SIMCITY_SOAK_SEEDS", "12")), int(os.environ.get("SIMCITY_SOAK_SLOTS", "1")))


if __name__ == "__main__":
    main()
