"""Start the booking app as a child process (tests, benchmarks, the embedded local stack)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness.process import ManagedProcess


def app_env(
    port: int, database_url: str, strategy: str = "atomic", e2e: bool = True, workers: int = 2,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    return {
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DATABASE_URL": database_url,
        "E2E": "true" if e2e else "false",
        "BOOKING_STRATEGY": strategy,
        "APP_WORKERS": str(workers),
        "WEB_CONCURRENCY": str(workers),
        **(extra_env or {}),
    }


def app_process(
    port: int, database_url: str, strategy: str = "atomic", e2e: bool = True, workers: int = 2,
    extra_env: Mapping[str, str] | None = None, ready_timeout_s: float = 30.0, log_dir: Path | None = None,
) -> ManagedProcess:
    """The app, not yet started: ready once GET /health answers 200 (its database answers)."""
    return ManagedProcess.python_module(
        f"booking-app-{strategy}", "booking_app",
        env=app_env(port, database_url, strategy, e2e, workers, extra_env),
        health_url=f"http://127.0.0.1:{port}/health",
        ready_timeout_s=ready_timeout_s, log_dir=log_dir,
    )
