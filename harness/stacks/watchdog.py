"""A dead man's switch for what SimCity starts on this machine.

A SimCity process killed outright (kill -9, the OOM killer, a CI job's timeout, a library user's
test run that dies) cannot stop its own children, and PostgreSQL, the REST and proxy stand-ins
run in sessions of their own, so nothing else does either. So, while any of them runs, a small
process of its own (`python -m harness.stacks.watchdog`) holds the read end of a pipe from
SimCity and is told each process group, temp dir and Compose project as it is made, and again
when SimCity has cleaned it up itself. When the pipe reaches end-of-file with something still on
its list, SimCity is gone: it SIGKILLs those groups, removes those dirs and Compose projects, then
exits. With nothing left on the list the pipe is closed and the watchdog exits at once, so no
SimCity command leaves it behind.

A group is stopped only if it is still the one that was registered: its leader has the start
time it had then, or, the leader gone, the live members were born after it (a pid reused since
is never signalled). The only dirs removed are the ones SimCity made.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from harness.stacks.reaper import proc_stat, start_ticks


class Watchdog:
    """SimCity's side: one watchdog process per SimCity process, started on the first
    registration and closed when the last one is released."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._held: set[tuple[str, str]] = set()

    def guard_group(self, pgid: int) -> None:
        """Stop process group `pgid` (whose leader is `pgid`, alive now) should SimCity die."""
        ticks = start_ticks(pgid)
        if ticks is not None:
            self._tell("group", f"{pgid} {ticks}", key=str(pgid))

    def release_group(self, pgid: int) -> None:
        self._forget("group", str(pgid))

    def guard_dir(self, path: Path) -> None:
        """Remove `path`, a temp dir SimCity made, should SimCity die."""
        self._tell("dir", str(path), key=str(path))

    def release_dir(self, path: Path) -> None:
        self._forget("dir", str(path))

    def guard_compose_project(self, project: str) -> None:
        """Remove Compose project `project` (its containers, networks, volumes) should SimCity die."""
        self._tell("compose", project, key=project)

    def release_compose_project(self, project: str) -> None:
        self._forget("compose", project)

    def release_all(self) -> None:
        """Leave everything running (a detached `simcity stack up`) and stop the watchdog."""
        with self._lock:
            if self._proc is not None:
                self._write("-all")
            self._held.clear()
            self._close()

    def _tell(self, kind: str, value: str, *, key: str) -> None:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                # Its own session: a Ctrl-C to SimCity's process group must not stop it first.
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "harness.stacks.watchdog"], stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            self._held.add((kind, key))
            self._write(f"+{kind} {value}")

    def _forget(self, kind: str, key: str) -> None:
        with self._lock:
            if (kind, key) not in self._held:
                return
            self._held.discard((kind, key))
            self._write(f"-{kind} {key}")
            if not self._held:
                self._close()

    def _write(self, line: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(line.encode() + b"\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # it died: nothing more to be done by it

    def _close(self) -> None:
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        try:
            assert proc.stdin is not None
            proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


WATCHDOG = Watchdog()


# --- the watchdog process itself ---------------------------------------------------------------


def live_members(pgid: int) -> Iterator[tuple[int, int]]:
    """(pid, start ticks) of each live process in group `pgid`, as /proc is read (zombies are
    dead: their sockets are closed; whoever adopted them reaps them).

    Every crash waits on one scan that finds its group empty, a look at every process of the
    machine: getpgid() first (one system call) and /proc/<pid>/stat only for the group's own
    makes it 0.08 ms instead of 0.85 ms with 131 processes, and a loaded CI runner has more."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
        except OSError:  # gone already
            continue
        fields = proc_stat(entry.name)  # its state and start; the pgid again, as the pid may be reused
        if fields is not None and fields[0] not in (b"Z", b"X") and int(fields[2]) == pgid:
            yield int(entry.name), int(fields[19])


def stop_group(pgid: int, ticks: int) -> None:
    """SIGKILL group `pgid` if it is still the one registered with its leader's start `ticks`."""
    if start_ticks(pgid) == ticks or any(born >= ticks for _, born in live_members(pgid)):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main() -> None:
    # Signals sent to SimCity's terminal or job must not stop the one process that cleans up.
    for each in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(each, signal.SIG_IGN)
    groups: dict[int, int] = {}
    dirs: set[str] = set()
    projects: set[str] = set()
    for raw in sys.stdin.buffer:
        line = raw.decode(errors="replace").rstrip("\n")
        sign, kind, _, value = line[:1], *line[1:].partition(" ")
        if kind == "all":
            groups.clear()
            dirs.clear()
            projects.clear()
        elif kind == "compose" and sign == "+":
            projects.add(value)
        elif kind == "compose":
            projects.discard(value)
        elif kind == "group":
            if sign == "+":
                pgid, ticks = value.split()
                groups[int(pgid)] = int(ticks)
            else:
                groups.pop(int(value), None)
        elif kind == "dir" and sign == "+":
            dirs.add(value)
        elif kind == "dir":
            dirs.discard(value)
    for pgid, ticks in groups.items():
        stop_group(pgid, ticks)
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)
    if projects:
        # Only now: the Docker SDK is a heavy import, and a SimCity that cleaned up never needs it.
        from harness.stacks.compose import stop_detached  # noqa: PLC0415

        for project in projects:
            try:
                stop_detached(project)  # SimCity's own project names only
            except Exception:  # noqa: BLE001 - an engine gone too: nothing left to remove it with
                pass


if __name__ == "__main__":
    main()
