"""A warm template of the booking app: it imports everything the app needs once, then forks a
fresh app on request, so a crash-restart costs a fork instead of an interpreter start and its
imports (most of a restart's time).

The template never serves and holds no socket, event loop, thread or connection, so each app it
forks starts from a clean state, as a new process of the same image would, and sets itself up
exactly as `python -m booking_app` does (its own session, its own environment, its own log). A
crash stays a real SIGKILL of every process of the app; the template is not one of them.

Protocol, one JSON object per line (each written whole with one write(2), so lines never mix):
  stdin   {"env": {...}, "log": "/path/app.log"}   fork an app with this environment and log
          {"release": true}                         its apps outlive it (`simcity stack up`)
  stdout  {"ready": true}                           once, when the imports are done
          {"forked": PID}                           answer to each request, in order
          {"exited": PID, "code": N}                an app ended (N < 0: killed by signal -N)
On EOF of stdin (its owner is gone, even by kill -9) it SIGKILLs every app it forked and exits,
unless its owner released them.

It is a child subreaper (prctl PR_SET_CHILD_SUBREAPER): a killed app's workers, orphaned when its
master dies, become its children, and it reaps them at once. So the app's process group is empty,
zombies included, the moment its last process is dead, and kill(-pgid, 0) tells its owner that in
one system call, where a machine's init may leave zombies for seconds (1.6 s seen here) and a look
for live members is a scan of /proc.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from typing import Any

# What a start would import: the app, its server, its database driver, the strategies.
import booking_app.__main__ as app_main  # noqa: E402
import booking_app.serve  # noqa: F401, E402

_apps: set[int] = set()
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def _become_subreaper() -> None:
    """Adopt the orphans of every app this template forks (Linux); elsewhere, init does."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _say(message: dict[str, Any]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def _reap(signum: int = 0, frame: object = None) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in _apps:  # else an app's orphan, adopted: its master's exit is the news
            _apps.discard(pid)
            _say({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _become_app(env: dict[str, str], log: str) -> None:
    """In the forked child: the app's own session, stdio and environment, then its main()."""
    code = 1
    try:
        os.setsid()
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(env)
        code = app_main.main()
    except BaseException:  # noqa: BLE001 - reported in the app's log; never back into the template's loop
        import traceback  # noqa: PLC0415

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> int:
    _become_subreaper()
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # its owner stops it by closing stdin
    _say({"ready": True})
    released = False
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("release"):
            released = True
            continue
        pid = os.fork()
        if pid == 0:
            _become_app({str(k): str(v) for k, v in request["env"].items()}, str(request["log"]))
        _apps.add(pid)
        _say({"forked": pid})
    for pid in [] if released else list(_apps):  # the owner is gone: so is every app it had
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
