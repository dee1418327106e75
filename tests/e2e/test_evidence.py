"""Three verdicts and evidence that is never lost, on the real local stack.

A frozen app (SIGSTOP: it holds its sockets and answers nothing) makes the settle phase's answers
unknown: INCONCLUSIVE, never FAIL. REST killed mid-run and Ctrl-C of `simcity sc1` each still leave
the history so far and the verdict so far in the report dir."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.checker import Validity
from harness.errors import RestUnreachableError, StackStartError
from harness.generator import Schedule, Step
from harness.history import Action, OpKind
from harness.runner import RunConfig, RunResult, run_sc1
from harness.stacks.local import LocalStack
from harness.stacks.reaper import marked_processes
from tests.leftovers import alive, booking_app_masters, private_tmpdir

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack({"BOOKING_STRATEGY": "atomic"}) as started:
        yield started


def _schedule(*steps: str) -> Schedule:
    return Schedule(tuple(Step.parse(s) for s in steps), "evidence", "calm")


def _group_of(stack: LocalStack, name: str) -> int:
    pid = next(p.pid for p in stack._processes if p.name.startswith(name) and p.pid)  # noqa: SLF001 - test access
    return os.getpgid(pid)


def test_a_frozen_app_while_settling_is_inconclusive_not_fail(stack: LocalStack) -> None:
    app_group = _group_of(stack, "booking-app")

    def freeze_after_last_step(done: int, total: int, step: str) -> None:
        if done == total:
            os.killpg(app_group, signal.SIGSTOP)

    config = RunConfig(seed="frozen", iterations=2, profile="calm", schedule=_schedule("no_op()", "no_op()"),
                       settle_timeout_s=1.0, settle_attempts=2, request_timeout_s=0.3)
    try:
        result = run_sc1(stack, config, freeze_after_last_step)
    finally:
        os.killpg(app_group, signal.SIGCONT)
    verdict = result.verdict
    assert verdict.valid is Validity.INCONCLUSIVE, verdict
    assert verdict.violations == ()
    assert "settle phase" in (verdict.reason or "") and "not healthy" in (verdict.reason or "")
    settle_answers = [op for op in result.history.ops if op.action is Action.RETRY_BOOK and op.kind is not OpKind.INVOKE]
    assert settle_answers and all(op.kind is OpKind.INFO for op in settle_answers)


def test_rest_lost_mid_run_hands_over_the_history_so_far() -> None:
    with LocalStack({"BOOKING_STRATEGY": "atomic"}) as own:
        rest_group = _group_of(own, "simcity-rest")
        saved: list[RunResult] = []

        def kill_rest(done: int, total: int, step: str) -> None:
            if done == 2:
                os.killpg(rest_group, signal.SIGKILL)

        config = RunConfig(seed="rest-lost", iterations=4, profile="calm",
                           schedule=_schedule("send_book(A)", "send_book(B)", "no_op()", "no_op()"))
        with pytest.raises(RestUnreachableError):
            run_sc1(own, config, kill_rest, on_stop=saved.append)
    [partial] = saved
    assert partial.verdict.valid is Validity.INCONCLUSIVE
    assert partial.verdict.reason and partial.verdict.reason.startswith("infrastructure trouble: REST")
    failed_read = partial.history.ops[-1]
    assert failed_read.action is Action.SNAPSHOT and failed_read.kind is OpKind.INFO and failed_read.details.error
    assert partial.verdict.snapshots_checked == 3  # the first read and one after each step before the kill


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_leaves_the_run_so_far_and_nothing_running(tmp_path: Path, signum: int) -> None:
    report = tmp_path / "report"
    private_tmp = private_tmpdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "sc1", "--stack", "local", "--profile", "calm", "--iterations", "400",
         "--seed", "ctrl-c", "--report-dir", str(report)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(private_tmp)})
    try:
        until_the_run_begins(proc)
        time.sleep(2.0)
        started = psutil.Process(proc.pid).children(recursive=True)
        ports = {c.laddr.port for p in started for c in _listening(p)}
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, err
    assert f"simcity: stopped by {name}; stack stopped and faults healed" in err
    verdict = json.loads((report / "verdict.json").read_text())
    assert verdict["valid"] == "INCONCLUSIVE" and f"stopped by {name}" in verdict["reason"]
    history = (report / "history.jsonl").read_text().splitlines()
    assert json.loads(history[0])["version"] == 2 and len(history) > 5
    assert "the run so far (INCONCLUSIVE) is saved" in err
    # Nothing of the run is left: no process, no listening port, no temp dir.
    assert len(started) >= 5  # PostgreSQL, REST, proxy and the app's processes were running
    assert [p.pid for p in started if alive(p)] == [] and _marked_by(proc.pid) == []
    assert ports and not ports & {c.laddr.port for c in psutil.net_connections("tcp") if c.status == "LISTEN"}
    left = list(private_tmp.iterdir())
    private_tmp.rmdir() if not left else None
    assert left == []


def test_a_stop_signal_during_the_settle_phase_leaves_the_run_so_far_and_nothing_running(tmp_path: Path) -> None:
    # The settle phase made long for real: REST 3 s away (each read takes that long, so the first
    # read and the one step's end about 6 s in) and the app frozen (SIGSTOP) 2 s in, once the
    # fixtures exist, so the settle phase waits up to 30 s for a healthy app. SIGTERM at 14 s
    # lands inside it, with margins of seconds on both sides.
    report = tmp_path / "report"
    private_tmp = private_tmpdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "sc1", "--stack", "local", "--profile", "calm", "--steps", "no_op()",
         "--distance", "rest=3000", "--seed", "settle-stop", "--report-dir", str(report)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(private_tmp)})
    try:
        until_the_run_begins(proc)
        began = time.monotonic()
        started = psutil.Process(proc.pid).children(recursive=True)
        masters = booking_app_masters(proc.pid)
        app = [*masters, *(child for master in masters for child in master.children(recursive=True))]
        time.sleep(max(0.0, 2.0 - (time.monotonic() - began)))
        for process in app:
            process.suspend()
        time.sleep(max(0.0, 14.0 - (time.monotonic() - began)))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "simcity: stopped by SIGTERM; stack stopped and faults healed" in err
    assert "the run so far (INCONCLUSIVE) is saved" in err, err
    ops = [json.loads(line) for line in (report / "history.jsonl").read_text().splitlines()[1:]]
    settle = [op for op in ops if op["action"] == "settle"]
    assert [op["kind"] for op in settle] == ["invoke"], "the stop must land inside the settle phase"
    assert len(app) >= 3 and [p.pid for p in started if alive(p)] == [] and _marked_by(proc.pid) == []
    left = list(private_tmp.iterdir())
    private_tmp.rmdir() if not left else None
    assert left == []


def until_the_run_begins(proc: subprocess.Popen[str]) -> None:
    """Read `simcity sc1`'s output until it describes its stack: the run has begun (bounded)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if line.startswith("SC-1 on") or time.monotonic() > deadline:
            return


