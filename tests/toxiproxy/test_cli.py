"""The command line reads Go-style flags like toxiproxy-server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from toxics.server.__main__ import FlagError, parse


@pytest.mark.parametrize("argv", [
    ["-port", "9000", "-host", "0.0.0.0"],
    ["-port=9000", "-host=0.0.0.0"],
    ["--port", "9000", "--host=0.0.0.0"],
])
def test_go_flag_forms(argv: list[str]) -> None:
    assert parse(argv) == {"host": "0.0.0.0", "port": "9000", "config": ""}


def test_defaults_and_seed() -> None:
    assert parse([]) == {"host": "127.0.0.1", "port": "8474", "config": ""}
    assert parse(["-seed", "42", "-config", "p.json"])["seed"] == "42"


@pytest.mark.parametrize("argv", [["-nope"], ["-port"]])
def test_bad_flags(argv: list[str]) -> None:
    with pytest.raises(FlagError):
        parse(argv)


def test_bad_flag_exits_2_with_usage() -> None:
    proc = subprocess.run([sys.executable, "-m", "toxics.server", "-bogus"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "flag provided but not defined: -bogus" in proc.stderr and "-port" in proc.stderr
