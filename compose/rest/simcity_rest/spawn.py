"""Run simcity-rest as a child process (tests, benchmarks, the embedded local stack)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness.process import ManagedProcess


def rest_process(port: int, env: Mapping[str, str], *, log_dir: Path | None = None) -> ManagedProcess:
    """A ManagedProcess for `python -m simcity_rest` on 127.0.0.1:`port` (not started).

    `env` holds the PGRST_* settings (at least PGRST_DB_URI). Readiness is the TCP port: the server
    binds it only after its schema cache is loaded, so an open port means it can answer requests
    whatever the anon-role setting (GET / itself needs a role, as in PostgREST).
    """
    settings = {"PGRST_SERVER_HOST": "127.0.0.1", **env, "PGRST_SERVER_PORT": str(port)}
    return ManagedProcess.python_module(
        "simcity-rest", "simcity_rest", env=settings, port=port, ready_timeout_s=30.0, log_dir=log_dir,
    )
