"""`simcity certify` end to end on local stacks: exit 0 for the correct app (as two shards run side
by side, then merged), 1 for a mutant (two jobs), 3 when no stack can start; `certify merge`
refusals; `simcity replay` of a recorded FAIL. Tiny matrices (2 seeds x 1 profile, 30 actions)."""

from __future__ import annotations

import json
import shutil
import signal
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest

from harness.runinfo import read_report_dir
from harness.terminal import display_path
from tests.certify.conftest import error_lines, simcity, spawn, tiny_matrix
from tests.leftovers import alive, booking_app_masters, private_tmpdir

pytestmark = pytest.mark.timeout(300)


def load(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())


def test_correct_app_passes_as_two_shards_merged(tmp_path: Path, matrix_file: Path) -> None:
    outs = [tmp_path / "shard-1", tmp_path / "shard-2"]
    # As CI does: the commit under test is given (this checkout may change while the test runs).
    sha = {"SIMCITY_GIT_SHA": "0123456789abcdef0123456789abcdef01234567"}
    procs = [spawn("certify", "--matrix", matrix_file, "--shard", f"{i}/2", "--stack", "local",
                   "--app-env", "BOOKING_STRATEGY=atomic", "--out", out, env=sha) for i, out in enumerate(outs, 1)]
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stdout + stderr
    ids = [[r["id"] for r in load(out / "certificate.json")["runs"]] for out in outs]
    assert ids == [["sc1-3/default"], ["sc1-4/default"]]

    merged = simcity("certify", "merge", *outs, "--out", tmp_path / "merged")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    cert = load(tmp_path / "merged" / "certificate.json")
    assert cert["verdict"] == "PASS" and cert["summary"] == {"runs": 2, "pass": 2, "fail": 0, "error": 0}
    assert cert["target"]["app_strategy"] == "atomic" and cert["target"]["git_sha"] == sha["SIMCITY_GIT_SHA"]
    assert cert["coverage"]["runs"] == 2 and cert["coverage"]["answers"]["ok"] >= 2
    assert all(r["winner"] in ("C1", "C2") for r in cert["runs"])  # who won, per run
    suite = ET.parse(tmp_path / "merged" / "junit.xml").getroot()
    assert [c.get("name") for c in suite.iter("testcase")] == ["sc1-3/default", "sc1-4/default"]
    assert (tmp_path / "merged" / "runs" / "sc1-3__default" / "run.json").is_file()  # reports came along

    duplicate = simcity("certify", "merge", outs[0], outs[0], outs[1], "--out", tmp_path / "dup")
    assert duplicate.returncode == 2 and "duplicate runs: sc1-3/default" in duplicate.stderr
    assert len(error_lines(duplicate.stderr)) == 1
    missing = simcity("certify", "merge", outs[0], "--out", tmp_path / "missing")
    assert missing.returncode == 3, missing.stdout + missing.stderr
    assert "ERROR sc1-4/default: missing" in missing.stdout


@pytest.fixture(scope="module")
def mutant_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("mutant")
    from tests.certify.conftest import tiny_matrix  # noqa: PLC0415

    matrix = tiny_matrix(base, ["sc1-3", "sc1-4"], ["default"])
    proc = simcity("certify", "--matrix", matrix, "--jobs", "2", "--stack", "local",
                   "--app-env", "BOOKING_STRATEGY=split_tx", "--out", base / "cert")
    return base / "cert", f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def test_mutant_fails_the_certificate(mutant_certificate: tuple[Path, str]) -> None:
    out, log = mutant_certificate
    assert log.startswith("exit 1"), log
    cert = load(out / "certificate.json")
    assert cert["verdict"] == "FAIL" and cert["jobs"] == 2
    failing = [r for r in cert["runs"] if r["status"] == "FAIL"]
    assert failing and all(r["primary"] == "BOOKED_WITHOUT_BOOKING" for r in failing)
    page = (out / "certificate.html").read_text()
    for run in failing:
        assert f'href="{run["report"]}/report.html"' in page
        assert (out / run["report"] / "report.html").is_file()
        # Printed as seen from where certify ran (this test's directory), not relative to --out.
        assert f"report {display_path(out / run['report'] / 'report.html')}" in log
        assert f"simcity shrink {run['report']}" in page  # its entry in the list of failures
    assert {r["worker"] for r in cert["runs"]} <= {1, 2}


