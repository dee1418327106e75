"""A service run as a child process: start, wait until ready, SIGKILL, respawn, stop.

One small type for every process SimCity runs itself (the Toxiproxy and REST stand-ins, the booking
app, in tests and in the embedded stack), so that readiness, logs and clean-up live in one place.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from harness.errors import StackStartError
from harness.stacks._wait import HttpReady, PortReady, Readiness
from harness.stacks.watchdog import WATCHDOG, live_members


class Ready(Enum):
    """How far a (re)started process must get before `start` / `restart` return."""

    HEALTHY = "healthy"  # its health URL answers 200
    # Any HTTP answer from its health URL: a crashed app restarted while its database is cut off
    # answers 503, once its own database ping gave up.
    SERVING = "serving"
    # Its port accepts a connection: it is up, as far as can be seen without asking anything that
    # waits on its database (Jepsen's start waits the same way, for the TCP port).
    LISTENING = "listening"


class ManagedProcess:
    """A child process with a readiness probe; a context manager that always stops it.

    `health_url` is polled until it answers 200 (or, with `health_url=None`, `port` until it accepts
    a TCP connection). The child runs in its own process group so SIGKILL takes its workers too.
    Output goes to a log file whose tail is quoted when the process fails to become ready.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        health_url: str | None = None,
        port: int | None = None,
        ready_timeout_s: float = 20.0,
        log_dir: Path | None = None,
    ) -> None:
        if health_url is None and port is None:
            raise ValueError("ManagedProcess needs a health_url or a port to know it is ready")
        self.name = name
        self.argv = list(argv)
        self.env = {**os.environ, **(env or {})}
        self.health_url = health_url
        self.port = port
        self.ready_timeout_s = ready_timeout_s
        self._log_dir = log_dir
        self._own_log_dir = log_dir is None
        self.log_path: Path | None = None
        self._proc: Any = None  # what _spawn made: a Popen here
        self._guarded: list[int] = []  # the groups the watchdog stops should SimCity die
        self.ready_answer: bytes | None = None  # the body of the answer that ended the last wait_ready

    @classmethod
    def python_module(cls, name: str, module: str, *args: str, **kwargs: object) -> "ManagedProcess":
        """`python -m module args...` with the running interpreter (the project's venv)."""
        return cls(name, [sys.executable, "-m", module, *args], **kwargs)  # type: ignore[arg-type]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._returncode() is None

    @property
    def returncode(self) -> int | None:
        """How it ended (negative: killed by that signal); None while it runs or before a start."""
        return self._returncode()

    # How the process is made, watched and reaped: a child of this process here; a subclass may
    # have another process fork it (booking_app.spawn's warm template) and keep the rest as is.
    def _spawn(self, log: Any) -> Any:
        return subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)

    def _returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def _wait(self, timeout_s: float) -> None:
        """Until the process has ended and is reaped; subprocess.TimeoutExpired after `timeout_s`."""
        if self._proc is not None:
            self._proc.wait(timeout=timeout_s)

    def start(self, *, ready: Ready = Ready.HEALTHY) -> "ManagedProcess":
        if self._log_dir is None:
            self._log_dir = Path(tempfile.mkdtemp(prefix=f"simcity-{self.name}-"))
            WATCHDOG.guard_dir(self._log_dir)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self._log_dir / f"{self.name}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self._proc = self._spawn(log)
        finally:
            log.close()
        # Its own session, so nothing stops it with SimCity but the watchdog (harness.stacks.watchdog).
        WATCHDOG.guard_group(self._proc.pid)
        self._guarded.append(self._proc.pid)
        try:
            self.wait_ready(ready=ready)
        except BaseException:
            self.stop()  # nothing left behind by a start that failed
            raise
        return self

    def readiness(self, ready: Ready = Ready.HEALTHY) -> Readiness:
        """What `ready` means for this process: probes of its health URL, or of its port (always,
        for a process without a health URL)."""
        if self.health_url is None:
            return PortReady(int(self.port or 0), self.name)
        if ready is Ready.LISTENING:
            url = urlsplit(self.health_url)
            return PortReady(int(url.port or 80), self.name, host=url.hostname or "127.0.0.1")
        return HttpReady(self.health_url, self.name, any_status=ready is Ready.SERVING)

    def wait_ready(self, timeout_s: float | None = None, *, ready: Ready = Ready.HEALTHY) -> float:
        """Block until the process is as far as `ready`; return the seconds it took. Raise
        StackStartError (the process exited, or the deadline passed)."""
        def still_starting() -> None:
            code = self._returncode()
            if code is not None:
                raise StackStartError(f"{self.name} exited with code {code} while starting; "
                                      f"log tail: {self.log_tail()}")

        probe = self.readiness(ready)
        took = probe.wait(timeout_s or self.ready_timeout_s, still_starting=still_starting,
                          details=lambda: f"; log tail: {self.log_tail()}")
        self.ready_answer = probe.body
        return took

    def log_tail(self, lines: int = 8) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(empty log)"

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the process and everything it spawned; reap it, and return only once every
        process of its group is gone (a worker still dying would hold the port its successor
        binds, and must never overlap with it)."""
        if self._proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self._wait(10)
        self._wait_group_gone(self._proc.pid, timeout_s=10)

    def _wait_group_gone(self, pgid: int, *, timeout_s: float) -> None:
        """Until no live process is left in the killed group `pgid` (at most `timeout_s`)."""
        group_gone(pgid, timeout_s=timeout_s)

    def restart(self, *, ready: Ready = Ready.HEALTHY) -> float:
        """Crash (SIGKILL) and respawn; return the seconds from the kill until `ready` again."""
        started = time.monotonic()
        self.kill()
        self.start(ready=ready)
        return time.monotonic() - started

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after the grace period."""
        if self._proc is None:
            return
        if self._returncode() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self._wait(grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        # Workers may outlive their parent on SIGTERM races; never leave any behind.
        self._signal_group(signal.SIGKILL)
        self._proc = None
        # A log dir of our own goes too: a failure to start already quoted its tail.
        if self._own_log_dir and self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            WATCHDOG.release_dir(self._log_dir)
            self._log_dir = None
        # Every group it ran (one per start: a crash's restart is a new one), now stopped.
        for pgid in self._guarded:
            WATCHDOG.release_group(pgid)
        self._guarded.clear()

    def __enter__(self) -> "ManagedProcess":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def group_gone(pgid: int, *, timeout_s: float) -> bool:
    """Wait until no live process is left in process group `pgid`; False if some still live at the end."""
    deadline = time.monotonic() + timeout_s
    while next(live_members(pgid), None) is not None:  # stops reading /proc at the first one
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True
