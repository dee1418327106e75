"""Start the stand-in as a child process (tests, the controller, the local stack)."""

from __future__ import annotations

from pathlib import Path

from harness.process import ManagedProcess


def toxiproxy_process(
    port: int, host: str = "127.0.0.1", config: Path | None = None, seed: int | None = None,
    log_dir: Path | None = None,
) -> ManagedProcess:
    """A ManagedProcess for `python -m toxics.server`, ready once GET /version answers 200.

    Not started yet: use it as a context manager (`with toxiproxy_process(port) as proc:`) or call
    `.start()`; stopping it drops every proxy and connection.
    """
    args = ["-host", host, "-port", str(port)]
    if config is not None:
        args += ["-config", str(config)]
    if seed is not None:
        args += ["-seed", str(seed)]
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in probe_host:
        probe_host = f"[{probe_host}]"
    return ManagedProcess.python_module(
        "toxiproxy", "toxics.server", *args, health_url=f"http://{probe_host}:{port}/version", log_dir=log_dir,
    )
