"""The `simcity` command line as a user runs it: exit codes, one-line errors, secrets never
printed, report files, the stack up/down env file. Real processes, real stacks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.leftovers import private_tmpdir

SIMCITY = [sys.executable, "-m", "harness"]


def simcity(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SIMCITY, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})


EXTERNAL = ["sc1", "--stack", "external", "--target-url", "http://127.0.0.1:1", "--rest-url", "http://127.0.0.1:1"]


@pytest.mark.parametrize("args, fragment", [
    (["sc1", "--profile", "nope"], "unknown profile 'nope'"),
    (["sc1", "--iterations", "-3"], "--iterations must be >= 0"),
    (["sc1", "--app-env", "NOEQUALS"], "--app-env wants KEY=VALUE"),
    (["sc1", "--stack", "local", "--target-url", "http://127.0.0.1:1"], "are for --stack external"),
    (["sc1", "--stack", "external", "--target-url", "http://127.0.0.1:1"], "needs --target-url and --rest-url"),
    (["sc1", "--distance", "rest=far"], "--distance: expected HOP=MS"),
    (["sc1", "--stack", "local", "--app-env", "BOOKING_STRATEGY=rac"], "unknown strategy (did you mean racy?)"),
    (["sc1", "--stack", "local", "--app-env", "MUTANT_WINDOW_MS=-5"], "MUTANT_WINDOW_MS=-5: expected a whole"),
    (["sc1", "--seed", ""], "the seed must be a non-empty string"),
    (["sc1", "--profile", "/no/such/profile.toml"], "/no/such/profile.toml"),
    (["sc1", "--slots", "0"], "--slots must be >= 1"),
    (["sc1", "--distance", "dns=5"], "distance: unknown hop(s) dns"),
    (["sc1", "--stack", "compose", "--distance", "rest=100"], "--distance is for --stack local"),
    ([*EXTERNAL, "--db-upstream", "127.0.0.1:5432"], "--db-upstream needs --proxy"),
    (["sc1", "--stack", "local", "--db-upstream", "127.0.0.1:5432"], "are for --stack external"),
    ([*EXTERNAL, "--proxy", "--db-upstream", "db.example"], "--db-upstream wants HOST:PORT, got 'db.example'"),
    ([*EXTERNAL, "--proxy", "--db-upstream", "db.example:99999"], "--db-upstream wants HOST:PORT"),
    ([*EXTERNAL, "--proxy", "--db-upstream", "db.example:5432", "--db-listen", "127.0.0.1:0"],
     "--db-listen wants HOST:PORT"),
    ([*EXTERNAL, "--proxy", "--db-listen", "127.0.0.1:25432"], "--db-listen is where the app-db proxy listens"),
])
def test_bad_usage_is_one_line_and_exit_2(args: list[str], fragment: str) -> None:
    # A key, so that external runs get as far as checking their other flags.
    proc = simcity(*args, env={"SIMCITY_SERVICE_KEY": "not-a-real-key"})
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]  # nothing else: no warning either
    assert len(lines) == 1 and fragment in lines[0], proc.stderr


def test_missing_service_key_for_external_is_usage(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMCITY_")}
    proc = subprocess.run([*SIMCITY, "sc1", "--stack", "external", "--target-url", "http://127.0.0.1:1",
                           "--rest-url", "http://127.0.0.1:1"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "SIMCITY_SERVICE_KEY" in proc.stderr


def test_unreachable_target_is_infrastructure_not_a_verdict() -> None:
    secret_key = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2VjcmV0LXNpZ25hdHVyZQ"
    proc = simcity("sc1", "--stack", "external", "--target-url", "http://127.0.0.1:9", "--rest-url",
                   "http://127.0.0.1:9", env={"SIMCITY_SERVICE_KEY": secret_key}, timeout=120)
    assert proc.returncode == 3
    assert "PASS" not in proc.stdout and "FAIL" not in proc.stdout
    assert secret_key not in proc.stdout + proc.stderr


def test_local_run_pass_json_and_report_without_secrets(tmp_path: Path) -> None:
    report = tmp_path / "report"
    proc = simcity("sc1", "--stack", "local", "--seed", "cli-1", "--iterations", "15", "--json",
                   "--report-dir", str(report))
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["verdict"]["valid"] == "PASS" and summary["seed"] == "cli-1"
    assert len(summary["schedule_hash"]) == 12 and "--seed cli-1" in summary["replay"]
    for name in ("history.jsonl", "verdict.json", "junit.xml", "report.html"):
        text = (report / name).read_text()
        assert "eyJ" not in text, f"{name} carries a JWT"
    assert "eyJ" not in proc.stdout + proc.stderr


def test_local_mutant_fails_with_exit_1_and_forensics(tmp_path: Path) -> None:
    proc = simcity("sc1", "--stack", "local", "--seed", "sc1-1", "--iterations", "50",
                   "--app-env", "BOOKING_STRATEGY=split_tx", "--out", "reports/split", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "SC-1 FAIL: BOOKED_WITHOUT_BOOKING" in proc.stdout
    # Off a terminal the command stays on one line, whatever its length.
    assert ("\nreplay: simcity sc1 --seed sc1-1 --iterations 50 --profile default --stack local "
            "--app-env BOOKING_STRATEGY=split_tx\n") in proc.stdout
    assert proc.stdout.rstrip().endswith("FAIL - report: reports/split/report.html")  # relative: shorter
    assert "RuntimeDirWarning" not in proc.stderr
    reports = tmp_path / "reports"
    assert os.readlink(reports / "latest") == "split"
    index = (reports / "index.html").read_text()
    assert 'href="split/report.html"' in index and "split_tx" in index

    # The broken app's recorded history, judged again without a stack: the same violation.
    again = simcity("check", "reports/latest", cwd=tmp_path)
    assert again.returncode == 1, again.stderr
    assert "SC-1 FAIL: BOOKED_WITHOUT_BOOKING" in again.stdout and "recorded verdict" not in again.stdout


def test_stack_up_writes_private_env_file_and_down_stops_it(tmp_path: Path) -> None:
    up = simcity("stack", "up", cwd=tmp_path, timeout=120)
    try:
        assert up.returncode == 0, up.stderr[-2000:]
        env_file = tmp_path / ".simcity" / "stack.env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert values["SIMCITY_SERVICE_KEY"].startswith("eyJ")
        assert values["SIMCITY_SERVICE_KEY"] not in up.stdout + up.stderr
        import httpx

        assert httpx.get(values["SIMCITY_TARGET_URL"] + "/health", timeout=5).status_code == 200
        again = simcity("stack", "up", cwd=tmp_path, timeout=60)
        assert again.returncode == 2 and "already running" in again.stderr
    finally:
        down = simcity("stack", "down", cwd=tmp_path, timeout=120)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not (tmp_path / ".simcity" / "stack.env").exists()
    with pytest.raises(Exception):
        httpx.get(values["SIMCITY_TARGET_URL"] + "/health", timeout=2)


def test_external_app_behind_simcitys_own_proxy(tmp_path: Path) -> None:
    """A user's own app (here: a local stack's app, reached directly) with `--proxy`: SimCity puts
    simcity-toxiproxy in front of it, so a client-app fault reaches an app it did not start."""
    from harness.stacks.local import LocalStack

    with LocalStack() as stack:
        app_direct = stack.app_direct_url
        report = tmp_path / "ext"
        proc = simcity("sc1", "--stack", "external", "--target-url", app_direct, "--rest-url",
                       stack.endpoints.rest_url, "--proxy", "--json", "--report-dir", str(report),
                       "--steps", "latency(client-app),send_book(A),send_book(B),heal(client-app),retry_book(B)",
                       env={"SIMCITY_SERVICE_KEY": stack.endpoints.service_key})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["verdict"]["valid"] == "PASS"
    history = (report / "history.jsonl").read_text()
    assert '"latency.latency"' in history  # the fault was really injected on the external hop


def test_a_restart_cmd_that_leaves_the_app_running_is_no_crash(tmp_path: Path) -> None:
    """CONTRACT.md section 4: the app's boot id did not change, so SimCity does not count the crash
    and says why; the local stack's real crashes are verified by a new boot id."""
    from harness.stacks.local import LocalStack

    with LocalStack() as stack:
        report = tmp_path / "ext"
        proc = simcity("sc1", "--stack", "external", "--target-url", stack.app_direct_url, "--rest-url",
                       stack.endpoints.rest_url, "--restart-cmd", "true", "--report-dir", str(report),
                       "--steps", "send_book(A),restart_simcity(),retry_book(A),restart_simcity()",
                       env={"SIMCITY_SERVICE_KEY": stack.endpoints.service_key})
        # run.json names the target, so `simcity replay` attacks the same app again (its restart
        # command runs only with --trust-env).
        replayed = simcity("replay", str(report), "--trust-env", env={"SIMCITY_SERVICE_KEY": stack.endpoints.service_key})
    assert replayed.returncode == 0 and "REPRODUCED" in replayed.stdout, replayed.stdout + replayed.stderr
    assert "recorded target: app http://127.0.0.1:" in replayed.stdout and "restart command 'true'" in replayed.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ("crashes: 0 (2 more restart(s) left the app running: its boot_id did not change, so they are not "
            "counted)") in proc.stdout
    crashes = [json.loads(line) for line in (report / "history.jsonl").read_text().splitlines()[1:]
               if '"restart_simcity"' in line and '"ok"' in line]
    assert [op["details"]["params"]["boot_id"] for op in crashes] == ["unchanged", "unchanged"]
    local = simcity("sc1", "--stack", "local", "--steps", "send_book(A),restart_simcity(),retry_book(A)",
                    "--report-dir", str(tmp_path / "local"))
    assert local.returncode == 0 and "crashes: 1 (each verified by a new boot_id)" in local.stdout, local.stderr


def test_external_app_without_restart_cmd_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from harness.stacks.local import LocalStack

    with LocalStack() as stack:
        proc = simcity("sc1", "--stack", "external", "--target-url", stack.app_direct_url, "--rest-url",
                       stack.endpoints.rest_url, "--seed", "sc1-1", "--report-dir", str(tmp_path / "r"),
                       env={"SIMCITY_SERVICE_KEY": stack.endpoints.service_key})
    assert proc.returncode == 2 and "--restart-cmd" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_stack_up_and_down_leave_no_temp_dir(tmp_path: Path) -> None:
    private_tmp = private_tmpdir()
    env = {"TMPDIR": str(private_tmp)}
    try:
        up = simcity("stack", "up", cwd=tmp_path, env=env)
        assert up.returncode == 0, up.stderr
        down = simcity("stack", "down", cwd=tmp_path, env=env)
        assert down.returncode == 0 and "local stack stopped" in down.stdout, down.stderr
        assert list(private_tmp.iterdir()) == []
    finally:
        simcity("stack", "down", cwd=tmp_path, env=env)
        for leftover in private_tmp.iterdir():
            subprocess.run(["rm", "-rf", str(leftover)], check=False)
        private_tmp.rmdir()
