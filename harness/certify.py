"""`simcity certify`: run a matrix (or one shard of it) on N isolated stacks of one kind, in
parallel, with one progress display, and produce one certificate.

Each worker thread owns one stack (its own PostgreSQL, proxy, REST and app for the local stack),
started once and reused across its runs; every run starts from a fresh fixture. A run that cannot
be carried out (the stack would not start, the proxy or REST went away) is an ERROR, never a PASS or
a FAIL; the worker then replaces its stack before its next run. Runs are bounded by the runner's own
timeouts; a worker gives up after repeated stack start failures and leaves its runs to the others.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import TaskID, TextColumn

from harness import coverage
from harness.certificate import RUNS_DIR, Certificate, RunRecord, Status, now_utc
from harness.checker import Validity, Verdict
from harness.errors import SimCityError
from harness.matrix import Matrix, RunSpec
from harness.report import redact, write_report
from harness.runinfo import RunInfo, git_sha, sc1_command, simcity_version, write_run_info
from harness.runner import RunConfig, RunResult, run_sc1
from harness.shard import Shard
from harness.stacks.base import Stack
from harness.stacks.external import ExternalTarget
from harness.terminal import progress_display

StackFactory = Callable[[], Stack]
START_FAILURES_PER_WORKER = 2  # consecutive stack start failures before a worker gives up


def max_jobs(kind: str, requested: int, runs: int, stack_class: type | None = None) -> tuple[int, str | None]:
    """How many stacks to run side by side, and why fewer than asked (None when as asked).

    Local stacks are isolated (own ports, own data dirs), so are Compose stacks (one project each,
    published ports chosen by the engine); another kind runs in parallel only if its class says
    `parallel_safe = True`. Never more than the machine's CPUs, nor than there are runs."""
    cpus = os.cpu_count() or 1
    jobs = max(1, min(requested, runs or 1))
    reason = None
    parallel_ok = kind in ("local", "compose") or bool(getattr(stack_class, "parallel_safe", False))
    if jobs > 1 and not parallel_ok:
        return 1, f"the {kind} stack cannot run several isolated instances: 1 job"
    if jobs > cpus:
        jobs, reason = cpus, f"capped at {cpus} jobs (CPUs of this machine)"
    return jobs, reason


def target_identity(kind: str, app_env: Mapping[str, str], stack: Stack | None = None,
                    external: ExternalTarget | None = None) -> dict[str, object]:
    """What a certificate certifies; shards merge only when these are equal. For Compose, the
    images the stack ran (repo digest, else image id) per service, read from the engine; for a
    user's own app, its address, the version the user named and its checkout's commit (the app
    environment is SimCity's reference app's, so it has none)."""
    if external is not None:
        return {"stack_kind": kind, **external.identity(), "simcity_git_sha": git_sha(),
                "simcity_version": simcity_version()}
    images = _compose_images(stack) if kind == "compose" and stack is not None else {}
    return {
        "app_strategy": app_env.get("BOOKING_STRATEGY", "atomic"),
        "app_env": dict(sorted(app_env.items())),
        "stack_kind": kind,
        "git_sha": git_sha(),
        "simcity_version": simcity_version(),
        "image_digest": images.get("app"),
        "image_digests": images,
    }


def _compose_images(stack: Stack) -> dict[str, str]:
    project = getattr(stack, "project", None)
    if not isinstance(project, str):
        return {}
    try:
        import docker  # noqa: PLC0415

        client = docker.from_env(timeout=10)
        try:
            images = {}
            for container in client.containers.list(
                    all=True, filters={"label": f"com.docker.compose.project={project}"}):
                service = container.labels.get("com.docker.compose.service", container.name)
                image = container.image
                if image is None:
                    continue
                digests = image.attrs.get("RepoDigests") or []
                images[service] = digests[0] if digests else image.id
            return dict(sorted(images.items()))
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - an identity detail, never a reason to fail the gate
        return {}


@dataclass
class CertifyPlan:
    matrix: Matrix
    shard: Shard
    kind: str
    app_env: Mapping[str, str]
    out: Path
    jobs: int = 1
    factory: StackFactory | None = None
    specs: Sequence[RunSpec] = field(default_factory=tuple)
    external: ExternalTarget | None = None  # the user's own app (kind `external`)

    def __post_init__(self) -> None:
        if not self.specs:
            self.specs = self.shard.select(self.matrix.runs())


# How long an interrupted certify waits for its workers to finish their runs and stop their stacks.
STOP_TIMEOUT_S = 300.0


