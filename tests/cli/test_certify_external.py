"""`simcity certify --stack external`: the release gate for a user's own app, started by hand
(here: the reference app from a restart script of the user's kind, behind SimCity's proxy on both
hops, its database a local stack's). The correct build is certified (exit 0) with the target's
identity in the certificate; a broken build fails the gate (exit 1) with replay commands that
attack the same app; what cannot be certified as asked is refused before anything starts."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stacks._net import free_port
from harness.stacks.local import LocalStack
from tests.certify.conftest import tiny_matrix
from tests.cli.test_cli import simcity
from tests.cli.test_external_db_proxy import RESTART_SCRIPT, database_password, kill_app_group

pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def database() -> Iterator[tuple[LocalStack, str]]:
    with LocalStack(with_app=False) as stack:
        served = stack.endpoints.database_url or ""
        yield stack, served.rsplit("@", 1)[1].split("/", 1)[0]


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, str]:
    """The user's app repository, with one commit."""
    repo = tmp_path / "app-repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=u", "-c", "user.email=u@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "app.txt").write_text("release candidate\n")
    subprocess.run([*git, "add", "app.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "rc"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    return repo, sha


def certify_own_app(database: tuple[LocalStack, str], tmp_path: Path, strategy: str, seeds: list[str],
                    *extra: str) -> tuple[subprocess.CompletedProcess[str], Path, str]:
    stack, db_upstream = database
    db_listen, app_port = f"127.0.0.1:{free_port()}", free_port()
    pidfile = tmp_path / "app.pid"
    restart_cmd = shlex.join([sys.executable, str(RESTART_SCRIPT), str(pidfile), str(app_port)])
    user_env = {**database_password(stack), "BOOKING_STRATEGY": strategy}
    started = subprocess.run(shlex.split(restart_cmd), env={**os.environ, "SIMCITY_DB_PROXY": db_listen, **user_env},
                             capture_output=True, text=True, timeout=60)  # the app, started by hand
    assert started.returncode == 0, started.stderr
    matrix = tiny_matrix(tmp_path, seeds, ["default"], iterations=30)
    matrix.write_text(matrix.read_text() + "slots = 4\n")
    out = tmp_path / "cert"
    try:
        proc = simcity("certify", "--stack", "external", "--matrix", str(matrix), "--out", str(out),
                       "--target-url", f"http://127.0.0.1:{app_port}", "--rest-url", stack.endpoints.rest_url,
                       "--proxy", "--db-upstream", db_upstream, "--db-listen", db_listen,
                       "--restart-cmd", restart_cmd, *extra,
                       env={"SIMCITY_SERVICE_KEY": stack.endpoints.service_key, **user_env}, timeout=360)
    finally:
        kill_app_group(pidfile)
    return proc, out, restart_cmd


def test_a_correct_build_is_certified_with_its_identity(database: tuple[LocalStack, str], tmp_path: Path,
                                                         checkout: tuple[Path, str]) -> None:
    repo, sha = checkout
    proc, out, restart_cmd = certify_own_app(database, tmp_path, "atomic", ["sc1-1", "sc1-2"],
                                             "--target-version", "2.4.0-rc1", "--target-checkout", str(repo))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert database[0].endpoints.service_key not in proc.stdout + proc.stderr
    cert = json.loads((out / "certificate.json").read_text())
    target = cert["target"]
    assert target["stack_kind"] == "external" and target["target_url"].startswith("http://127.0.0.1:")
    assert (target["target_version"], target["target_git_sha"]) == ("2.4.0-rc1", sha)
    assert "app_strategy" not in target  # the reference app's settings say nothing of the user's app
    assert [run["status"] for run in cert["runs"]] == ["PASS", "PASS"]
    junit = (out / "junit.xml").read_text()
    assert junit.count("<testcase") == 2 and "<failure" not in junit
    summary = (out / "summary.md").read_text()  # the workflow example's step summary
    assert summary.startswith("## SimCity certificate: PASS") and "| its version | 2.4.0-rc1 |" in summary
    assert f"| its commit | {sha} |" in summary


def test_a_broken_build_fails_the_gate_with_replays_of_the_same_app(database: tuple[LocalStack, str],
                                                                    tmp_path: Path) -> None:
    proc, out, restart_cmd = certify_own_app(database, tmp_path, "racy", ["sc1-1", "sc1-2"])
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    cert = json.loads((out / "certificate.json").read_text())
    failed = [run for run in cert["runs"] if run["status"] == "FAIL"]
    assert failed
    summary = (out / "summary.md").read_text()
    assert summary.startswith("## SimCity certificate: FAIL")
    assert all(f"| {run['id']} | FAIL | " in summary for run in failed)
    replay = (out / failed[0]["report"] / "verdict.json")
    assert replay.exists()
    report_text = (out / failed[0]["report"] / "report.html").read_text()
    for flag in ("--stack external", "--target-url", "--rest-url", "--restart-cmd", "--db-upstream"):
        assert flag in report_text
    assert "--app-env" not in report_text.split("--stack external", 1)[1].split("\n", 1)[0]
    # The certificate's "simcity replay runs/X" works for an external run: run.json names the
    # target; its restart command runs only once the user says they trust the file.
    run_dir = out / failed[0]["report"]
    assert json.loads((run_dir / "run.json").read_text())["external"]["restart_cmd"] == restart_cmd
    key = {"SIMCITY_SERVICE_KEY": database[0].endpoints.service_key}
    refused = simcity("replay", str(run_dir), env=key, timeout=60)
    assert refused.returncode == 2 and "rerun with --trust-env" in refused.stderr, refused.stderr
    assert restart_cmd in refused.stdout + refused.stderr


@pytest.mark.parametrize(("args", "fragment"), [
    (["--target-url", "http://127.0.0.1:9"], "--stack external needs --target-url and --rest-url"),
    (["--target-url", "http://127.0.0.1:9", "--rest-url", "http://127.0.0.1:9"], "give --restart-cmd"),
    (["--target-url", "http://127.0.0.1:9", "--rest-url", "http://127.0.0.1:9", "--restart-cmd", "true",
      "--app-env", "BOOKING_STRATEGY=racy"], "--app-env is the environment of SimCity's reference app"),
    (["--target-url", "ftp://x", "--rest-url", "http://127.0.0.1:9", "--restart-cmd", "true"],
     "--target-url must be an http(s) URL"),
])
def test_what_cannot_be_certified_as_asked_is_refused_before_anything_starts(tmp_path: Path, args: list[str],
                                                                          fragment: str) -> None:
    proc = simcity("certify", "--stack", "external", *args, "--out", str(tmp_path / "cert"),
                   env={"SIMCITY_SERVICE_KEY": "not-a-real-key"}, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and fragment in proc.stderr
    assert not (tmp_path / "cert").exists()
