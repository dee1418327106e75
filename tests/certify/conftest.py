"""Helpers for the certify / replay / shrink / fault tests: the `simcity` command as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SIMCITY = [sys.executable, "-m", "harness"]
REPO = Path(__file__).resolve().parents[2]


def simcity(*args: str | Path, cwd: Path | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([*SIMCITY, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or REPO, env=env)


def spawn(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([*SIMCITY, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, env=env)


def error_lines(stderr: str) -> list[str]:
    """The non-empty lines of stderr: nothing is filtered, so a warning printed there (once
    platformdirs' RuntimeDirWarning, from importing pgserver) fails the test."""
    return [line for line in stderr.splitlines() if line.strip()]


def tiny_matrix(directory: Path, seeds: list[str], profiles: list[str], iterations: int = 30) -> Path:
    path = directory / "matrix.toml"
    path.write_text(f'description = "test"\niterations = {iterations}\n'
                    f'seeds = {seeds!r}\nprofiles = {profiles!r}\n'.replace("'", '"'))
    return path


@pytest.fixture
def matrix_file(tmp_path: Path) -> Path:
    return tiny_matrix(tmp_path, ["sc1-3", "sc1-4"], ["default"])