def _marked_by(pid: int) -> list[int]:
    """Processes still running that the SimCity process `pid` started (PostgreSQL daemonizes, so
    it is no child: its mark in its environment says whose it is)."""
    return [p for p, mark in marked_processes() if mark.startswith(f"{pid}:")]


def _listening(process: psutil.Process) -> list:  # type: ignore[type-arg]
    try:
        return [c for c in process.net_connections("tcp") if c.status == "LISTEN"]
    except psutil.Error:
        return []



def test_an_unusable_report_dir_is_refused_before_the_stack_starts(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "harness", "sc1", "--stack", "local",
                           "--report-dir", str(blocker / "report")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"simcity: error: report dir {blocker / 'report'}: {blocker} is not a directory"]
    assert "SC-1 on" not in proc.stdout and time.monotonic() - started < 20


def test_what_a_killed_run_left_is_found_by_its_mark_and_stopped(tmp_path: Path) -> None:
    private_tmp = private_tmpdir()
    env = {**os.environ, "TMPDIR": str(private_tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "sc1", "--stack", "local", "--profile", "calm", "--iterations", "400",
         "--seed", "kill-9", "--report-dir", str(tmp_path / "report")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        until_the_run_begins(proc)
        left = psutil.Process(proc.pid).children(recursive=True)
        owner = proc.pid
        proc.kill()  # kill -9: no cleanup at all
        proc.wait(timeout=30)
        assert len(left) >= 5  # PostgreSQL's pg_ctl, REST, the proxy and the app's processes
        # Its services keep serving, marked as its own (unless another SimCity run on this machine
        # already swept them up at its start, as it should).
        down = subprocess.run([sys.executable, "-m", "harness", "stack", "down", "--all"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, env=env)
        assert down.returncode == 0, down.stderr
        assert re.search(r"stopped \d+ process\(es\) left by SimCity runs that were killed", down.stdout), down.stdout
        deadline = time.monotonic() + 10
        while (any(alive(p) for p in left) or _marked_by(owner)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [p.pid for p in left if alive(p)] == [] and _marked_by(owner) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(private_tmp, ignore_errors=True)


def test_a_planted_state_file_kills_and_deletes_nothing(tmp_path: Path) -> None:
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    keep = tmp_path / "precious"
    keep.mkdir()
    try:
        state = tmp_path / ".simcity"
        state.mkdir()
        (state / "stack.json").write_text(json.dumps({
            "process_groups": [victim.pid], "mark": f"owner-{victim.pid}", "root": str(keep),
            "pg_ctl": "/bin/false", "pg_data": str(keep), "pg_user": "root"}))
        down = subprocess.run([sys.executable, "-m", "harness", "stack", "down"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert down.returncode == 0, down.stderr
        assert victim.poll() is None and keep.is_dir()
    finally:
        victim.kill()
        victim.wait()


def test_a_dead_database_is_named_as_such(tmp_path: Path) -> None:
    with LocalStack({"BOOKING_STRATEGY": "atomic", "APP_WORKERS": "1"}) as own:
        postgres = own._postgres  # noqa: SLF001 - test access: kill the database under the stack
        assert postgres is not None
        subprocess.run(postgres._cmd(str(postgres.bin_dir / "pg_ctl"), "-D", str(postgres.data_dir),  # noqa: SLF001
                                     "-m", "immediate", "stop"), capture_output=True, timeout=60)
        own._app.ready_timeout_s = 3.0  # noqa: SLF001 - no need to wait the full 30 s here
        with pytest.raises(StackStartError, match="PostgreSQL of the local stack is not running"):
            own.restart_app()


def test_a_stop_signal_while_the_stack_starts_leaves_nothing(tmp_path: Path) -> None:
    private_tmp = private_tmpdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "sc1", "--stack", "local", "--report-dir", str(tmp_path / "report")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(private_tmp)})
    try:
        deadline = time.monotonic() + 60
        while not list(private_tmp.glob("simcity-stack-*/pg")) and time.monotonic() < deadline:
            time.sleep(0.05)  # the stack has begun: PostgreSQL is being set up
        started = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert [p.pid for p in started if alive(p)] == [] and _marked_by(proc.pid) == []
    time.sleep(0.5)
    left = sorted(str(p.relative_to(private_tmp)) for p in private_tmp.rglob("*"))
    shutil.rmtree(private_tmp, ignore_errors=True)
    assert left == [], err
    assert not (tmp_path / "report").exists()  # no run began: nothing to report, nothing half-written
