"""Start the booking app as a child process (tests, benchmarks, the embedded local stack)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import StackStartError
from harness.process import ManagedProcess

# A killed app's processes are dead and reaped by its template within moments; past this, the
# group is waited for as any other (harness.process.group_gone).
REAPED_WITHIN_S = 0.2


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
) -> "ForkedApp":
    """The app, not yet started: ready once GET /health answers 200 (its database answers)."""
    return ForkedApp(
        f"booking-app-{strategy}", [sys.executable, "-m", "booking_app"],
        env=app_env(port, database_url, strategy, e2e, workers, extra_env),
        health_url=f"http://127.0.0.1:{port}/health",
        ready_timeout_s=ready_timeout_s, log_dir=log_dir,
    )


@dataclass(frozen=True)
class _Forked:
    pid: int


class ForkedApp(ManagedProcess):
    """The app as `python -m booking_app` would run it, forked by a warm template
    (booking_app.template) that imported everything once: a start or crash-restart then costs a
    fork, not an interpreter start and its imports. Everything else is ManagedProcess's: the app
    is its own session and process group, and a crash SIGKILLs that whole group; the template is
    outside it, and goes on `stop()` (or, should SimCity die, on its stdin's EOF, taking its apps)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._template: subprocess.Popen[bytes] | None = None
        self._answers: queue.Queue[int] = queue.Queue()
        self._exits: dict[int, int] = {}
        self._ended = threading.Condition()

    def _spawn(self, log: Any) -> _Forked:
        template = self._template if self._template and self._template.poll() is None else self._start_template()
        assert template.stdin is not None
        request = json.dumps({"env": self.env, "log": str(self.log_path)}) + "\n"
        template.stdin.write(request.encode())
        template.stdin.flush()
        try:
            return _Forked(self._answers.get(timeout=self.ready_timeout_s))
        except queue.Empty:
            raise StackStartError(f"{self.name}: its template did not fork it within {self.ready_timeout_s:.0f} s") from None

    def _start_template(self) -> subprocess.Popen[bytes]:
        template = subprocess.Popen([sys.executable, "-m", "booking_app.template"], env=self.env,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
        ready: queue.Queue[bool] = queue.Queue()
        threading.Thread(target=self._listen, args=(template, ready), daemon=True,
                         name=f"{self.name}-template").start()
        try:
            ready.get(timeout=self.ready_timeout_s)
        except queue.Empty:
            template.kill()
            template.wait()
            raise StackStartError(f"{self.name}: its template did not load within {self.ready_timeout_s:.0f} s") from None
        self._template = template
        return template

    def _listen(self, template: subprocess.Popen[bytes], ready: "queue.Queue[bool]") -> None:
        assert template.stdout is not None
        for line in template.stdout:
            message = json.loads(line)
            if "ready" in message:
                ready.put(True)
            elif "forked" in message:
                self._answers.put(int(message["forked"]))
            elif "exited" in message:
                with self._ended:
                    self._exits[int(message["exited"])] = int(message["code"])
                    self._ended.notify_all()

    def release(self) -> None:
        """Let the app outlive this process (`simcity stack up`): its template no longer takes it
        along when its owner goes. It is stopped later by its owner mark (`simcity stack down`)."""
        if self._template is not None and self._template.poll() is None:
            assert self._template.stdin is not None
            self._template.stdin.write(b'{"release": true}\n')
            self._template.stdin.flush()

    def _returncode(self) -> int | None:
        return None if self._proc is None else self._exits.get(self._proc.pid)

    def _wait(self, timeout_s: float) -> None:
        if self._proc is None:
            return
        with self._ended:
            if not self._ended.wait_for(lambda: self._proc is None or self._proc.pid in self._exits, timeout_s):
                raise subprocess.TimeoutExpired(self.argv, timeout_s)

    def _wait_group_gone(self, pgid: int, *, timeout_s: float) -> None:
        # The template adopts and reaps the app's orphans (booking_app.template), so the group is
        # gone, zombies included, once kill(-pgid, 0) fails: a system call a look, where a scan of
        # /proc for live members cost 0.5 ms of CPU with 110 processes on the machine. The scan
        # stays the fallback for a member the template cannot reap (one whose parent left the group).
        deadline = time.monotonic() + REAPED_WITHIN_S
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.0005)
        super()._wait_group_gone(pgid, timeout_s=timeout_s)

    def stop(self, grace_s: float = 5.0) -> None:
        try:
            super().stop(grace_s)
        finally:
            template, self._template = self._template, None
            if template is not None:
                assert template.stdin is not None
                template.stdin.close()  # its EOF: it ends, and takes any app of its own along
                try:
                    template.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    template.kill()
                    template.wait()
