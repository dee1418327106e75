"""What a stopped SimCity run may have left behind: shared by the tests that stop runs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import psutil


def private_tmpdir() -> Path:
    """A temp dir of a run's own (passed as TMPDIR), so other suites' temp dirs on this machine
    do not count. Short, since PostgreSQL's socket path must fit, and traversable, since
    PostgreSQL runs unprivileged and must reach its data dir."""
    directory = Path(tempfile.mkdtemp(prefix="sc-"))
    directory.chmod(0o711)
    return directory


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def processes_in(tmpdir: Path) -> list[psutil.Process]:
    """The live processes whose TMPDIR is `tmpdir` (a private_tmpdir): what a run in it left running."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("TMPDIR") == str(tmpdir) and alive(process):
                found.append(process)
        except psutil.Error:  # gone meanwhile, or not ours to read
            continue
    return found


def booking_app_masters(pid: int) -> list[psutil.Process]:
    """The booking apps' master processes among `pid`'s descendants: the processes their warm
    template (booking_app.template) forked. Each master's own children are its workers."""
    masters = []
    for process in psutil.Process(pid).children(recursive=True):
        try:
            parent = process.parent()
            if parent is not None and parent.cmdline()[-2:] == ["-m", "booking_app.template"]:
                masters.append(process)
        except psutil.Error:
            continue
    return masters
