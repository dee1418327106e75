"""`run.json`: what a report directory needs to be replayed without its command line.

Written next to history.jsonl / verdict.json by `simcity sc1` and by every run of `simcity certify`;
read back by `simcity replay` and `simcity shrink`. It holds the full schedule, so a replay does not
depend on the generator of the SimCity version that recorded the run.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from harness.errors import ScheduleError, UsageError
from harness.generator import Schedule
from harness.report import redact

RUN_FILE = "run.json"
VERDICT_FILE = "verdict.json"
FORMAT = "simcity-run/1"
REPO_ROOT = Path(__file__).resolve().parent.parent


def sc1_command(seed: str, profile: str, stack: str, app_env: Mapping[str, str] | Sequence[str], *,
                iterations: int | None = None, slots: int = 1, extra: Sequence[str] = ()) -> str:
    """The `simcity sc1` command line that runs this again; `app_env` as a mapping or KEY=VALUE pairs.
    An explicit schedule in `extra` (`--steps`, `--schedule`) is the whole run, so no `--iterations`
    goes beside it: it would mean nothing."""
    parts = ["simcity", "sc1", "--seed", seed]
    if iterations is not None and not {"--steps", "--schedule"} & set(extra):
        parts += ["--iterations", str(iterations)]
    if slots != 1:
        parts += ["--slots", str(slots)]
    parts += ["--profile", profile, "--stack", stack]
    pairs = [f"{k}={v}" for k, v in app_env.items()] if isinstance(app_env, Mapping) else list(app_env)
    for pair in pairs:
        parts += ["--app-env", pair]
    return shlex.join([*parts, *extra])


@functools.cache
def simcity_version() -> str:
    try:
        return metadata.version("simcity")
    except metadata.PackageNotFoundError:
        return "unknown"


SHA_ENV = "SIMCITY_GIT_SHA"


@functools.cache
def git_sha(root: Path = REPO_ROOT) -> str | None:
    """The commit under test: $SIMCITY_GIT_SHA when set (CI knows it; an installed SimCity has no
    checkout), else the checkout SimCity runs from (`-dirty` when it has changes), None outside git."""
    if os.environ.get(SHA_ENV):
        return os.environ[SHA_ENV]
    return checkout_sha(root)


def checkout_sha(root: Path) -> str | None:
    """HEAD of the git checkout holding `root` (`-dirty` when tracked files changed), None
    outside git."""
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha or None


@dataclass(frozen=True)
class RunInfo:
    seed: str
    iterations: int
    profile: str
    stack_kind: str
    schedule: Schedule
    app_env: Mapping[str, str] = field(default_factory=dict)
    simcity_version: str = ""
    git_sha: str | None = None
    slots: int = 1
    # The user's own app (stack kind `external`), as ExternalTarget.to_json() gives it.
    external: Mapping[str, object] = field(default_factory=dict)

    @property
    def strategy(self) -> str:
        return self.app_env.get("BOOKING_STRATEGY", "atomic")

    def to_json(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "seed": self.seed,
            "iterations": self.iterations,
            "profile": self.profile,
            "slots": self.slots,
            **({"external": dict(self.external)} if self.external else {}),
            "stack_kind": self.stack_kind,
            "app_env": dict(self.app_env),
            "schedule": self.schedule.to_json(),
            "schedule_hash": self.schedule.hash,
            "simcity_version": self.simcity_version or simcity_version(),
            "git_sha": self.git_sha if self.git_sha is not None else git_sha(),
        }

    @classmethod
    def from_json(cls, obj: object) -> "RunInfo":
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise UsageError(f"not a SimCity run description (format {FORMAT!r} expected)")
        try:
            schedule = Schedule.from_json(obj["schedule"])
            if obj.get("schedule_hash") not in (None, schedule.hash):
                raise ScheduleError(f"schedule hash mismatch: {obj['schedule_hash']} vs {schedule.hash}")
            app_env = obj.get("app_env") or {}
            if not isinstance(app_env, dict):
                raise UsageError("app_env must be an object")
            return cls(seed=str(obj["seed"]), iterations=int(obj["iterations"]), profile=str(obj["profile"]),
                       stack_kind=str(obj.get("stack_kind") or "local"), schedule=schedule,
                       app_env={str(k): str(v) for k, v in app_env.items()},
                       simcity_version=str(obj.get("simcity_version") or ""), git_sha=obj.get("git_sha"),
                       slots=int(obj.get("slots", 1)),
                       external=dict(obj["external"]) if isinstance(obj.get("external"), dict) else {})
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"bad run description: {exc!r}") from None


def write_run_info(directory: Path, info: RunInfo, secrets: Sequence[str] = ()) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RUN_FILE
    path.write_text(redact(json.dumps(info.to_json(), indent=2), secrets) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class RecordedRun:
    """A report directory read back: the run description and the recorded verdict's headline."""

    directory: Path
    info: RunInfo
    valid: str  # PASS / FAIL / INCONCLUSIVE
    primary: str | None  # the headline violation name of a FAIL
    first_index: int | None  # op index of the first violation


def read_report_dir(directory: Path) -> RecordedRun:
    """A report dir of `simcity sc1` or of one certify run; UsageError (one line) when unusable."""
    if not directory.is_dir():
        raise UsageError(f"{directory}: not a directory")
    run_path = directory / RUN_FILE
    if not run_path.is_file():
        raise UsageError(f"{directory}: no {RUN_FILE} (not a SimCity report dir, or written before "
                         "reports were replayable; rerun with the replay command in verdict.json)")
    info = RunInfo.from_json(_load(run_path))
    verdict = _load(directory / VERDICT_FILE)
    if not isinstance(verdict, dict) or verdict.get("valid") not in ("PASS", "FAIL", "INCONCLUSIVE"):
        raise UsageError(f"{directory / VERDICT_FILE}: no verdict (valid PASS, FAIL or INCONCLUSIVE)")
    violations = verdict.get("violations") or []
    try:
        primary = min(violations, key=lambda v: (int(v["invariant"]), int(v["index"])), default=None)
        first = min((int(v["index"]) for v in violations), default=None)
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{directory / VERDICT_FILE}: malformed violations") from None
    return RecordedRun(directory, info, verdict["valid"], primary["name"] if primary else None, first)


def _load(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON: {exc}") from None