class Certifier:
    def __init__(self, plan: CertifyPlan, console: Console) -> None:
        assert plan.factory is not None
        self.plan = plan
        self.console = console
        self.todo: queue.Queue[RunSpec] = queue.Queue()
        for spec in plan.specs:
            self.todo.put(spec)
        self.records: dict[str, RunRecord] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.identity: dict[str, object] | None = None
        self.secrets: set[str] = set()
        self.last_start_error: str | None = None
        self.open_stacks: set[Stack] = set()  # started and not yet stopped, by any worker
        self.progress = progress_display(TextColumn("{task.fields[label]:<8}"), bar_width=24, console=console,
                                         disable=not console.is_terminal)

    def run(self) -> Certificate:
        started = time.monotonic()
        total = len(self.plan.specs)
        with self.progress:
            self.overall = self.progress.add_task(f"shard {self.plan.shard}", total=total, label="certify")
            threads = [threading.Thread(target=self.worker, args=(n,), name=f"certify-{n}", daemon=True)
                       for n in range(1, self.plan.jobs + 1)]
            for thread in threads:
                thread.start()
            try:
                while any(t.is_alive() for t in threads):
                    for thread in threads:
                        thread.join(timeout=0.2)
            except KeyboardInterrupt:
                self.stop.set()
                self.console.print("interrupted: finishing the runs in progress, then stopping the stacks")
                # Until every worker has stopped its stack: a join that a signal cut short is
                # joined again (an early return here let the process exit mid-cleanup).
                deadline = time.monotonic() + STOP_TIMEOUT_S
                while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
                    for thread in threads:
                        thread.join(timeout=0.5)
                # Whatever a worker did not get to stop (it died mid-cleanup, or the deadline
                # passed) is stopped here: every stack this certify started goes down with it.
                for stack in list(self.open_stacks):
                    stack.close()
                raise
        records = []
        for spec in self.plan.specs:
            record = self.records.get(spec.id)
            if record is None:
                why = self.last_start_error or "no worker was left to carry it out"
                record = RunRecord(spec.seed, spec.profile, spec.iterations, Status.ERROR,
                                   error=f"not run: {why}")
            records.append(record)
        identity = self.identity or target_identity(self.plan.kind, self.plan.app_env,
                                                              external=self.plan.external)
        return Certificate(target=identity, matrix=self.plan.matrix, runs=tuple(records),
                           shard=str(self.plan.shard), created_at=now_utc(),
                           wall_s=time.monotonic() - started, jobs=self.plan.jobs)

    # -- one worker: one stack, many runs ----------------------------------------------------------

    def worker(self, number: int) -> None:
        label = f"job {number}"
        task = self.progress.add_task("starting", total=None, label=label)
        stack: Stack | None = None
        start_failures = 0
        try:
            while not self.stop.is_set():
                try:
                    spec = self.todo.get_nowait()
                except queue.Empty:
                    return
                if stack is None:
                    # reset: a job's clock counts what it is doing now (a stack start, then each run)
                    self.progress.reset(task, description="starting a stack", total=None, completed=0)
                    began = time.monotonic()
                    try:
                        stack = self._start_stack()
                        start_failures = 0
                    except Exception as exc:  # noqa: BLE001 - any failure to start is infrastructure
                        stack = None
                        start_failures += 1
                        self.last_start_error = f"stack did not start: {_short(exc)}"
                        if start_failures >= START_FAILURES_PER_WORKER:
                            self.todo.put(spec)  # another worker may still have a stack
                            self.console.print(f"{label}: giving up after {start_failures} stack start "
                                               f"failures: {self.last_start_error}", markup=False)
                            return
                        self._finish(spec, RunRecord(spec.seed, spec.profile, spec.iterations, Status.ERROR,
                                                     wall_s=time.monotonic() - began, error=self.last_start_error,
                                                     worker=number))
                        continue
                record = self._one_run(stack, spec, number, task)
                if record.status is Status.ERROR:
                    # The stack may be what broke: the next run gets a fresh one.
                    stack.close()
                    self.open_stacks.discard(stack)
                    stack = None
                self._finish(spec, record)
        finally:
            if stack is not None:
                stack.close()
                self.open_stacks.discard(stack)
            self.progress.update(task, visible=False)

    def _start_stack(self) -> Stack:
        assert self.plan.factory is not None
        stack = self.plan.factory()
        self.open_stacks.add(stack)
        try:
            stack.__enter__()
        except BaseException:
            self.open_stacks.discard(stack)  # a start that fails cleans up after itself
            raise
        with self.lock:
            self.secrets.add(stack.endpoints.service_key)
            if self.identity is None:
                self.identity = target_identity(self.plan.kind, self.plan.app_env, stack, self.plan.external)
        return stack

    def _one_run(self, stack: Stack, spec: RunSpec, worker: int, task: TaskID) -> RunRecord:
        self.progress.reset(task, description=f"{spec.id}", total=spec.iterations, completed=0)

        def on_step(done: int, total: int, step: str) -> None:
            self.progress.update(task, completed=done, total=total, description=f"{spec.id} {step}")

        config = run_config(spec, self.plan.matrix.slots)
        started = time.monotonic()
        partial: list[str] = []  # the report of a run stopped half-way: evidence is never lost
        try:
            result = run_sc1(stack, config, on_step,
                             on_stop=lambda so_far: partial.append(self._write_run_report(spec, so_far, stack)))
        except Exception as exc:  # noqa: BLE001 - SimCityError or a bug: either way no verdict
            return RunRecord(spec.seed, spec.profile, spec.iterations, Status.ERROR,
                             wall_s=time.monotonic() - started, error=_short(exc), worker=worker,
                             report=partial[0] if partial else None)
        report = self._write_run_report(spec, result, stack)
        primary, first = result.verdict.primary, result.verdict.first_violation
        if result.verdict.valid is Validity.INCONCLUSIVE:
            # Not carried out: no verdict on the product either way.
            return RunRecord(spec.seed, spec.profile, spec.iterations, Status.ERROR,
                             schedule_hash=result.schedule.hash, report=report, wall_s=result.wall_s,
                             error=f"INCONCLUSIVE: {result.verdict.reason}", worker=worker,
                             coverage=coverage.of_history(result.history))
        return RunRecord(
            spec.seed, spec.profile, spec.iterations,
            Status.PASS if result.verdict.passed else Status.FAIL,
            schedule_hash=result.schedule.hash,
            primary=primary.name.value if primary else None,
            first_violation=f"{first.name.value} at op {first.index}" if first else None,
            winner=winners(result.verdict), report=report, wall_s=result.wall_s, worker=worker,
            coverage=coverage.of_history(result.history),
        )

    def _write_run_report(self, spec: RunSpec, result: RunResult, stack: Stack) -> str:
        relative = f"{RUNS_DIR}/{spec.dirname}"
        directory = self.plan.out / relative
        secrets = sorted(self.secrets)
        info = RunInfo(spec.seed, spec.iterations, spec.profile, stack.kind, result.schedule, dict(self.plan.app_env),
                       slots=self.plan.matrix.slots,
                       external=self.plan.external.to_json() if self.plan.external else {})
        write_report(directory, result.history, result.verdict,
                     replay_command=replay_sc1_command(spec, stack.kind, self.plan.app_env, self.plan.matrix.slots,
                                                        self.plan.external),
                     secrets=secrets, run=info)
        write_run_info(directory, info, secrets)
        return relative

    def _finish(self, spec: RunSpec, record: RunRecord) -> None:
        with self.lock:
            self.records[spec.id] = record
            done = len(self.records)
        self.progress.advance(self.overall)
        detail = record.primary or record.error or ""
        style = {Status.PASS: "green", Status.FAIL: "bold red", Status.ERROR: "yellow"}[record.status]
        line = (f"[{done}/{len(self.plan.specs)}] {spec.id:<24} [{style}]{record.status.value}[/]"
                f" {record.wall_s:5.1f} s {redact(detail, sorted(self.secrets))}")
        self.progress.console.print(line, highlight=False)


def run_config(spec: RunSpec, slots: int) -> RunConfig:
    """How one cell of the matrix is run."""
    return RunConfig(seed=spec.seed, iterations=spec.iterations, profile=spec.profile, slots=slots)


def winners(verdict: Verdict) -> str | None:
    """Who won each slot of a passing run, slot 1 first ("C1", or "C1 C2 C2 C1" with --slots)."""
    if not verdict.passed:
        return None
    return " ".join(w.value if w else "-" for _, w in verdict.outcomes)


def replay_sc1_command(spec: RunSpec, kind: str, app_env: Mapping[str, str], slots: int = 1,
                       external: ExternalTarget | None = None) -> str:
    return sc1_command(spec.seed, spec.profile, kind, app_env, iterations=spec.iterations, slots=slots,
                       extra=external.flags() if external else ())


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    kind = "" if isinstance(exc, SimCityError) else f"{type(exc).__name__}: "
    return f"{kind}{text[0] if text else type(exc).__name__}"[:300]
