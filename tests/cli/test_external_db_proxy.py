"""App-db faults on a user's own app: `--stack external --proxy --db-upstream HOST:PORT` puts a
second simcity-toxiproxy proxy between the app and its database, on the fixed `--db-listen`
address the app was pointed at before SimCity started. Real processes, loopback only: the local
stack without its app stands in for the user's database and REST; the reference app, started by
hand, for the user's app."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from booking_app.spawn import app_process
from harness.errors import StackStartError
from harness.process import Ready
from harness.stacks._net import free_port
from harness.stacks.external import ExternalStack
from harness.stacks.local import LocalStack
from tests.cli.test_cli import simcity

RESTART_SCRIPT = Path(__file__).with_name("restart_booking_app.py")
FAULT_ACTIONS = ("latency", "partition", "heal")


@pytest.fixture(scope="module")
def database() -> Iterator[tuple[LocalStack, str]]:
    """The user's database and REST, and the database's HOST:PORT (the local stack serves it
    through its own proxy, which nothing here ever faults)."""
    with LocalStack(with_app=False) as stack:
        served = urlsplit(stack.endpoints.database_url or "")
        yield stack, f"{served.hostname}:{served.port}"


def sc1_through_db_proxy(stack: LocalStack, app_port: int, db_upstream: str, db_listen: str, report: Path,
                         steps: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return simcity("sc1", "--stack", "external", "--target-url", f"http://127.0.0.1:{app_port}",
                   "--rest-url", stack.endpoints.rest_url, "--proxy", "--db-upstream", db_upstream,
                   "--db-listen", db_listen, "--report-dir", str(report), "--steps", steps, *extra,
                   env={"SIMCITY_SERVICE_KEY": stack.endpoints.service_key, **database_password(stack)})


def database_password(stack: LocalStack) -> dict[str, str]:
    """The user's database wants a password (libpq's PGPASSWORD: their app and restart script
    find it in their environment, as a user's own secret store would give it to them)."""
    return {"PGPASSWORD": urlsplit(stack.endpoints.database_url or "").password or ""}


def history_ops(report: Path) -> list[dict[str, Any]]:
    lines = (report / "history.jsonl").read_text().splitlines()
    return [op for op in map(json.loads, lines) if op.get("type") == "op"]


def assert_app_db_faults_injected(ops: list[dict[str, Any]]) -> None:
    """Every app-db fault and heal went through; none was `skipped` for want of a proxy."""
    done = [op for op in ops if op["process"] == "nemesis" and op["kind"] == "ok"
            and op["details"].get("hop") == "app-db" and op["action"] in FAULT_ACTIONS]
    assert {op["action"] for op in done} >= {"latency", "heal"}, done
    for op in done:
        assert "skipped" not in op["details"].get("params", {}), op
    latency = next(op for op in done if op["action"] == "latency")
    assert latency["details"]["params"]["latency.latency"] > 0


def test_app_db_faults_reach_a_users_app_through_the_db_proxy(database: tuple[LocalStack, str],
                                                               tmp_path: Path) -> None:
    stack, db_upstream = database
    db_listen, app_port = f"127.0.0.1:{free_port()}", free_port()
    # As a user would: the app first, pointed at the proxy's fixed address nothing listens on yet
    # (it serves 503 until SimCity's proxy is up), then SimCity.
    app = app_process(app_port, f"postgresql://postgres@{db_listen}/postgres", extra_env=database_password(stack))
    app.start(ready=Ready.SERVING)
    try:
        report = tmp_path / "r"
        proc = sc1_through_db_proxy(
            stack, app_port, db_upstream, db_listen, report,
            "send_book(A),latency(app-db),send_book(B),partition(app-db),retry_book(A),heal(app-db),retry_book(B)")
    finally:
        app.stop()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    notice = f"app-db proxy: point your app's database at {db_listen} (upstream {db_upstream})"
    assert notice in proc.stdout.splitlines()
    assert stack.endpoints.service_key not in proc.stdout + proc.stderr
    assert json.loads((report / "verdict.json").read_text())["valid"] == "PASS"
    ops = history_ops(report)
    assert_app_db_faults_injected(ops)
    assert any(op["action"] == "partition" and op["kind"] == "ok" for op in ops)
    # The partition cut the app's own database connections: it answered that, not the proxy.
    partitioned = next(i for i, op in enumerate(ops) if op["action"] == "partition" and op["kind"] == "ok")
    healed = next(i for i, op in enumerate(ops) if op["action"] == "heal" and op["kind"] == "ok")
    answers = [op["details"].get("body") or {} for op in ops[partitioned:healed] if op["action"] == "retry_book"]
    assert any(body.get("error") == "database_unavailable" for body in answers), answers


def test_restart_cmd_rebuilds_the_apps_database_url_from_simcity_db_proxy(database: tuple[LocalStack, str],
                                                                          tmp_path: Path) -> None:
    """A crash under an app-db fault: the restart script finds $SIMCITY_DB_PROXY, so the new app
    reaches its database through the proxy again (else it never gets healthy: exit 3)."""
    stack, db_upstream = database
    db_listen, app_port = f"127.0.0.1:{free_port()}", free_port()
    pidfile = tmp_path / "app.pid"
    restart_cmd = shlex.join([sys.executable, str(RESTART_SCRIPT), str(pidfile), str(app_port)])
    first_start = subprocess.run(shlex.split(restart_cmd),
                                 env={**os.environ, "SIMCITY_DB_PROXY": db_listen, **database_password(stack)},
                                 capture_output=True, text=True, timeout=60)
    assert first_start.returncode == 0, first_start.stderr
    try:
        report = tmp_path / "r"
        proc = sc1_through_db_proxy(
            stack, app_port, db_upstream, db_listen, report,
            "send_book(A),latency(app-db),restart_simcity(),send_book(B),heal(app-db),retry_book(A)",
            "--restart-cmd", restart_cmd, "--json")
    finally:
        kill_app_group(pidfile)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["verdict"]["valid"] == "PASS" and summary["crashes"] == 1
    assert "--db-upstream" in summary["replay"] and db_listen in summary["replay"]
    assert_app_db_faults_injected(history_ops(report))


def kill_app_group(pidfile: Path) -> None:
    """Stop the app the restart script left running (its own process group)."""
    if pidfile.exists():
        try:
            os.killpg(int(pidfile.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_taken_db_listen_address_is_infrastructure_trouble_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        proc = simcity("sc1", "--stack", "external", "--target-url", "http://127.0.0.1:9", "--rest-url",
                       "http://127.0.0.1:9", "--proxy", "--db-upstream", "127.0.0.1:9", "--db-listen", address,
                       env={"SIMCITY_SERVICE_KEY": "not-a-real-key"}, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert f"the app-db proxy cannot listen on {address}" in proc.stderr
    assert "PASS" not in proc.stdout and "FAIL" not in proc.stdout


def child_pids() -> set[int]:
    """This process's live children (a zombie counts: it was not reaped)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == os.getpid():
            children.add(int(stat.parent.name))
    return children


def test_a_taken_db_listen_address_leaves_nothing_running() -> None:
    before = child_pids()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        stack = ExternalStack("http://127.0.0.1:9", "http://127.0.0.1:9", "not-a-real-key", proxy=True,
                              db_upstream="127.0.0.1:9", db_listen=address)
        started = time.monotonic()
        with pytest.raises(StackStartError, match=address), stack:
            pass
    assert time.monotonic() - started < 30  # refused at once, not after the app's health timeout
    assert child_pids() == before  # simcity-toxiproxy stopped and reaped
