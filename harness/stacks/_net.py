"""Loopback ports for the services a stack starts, never the same one twice at once.

The services are told their port before they bind it, so between the probe and the bind the port
must stay SimCity's: the kernel readily hands a port just closed to the next `bind(0)`, of this
process (a proxy's API and its listener would share one) or of another SimCity run on the same
machine (two CI jobs side by side). A port is therefore claimed twice over: in a set for this
process, and across processes by a POSIX record lock on the port's byte of one shared lock file.
The kernel drops such locks when their process ends, however it ends (kill -9 too), so nothing
stale is ever left to clean up; the lock file itself stays, empty, as lock files do.

What this cannot exclude is a program other than SimCity taking the port meanwhile (e.g. as the
source port of an outgoing connection); its service then fails to bind and the stack start says so.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from pathlib import Path

from harness.errors import InfrastructureError

# Not under TMPDIR: every SimCity process on the machine must find the same file, whatever its
# TMPDIR (the tests give each run a private one). /run/lock is the system's place for lock files.
LOCK_DIRS = (Path("/run/lock"), Path("/tmp"))
LOCK_NAME = "simcity-ports.lock"
LOCK_FILE_ENV = "SIMCITY_PORT_LOCK_FILE"

_claimed: set[int] = set()
_claimed_lock = threading.Lock()
_lock_fd: int | None = None
_lock_opened = False


def _shared_lock_fd() -> int | None:
    """The one descriptor of the shared lock file, opened once and never closed: closing any
    descriptor of a file drops all of this process's record locks on it. None where no lock
    file can be opened for writing (then ports are claimed within this process only)."""
    global _lock_fd, _lock_opened
    if not _lock_opened:
        _lock_opened = True
        override = os.environ.get(LOCK_FILE_ENV)
        candidates = [Path(override)] if override else [d / LOCK_NAME for d in LOCK_DIRS if d.is_dir()]
        for path in candidates:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except OSError:
                continue
            try:
                os.fchmod(fd, 0o666)  # other users' SimCity runs share it (umask narrowed it)
            except OSError:
                pass  # someone else's file: it is already shared, or it is not ours to widen
            _lock_fd = fd
            break
    return _lock_fd


def claim(port: int) -> bool:
    """Make `port` this process's for as long as it lives; False if this process or another
    SimCity process already has it."""
    with _claimed_lock:
        if port in _claimed:
            return False
        fd = _shared_lock_fd()
        if fd is not None:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port, os.SEEK_SET)
            except OSError:
                return False  # held by another process
        _claimed.add(port)
        return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and that no SimCity process has
    been handed before, claimed for this process (see the module's doc)."""
    for _ in range(1000):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if claim(port):
            return port
    raise InfrastructureError("no loopback port left that no SimCity process has claimed already")
