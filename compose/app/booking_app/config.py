"""The app's settings, read once from the environment (the only way it is configured)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_WORKERS = 2
DEFAULT_STRATEGY = "atomic"
MAX_BODY_BYTES = 64 * 1024
_TRUE = {"1", "true", "yes", "on"}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment.

    `workers`: like production, two or more processes share the port, so bugs of process-local
    state (see the in_memory_lock mutant) can show. `window_ms`: the width of a mutant's bug window,
    or None for the mutant's own default.
    """

    port: int = 8000
    host: str = "127.0.0.1"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    e2e: bool = False
    strategy: str = DEFAULT_STRATEGY
    workers: int = DEFAULT_WORKERS
    window_ms: int | None = None
    pool_max_size: int = 10
    db_timeout_s: float = 5.0
    health_timeout_s: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        workers = _int(env, "APP_WORKERS", 0) or _int(env, "WEB_CONCURRENCY", 0) or DEFAULT_WORKERS
        window = env.get("MUTANT_WINDOW_MS", "").strip()
        return cls(
            port=_int(env, "PORT", 8000),
            # Loopback by default; a container sets HOST=0.0.0.0.
            host=env.get("HOST", "127.0.0.1"),
            database_url=env.get("DATABASE_URL", cls.database_url),
            e2e=env.get("E2E", "").strip().lower() in _TRUE,
            strategy=env.get("BOOKING_STRATEGY", "").strip() or DEFAULT_STRATEGY,
            workers=max(1, workers),
            window_ms=_int(env, "MUTANT_WINDOW_MS", 0) if window else None,
            pool_max_size=max(1, _int(env, "DB_POOL_SIZE", 10)),
            db_timeout_s=float(env.get("DB_TIMEOUT_S", "5") or 5),
        )
