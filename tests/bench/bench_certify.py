"""`simcity certify` figures on the local stack: wall time of a matrix (the shipped default: 6 seeds
x 5 profiles x 50 actions, 30 runs) with --jobs 1 vs --jobs 2 against the correct app, and the time
`simcity shrink` takes to cut a mutant's failing 50-action schedule down.

`SIMCITY_BENCH_MATRIX=smoke` (or a TOML path) times another matrix."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console

from harness.certify import Certifier, CertifyPlan
from harness.matrix import load_matrix
from harness.runinfo import RunInfo
from harness.runner import RunConfig, run_sc1
from harness.shard import WHOLE
from harness.shrink import NotReproducedError, shrink_run
from harness.stacks.local import LocalStack

SHRINK_SEEDS = ["sc1-3", "sc1-4", "sc1-6", "sc1-1", "sc1-5"]


def certify_wall(matrix_name: str, jobs: int) -> None:
    matrix = load_matrix(matrix_name)
    env = {"BOOKING_STRATEGY": "atomic"}
    with tempfile.TemporaryDirectory(prefix="bench-certify-") as out:
        plan = CertifyPlan(matrix, WHOLE, "local", env, Path(out), jobs, lambda: LocalStack(env))
        started = time.monotonic()
        cert = Certifier(plan, Console(quiet=True)).run()
        wall = time.monotonic() - started
    counts = cert.counts()
    run_walls = [r.wall_s for r in cert.runs if r.status.value != "ERROR"]
    cov = cert.coverage()
    print(f"certify {matrix.name} ({len(matrix)} runs x {matrix.iterations} actions), --jobs {jobs}: "
          f"wall {wall:6.1f} s, verdict {cert.status.value} ({counts['pass']} PASS, {counts['fail']} FAIL, "
          f"{counts['error']} ERROR), run median {statistics.median(run_walls):.1f} s, "
          f"crashes {cov['crashes']} (between commit and answer {cov['crash_points']['after_commit_before_answer']}, before commit {cov['crash_points']['before_commit']})", flush=True)


def shrink_time(strategy: str) -> None:
    env = {"BOOKING_STRATEGY": strategy}
    with LocalStack(env) as stack:
        for seed in SHRINK_SEEDS:
            result = run_sc1(stack, RunConfig(seed=seed, iterations=50))
            if result.verdict.primary is not None:
                break
        else:
            print(f"shrink {strategy}: no failure in {len(SHRINK_SEEDS)} seeds", flush=True)
            return
        primary = result.verdict.primary
        first = result.verdict.first_violation
        info = RunInfo(seed, 50, "default", "local", result.schedule, env)
        started = time.monotonic()
        try:
            shrunk = shrink_run(stack, info, primary.name.value, result.history,
                                first.index if first else None, budget_runs=100, budget_s=600)
        except NotReproducedError as exc:
            print(f"shrink {strategy} {seed}: {exc}", flush=True)
            return
        wall = time.monotonic() - started
    print(f"shrink {strategy} {seed} {primary.name.value}: 50 -> {len(shrunk.shrunk)} steps "
          f"({', '.join(map(str, shrunk.shrunk.steps))}) in {wall:.1f} s, {shrunk.runs} runs, "
          f"{shrunk.trials} candidates{f', stopped by the {shrunk.stopped_by}' if shrunk.stopped_by else ''}",
          flush=True)


def main() -> None:
    matrix = os.environ.get("SIMCITY_BENCH_MATRIX", "default")
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}", flush=True)
    for jobs in (1, 2):
        certify_wall(matrix, jobs)
    for strategy in ("racy", "split_tx"):
        shrink_time(strategy)


if __name__ == "__main__":
    main()
