"""`simcity fault apply|heal|status` on a real `simcity stack up` local stack: a latency toxic on
client-app slows the app down as measured, status shows it, heal removes it; bad input is a
one-line exit 2 before the proxy is contacted, an unreachable proxy exit 3. `stack down` always."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.fault_cmd import read_env_file
from tests.certify.conftest import error_lines, simcity

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cwd = tmp_path_factory.mktemp("stack-up")
    try:
        up = simcity("stack", "up", cwd=cwd, timeout=120)
        assert up.returncode == 0, up.stdout + up.stderr
        yield cwd
    finally:
        down = simcity("stack", "down", cwd=cwd, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr


def health_ms(url: str, samples: int = 5) -> float:
    took = []
    with httpx.Client(timeout=10) as client:
        for _ in range(samples):
            started = time.monotonic()
            assert client.get(f"{url}/health").status_code == 200
            took.append((time.monotonic() - started) * 1000)
    return statistics.median(took)


def test_latency_apply_status_heal(stack_dir: Path) -> None:
    env = read_env_file(stack_dir / ".simcity" / "stack.env")
    assert env["SIMCITY_PROXY_CLIENT_APP"] == "app" and env["SIMCITY_PROXY_APP_DB"] == "app_db"
    app = env["SIMCITY_TARGET_URL"]
    before = health_ms(app)

    applied = simcity("fault", "apply", "latency", "--hop", "client-app", "--attr", "latency=300", cwd=stack_dir)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "applied on client-app (proxy app)" in applied.stdout and "latency=300" in applied.stdout
    slowed = health_ms(app)
    assert slowed >= before + 250, (before, slowed)

    status = simcity("fault", "status", "--json", cwd=stack_dir)
    assert status.returncode == 0, status.stderr
    hops = json.loads(status.stdout)["hops"]
    toxics = hops["client-app"]["toxics"]
    assert [(t["type"], t["attributes"]["latency"]) for t in toxics] == [("latency", 300)]
    assert hops["app-db"]["toxics"] == [] and not hops["app-db"]["partitioned"]
    text = simcity("fault", "status", cwd=stack_dir)
    assert "manual_latency_downstream: latency downstream" in text.stdout

    healed = simcity("fault", "heal", "--hop", "client-app", cwd=stack_dir)
    assert healed.returncode == 0 and "healed client-app" in healed.stdout
    assert health_ms(app) < before + 150
    assert "no faults active" in simcity("fault", "status", cwd=stack_dir).stdout


def test_profile_and_partition_then_heal_all(stack_dir: Path) -> None:
    applied = simcity("fault", "apply", "drops", cwd=stack_dir)  # a profile: both hops
    assert applied.returncode == 0, applied.stderr
    assert "client-app" in applied.stdout and "app-db" in applied.stdout
    cut = simcity("fault", "apply", "partition", "--hop", "app-db", cwd=stack_dir)
    assert cut.returncode == 0, cut.stderr
    hops = json.loads(simcity("fault", "status", "--json", cwd=stack_dir).stdout)["hops"]
    assert hops["app-db"]["partitioned"] and hops["client-app"]["toxics"]
    assert simcity("fault", "heal", cwd=stack_dir).returncode == 0
    hops = json.loads(simcity("fault", "status", "--json", cwd=stack_dir).stdout)["hops"]
    assert not any(h["toxics"] or h["partitioned"] for h in hops.values())


@pytest.mark.parametrize("args, fragment", [
    (["apply", "latency", "--hop", "client-app", "--attr", "bogus=1"], "unknown attribute 'bogus'"),
    (["apply", "latency", "--hop", "client-app", "--attr", "latency=-5"], "must be >= 0"),
    (["apply", "latency", "--hop", "client-app", "--attr", "latency=fast"], "must be an integer"),
    (["apply", "nosuchtoxic", "--hop", "client-app"], "unknown toxic or profile 'nosuchtoxic'"),
    (["apply", "latency", "--hop", "app-mars", "--attr", "latency=5"], "--hop must be one of"),
    (["apply", "timeout"], "--hop client-app|app-db is required"),
    (["apply", "latency", "--hop", "client-app", "--toxicity", "2", "--attr", "latency=1"], "toxicity"),
    (["apply", "latency", "--hop", "client-app", "--stream", "sideways", "--attr", "latency=1"], "--stream"),
])
def test_bad_input_is_one_line_exit_2(stack_dir: Path, args: list[str], fragment: str) -> None:
    proc = simcity("fault", *args, cwd=stack_dir, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and fragment in lines[0], proc.stderr


def test_unreachable_proxy_is_exit_3(tmp_path: Path) -> None:
    proc = simcity("fault", "status", "--proxy-url", "http://127.0.0.1:9", cwd=tmp_path, timeout=60)
    assert proc.returncode == 3 and "unreachable" in proc.stderr
    none = simcity("fault", "heal", cwd=tmp_path, timeout=60)  # no stack up in this directory
    assert none.returncode == 3 and "no running stack found" in none.stderr
