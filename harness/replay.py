"""`simcity replay REPORT_DIR`: rerun a recorded run's exact schedule (from its run.json) on a fresh
stack with the same app environment, and say whether the same verdict came back.

Reproduced means: a recorded PASS passes again, or a recorded FAIL fails again with the same
primary (headline) violation name. Timing is not recorded, so a replay can differ; `tries` reruns up
to that many times and stops at the first reproduction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.checker import Verdict
from harness.report import write_report
from harness.runinfo import RecordedRun, RunInfo, write_run_info
from harness.runner import ProgressCallback, RunConfig, RunResult, run_sc1
from harness.stacks.base import Stack


def verdict_label(valid: str, primary: str | None) -> str:
    return f"FAIL {primary}" if valid == "FAIL" else valid


def label_of(verdict: Verdict) -> str:
    return verdict_label(verdict.valid.value, verdict.primary.name.value if verdict.primary else None)


def reproduces(recorded: RecordedRun, verdict: Verdict) -> bool:
    return label_of(verdict) == verdict_label(recorded.valid, recorded.primary)


def config_for(info: RunInfo) -> RunConfig:
    return RunConfig(seed=info.seed, iterations=len(info.schedule), profile=info.profile, schedule=info.schedule,
                     slots=info.slots)


@dataclass
class ReplayOutcome:
    recorded: RecordedRun
    results: list[RunResult] = field(default_factory=list)
    report_dirs: list[Path] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        return any(reproduces(self.recorded, r.verdict) for r in self.results)


def replay(recorded: RecordedRun, stack: Stack, *, tries: int, out: Path, app_env: Mapping[str, str],
           replay_command: str, progress: Callable[[int], ProgressCallback | None] | None = None,
           secrets: tuple[str, ...] = ()) -> ReplayOutcome:
    """Rerun on a started stack up to `tries` times; the deciding try's report (with run.json) in `out`."""
    outcome = ReplayOutcome(recorded)
    info = recorded.info
    for attempt in range(1, tries + 1):
        result = run_sc1(stack, config_for(info), progress(attempt) if progress else None)
        directory = out  # the deciding try's report: the first reproduction, else the last try
        again = RunInfo(info.seed, info.iterations, info.profile, stack.kind, info.schedule, dict(app_env),
                        slots=info.slots, external=info.external)
        write_report(directory, result.history, result.verdict, replay_command=replay_command, secrets=secrets,
                     run=again)
        write_run_info(directory, again, secrets)
        outcome.results.append(result)
        outcome.report_dirs.append(directory)
        if reproduces(recorded, result.verdict):
            break
    return outcome
