"""`simcity stack up --stack compose` leaves a Compose project for `simcity fault` and a person: a
latency toxic on client-app, applied through the Toxiproxy API of the project, slows the app down;
heal lifts it; `stack down` removes every container, network and volume of the project, and a
planted state file naming another project removes nothing of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.fault_cmd import read_env_file
from harness.stacks.select import compose_available
from tests.certify.conftest import simcity
from tests.certify.test_fault_local import health_ms

pytestmark = [pytest.mark.docker, pytest.mark.timeout(400),
              pytest.mark.skipif(not compose_available(), reason="no Docker engine answers: `bash compose/ci-setup.sh`")]


def test_compose_stack_up_fault_heal_down(tmp_path: Path) -> None:
    from harness.stacks.compose import project_resources  # noqa: PLC0415 - needs docker

    up = simcity("stack", "up", "--stack", "compose", cwd=tmp_path, timeout=300)
    state = tmp_path / ".simcity" / "stack.json"
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "compose stack up: compose (project simcity-" in up.stdout
        project = json.loads(state.read_text())["project"]
        env = read_env_file(tmp_path / ".simcity" / "stack.env")
        assert env["SIMCITY_SERVICE_KEY"] not in up.stdout + up.stderr
        before = health_ms(env["SIMCITY_TARGET_URL"])
        applied = simcity("fault", "apply", "latency", "--hop", "client-app", "--attr", "latency=300", cwd=tmp_path)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert health_ms(env["SIMCITY_TARGET_URL"]) >= before + 250
        healed = simcity("fault", "heal", cwd=tmp_path)
        assert healed.returncode == 0, healed.stdout + healed.stderr
        assert health_ms(env["SIMCITY_TARGET_URL"]) < before + 150
        assert project_resources(project)["containers"]
    finally:
        down = simcity("stack", "down", cwd=tmp_path, timeout=200)
    assert down.returncode == 0 and "compose stack stopped" in down.stdout, down.stdout + down.stderr
    assert project_resources(project) == {"containers": [], "volumes": [], "networks": []}
    assert not state.exists()


def test_a_planted_state_file_reaches_no_other_project(tmp_path: Path) -> None:
    (tmp_path / ".simcity").mkdir()
    (tmp_path / ".simcity" / "stack.json").write_text(json.dumps({"kind": "compose", "project": "someone-elses"}))
    down = simcity("stack", "down", cwd=tmp_path, timeout=60)
    assert down.returncode == 0 and "compose stack stopped" in down.stdout
    assert not (tmp_path / ".simcity" / "stack.json").exists()
