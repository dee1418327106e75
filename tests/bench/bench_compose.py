"""SC-1 figures on the Docker Compose stack (`python -m tests.bench compose`):

- warm `simcity sc1 --stack compose --iterations 50`: the whole command (stack up, run, down) and
  the run alone, over a few runs;
- app container restart-to-healthy (SIGKILL, start, /health 200) p50/p99 over ~15 crashes;
- real packet loss: /health through the proxy with and without the drops profile's loss on
  client-app (latency, timeouts, packets the kernel dropped);
- the detection table of bench_sc1, on the Compose stack (SIMCITY_BENCH_SEEDS seeds, default 5).

Cold costs (engine install, image build) are measured by compose/ci-setup.sh and images/build.sh,
which print their stage timings; compose/README.md keeps the figures.
Skipped, with a message, when no Docker engine answers."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from harness.expectations import MUTANTS
from harness.history import Hop
from harness.stacks.select import compose_available
from tests.bench.bench_sc1 import detection
from tests.bench.stats import percentile

ROOT = Path(__file__).resolve().parents[2]
WARM_RUNS = 3
CRASHES = 15
PROBES = 60


def warm_cli() -> None:
    totals, runs = [], []
    for n in range(WARM_RUNS):
        started = time.monotonic()
        done = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "simcity"), "sc1", "--stack", "compose", "--seed", "sc1-1",
             "--iterations", "50", "--json", "--report-dir", f"/tmp/simcity-bench-compose-{n}"],
            capture_output=True, text=True, timeout=600, cwd=ROOT)
        total = time.monotonic() - started
        if done.returncode not in (0, 1):
            print(f"run {n + 1}: exit {done.returncode}: {done.stderr.strip()[-400:]}", flush=True)
            continue
        summary = json.loads(done.stdout)
        totals.append(total)
        runs.append(summary["wall_s"])
        print(f"run {n + 1}: `simcity sc1 --stack compose --iterations 50` {total:.2f} s "
              f"(run alone {summary['wall_s']:.2f} s, {summary['crashes']} crashes, "
              f"verdict {summary['verdict']['valid']})", flush=True)
    if totals:
        print(f"warm 50 iterations: median {statistics.median(totals):.2f} s whole command "
              f"(up + run + down), {statistics.median(runs):.2f} s run alone", flush=True)


def restarts_and_loss() -> None:
    from harness.stacks.compose import ComposeStack  # noqa: PLC0415

    with ComposeStack({"BOOKING_STRATEGY": "atomic"}) as stack:
        took = [stack.restart_app() for _ in range(CRASHES)]
        print(f"app container restart-to-healthy over {len(took)} crashes (APP_WORKERS default 2): "
              f"p50 {statistics.median(took):.2f} s, p99 {percentile(took, 0.99):.2f} s, "
              f"min {min(took):.2f} s", flush=True)

        url = f"{stack.endpoints.app_url}/health"

        def probe(label: str) -> None:
            times, failures = [], 0
            with httpx.Client(timeout=2.0, limits=httpx.Limits(max_keepalive_connections=0)) as client:
                for _ in range(PROBES):
                    started = time.monotonic()
                    try:
                        ok = client.get(url).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    if ok:
                        times.append((time.monotonic() - started) * 1000)
                    else:
                        failures += 1
            p50 = f"{statistics.median(times):.1f}" if times else "-"
            p90 = f"{percentile(times, 0.9):.1f}" if times else "-"
            print(f"  {label:<28} {PROBES} requests: p50 {p50} ms, p90 {p90} ms, "
                  f"failed/timed out (2 s) {failures}", flush=True)

        print("/health through the proxy, a new connection each:", flush=True)
        probe("no loss")
        stack.packet_loss(Hop.CLIENT_APP, 0.2)
        probe("20% packet loss client-app")
        dropped = stack.dropped_packets().get("client-app", 0)
        stack.packet_loss(Hop.CLIENT_APP, None)
        print(f"  packets dropped by the kernel under the rule: {dropped}; rules after heal: "
              f"{len(stack.loss_rules())}", flush=True)


def restarts_one_worker() -> None:
    from harness.stacks.compose import ComposeStack  # noqa: PLC0415

    with ComposeStack({"BOOKING_STRATEGY": "atomic", "APP_WORKERS": "1"}) as stack:
        took = [stack.restart_app() for _ in range(CRASHES)]
    print(f"the same with APP_WORKERS=1: p50 {statistics.median(took):.2f} s, "
          f"p99 {percentile(took, 0.99):.2f} s, min {min(took):.2f} s", flush=True)


def main() -> None:
    if not compose_available():
        print("bench_compose: skipped, no Docker engine answers (`bash compose/ci-setup.sh` sets one up)")
        return
    from harness.stacks.compose import ComposeStack  # noqa: PLC0415

    only = [a for a in sys.argv[1:] if a in MUTANTS or a == "atomic"]
    if not only:
        warm_cli()
        restarts_and_loss()
        restarts_one_worker()
    seeds = [f"sc1-{n}" for n in range(1, int(os.environ.get("SIMCITY_BENCH_SEEDS", "5")) + 1)]
    print(f"detection on the Compose stack, {len(seeds)} seeds x 50 iterations:", flush=True)
    detection(only or ["atomic", *MUTANTS], ComposeStack, seeds)


if __name__ == "__main__":
    main()