def test_replay_of_a_recorded_fail_gives_the_same_violation(mutant_certificate: tuple[Path, str]) -> None:
    out, _ = mutant_certificate
    run = next(r for r in load(out / "certificate.json")["runs"] if r["status"] == "FAIL")
    report_dir = out / run["report"]
    proc = simcity("replay", report_dir, "--tries", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "REPRODUCED: FAIL BOOKED_WITHOUT_BOOKING" in proc.stdout
    replayed = read_report_dir(report_dir / "replay")
    recorded = read_report_dir(report_dir)
    assert replayed.info.schedule.hash == recorded.info.schedule.hash == run["schedule_hash"]
    assert replayed.primary == recorded.primary == "BOOKED_WITHOUT_BOOKING"

    # The same schedule against the fixed app: the violation does not come back -> exit 1.
    fixed = simcity("replay", report_dir, "--app-env", "BOOKING_STRATEGY=atomic", "--report-dir",
                    report_dir.parent / "replay-atomic")
    assert fixed.returncode == 1, fixed.stdout + fixed.stderr
    assert "NOT REPRODUCED: recorded FAIL BOOKED_WITHOUT_BOOKING, replay gave PASS" in fixed.stdout


def test_an_unknown_strategy_is_bad_usage_before_anything_starts(tmp_path: Path, matrix_file: Path) -> None:
    proc = simcity("certify", "--matrix", matrix_file, "--stack", "local", "--app-env",
                   "BOOKING_STRATEGY=rac", "--out", tmp_path / "cert")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("simcity:")]
    assert errors == ["simcity: error: --app-env BOOKING_STRATEGY=rac: unknown strategy (did you mean racy?); "
                      "choose one of atomic, racy, flip_on_retry, no_idempotency, split_tx, ack_before_commit, "
                      "in_memory_lock"]
    assert not (tmp_path / "cert").exists()


def test_no_stack_starts_is_infrastructure(tmp_path: Path, matrix_file: Path) -> None:
    # A setting only the app itself can judge: it fails at start, which is infrastructure.
    proc = simcity("certify", "--matrix", matrix_file, "--stack", "local", "--app-env",
                   "DB_TIMEOUT_S=not-a-number", "--out", tmp_path / "cert")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    cert = load(tmp_path / "cert" / "certificate.json")
    assert cert["verdict"] == "ERROR" and [e["id"] for e in cert["errors"]] == ["sc1-3/default", "sc1-4/default"]
    assert "ERROR sc1-3/default" in proc.stdout and "PASS" not in proc.stdout.replace("0 PASS", "")


@pytest.mark.parametrize("args, fragment", [
    (["certify", "--shard", "3/2"], "--shard wants i/n"),
    (["certify", "--matrix", "nope"], "unknown matrix 'nope'"),
    (["certify", "--jobs", "0"], "--jobs must be >= 1"),
    (["replay", "/nonexistent/dir"], "not a directory"),
    (["shrink", "/nonexistent/dir"], "not a directory"),
    (["sc1", "--steps", "send_book(C)"], "unknown argument 'C'"),
])
def test_bad_usage_is_one_line_exit_2(args: list[str], fragment: str) -> None:
    proc = simcity(*args, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and fragment in lines[0], proc.stderr


def test_replay_of_a_dir_without_run_json_is_usage(tmp_path: Path) -> None:
    proc = simcity("replay", tmp_path, timeout=60)
    assert proc.returncode == 2 and "no run.json" in proc.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_certify_stops_every_stack(tmp_path: Path, signum: int) -> None:
    """Stopped while two stacks run (and signalled again while it cleans up): it finishes, stops
    both stacks and exits 128 + the signal, leaving no process and no temp dir."""
    private_tmp = private_tmpdir()
    matrix = tiny_matrix(tmp_path, ["sc1-1", "sc1-2", "sc1-3", "sc1-4"], ["calm"], iterations=300)
    proc = spawn("certify", "--matrix", matrix, "--jobs", "2", "--stack", "local", "--out", tmp_path / "cert",
                 env={"TMPDIR": str(private_tmp)})
    try:
        deadline = time.monotonic() + 180
        while len(booking_app_masters(proc.pid)) < 2 and time.monotonic() < deadline:  # both stacks up, apps serving
            time.sleep(0.2)
        time.sleep(1.0)
        apps = booking_app_masters(proc.pid)
        started = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signum)
        time.sleep(0.5)
        proc.send_signal(signum)  # a second one, while it cleans up
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, err
    assert len(apps) >= 2  # both stacks were up
    assert [p.pid for p in started if alive(p)] == []
    left = sorted(str(p.relative_to(private_tmp)) for p in private_tmp.rglob("*"))
    shutil.rmtree(private_tmp, ignore_errors=True)
    assert left == [], err


