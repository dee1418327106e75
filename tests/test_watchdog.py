"""The watchdog (harness.stacks.watchdog): a SimCity process killed with -9 leaves nothing running and no
temp dir, whoever used it (here a library user's script, which sets no owner mark for a sweep
to find); a group whose pid was reused is never signalled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

from harness.stacks.reaper import start_ticks
from harness.stacks.watchdog import live_members, stop_group
from tests.leftovers import alive, private_tmpdir, processes_in

LIBRARY_USER = textwrap.dedent("""
    import time
    from harness import LocalStack
    stack = LocalStack({"BOOKING_STRATEGY": "atomic"})
    stack.start()
    print("up", flush=True)
    time.sleep(120)
""")


def wait_until(condition, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_library_user_killed_with_sigkill_leaves_no_process_and_no_temp_dir() -> None:
    tmpdir = private_tmpdir()
    user = subprocess.Popen([sys.executable, "-c", LIBRARY_USER], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmpdir)}, cwd=Path(__file__).resolve().parents[1])
    try:
        assert user.stdout is not None and user.stdout.readline().strip() == "up"
        running = processes_in(tmpdir)
        # PostgreSQL, the REST and proxy stand-ins, the app (its template, master and workers), the watchdog.
        assert len(running) >= 6, running
        user.kill()
        user.wait()
        assert wait_until(lambda: processes_in(tmpdir) == [], 15), processes_in(tmpdir)
        assert wait_until(lambda: list(tmpdir.iterdir()) == [], 5), list(tmpdir.iterdir())
    finally:
        if user.poll() is None:
            user.kill()
        for process in processes_in(tmpdir):
            process.kill()
        tmpdir.rmdir()


def test_a_group_is_stopped_only_while_it_is_the_one_registered() -> None:
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        ticks = start_ticks(sleeper.pid)
        assert ticks is not None
        stop_group(sleeper.pid, ticks + 1)  # a leader started later: the pid was reused
        time.sleep(0.2)
        assert alive(psutil.Process(sleeper.pid))
        stop_group(sleeper.pid, ticks)
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


def test_a_groups_live_members_are_its_own_processes_and_not_its_zombies() -> None:
    # A leader in its own session with two children: one sleeps, one exits at once and stays a
    # zombie, since the leader never reaps it (exec'd into sleep, it knows nothing of children).
    leader = subprocess.Popen(["sh", "-c", "sleep 30 & true & exec sleep 30"], start_new_session=True)
    try:
        assert wait_until(lambda: len(psutil.Process(leader.pid).children()) == 2, 5)
        children = psutil.Process(leader.pid).children()
        assert wait_until(lambda: any(c.status() == psutil.STATUS_ZOMBIE for c in children), 5)
        sleeping = {c.pid for c in children if c.status() != psutil.STATUS_ZOMBIE}
        assert {pid for pid, _ in live_members(leader.pid)} == {leader.pid, *sleeping}
        assert all(pid != leader.pid for pid, _ in live_members(os.getpgid(0)))  # another group's are not
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait(timeout=5)
        assert wait_until(lambda: next(live_members(leader.pid), None) is None, 5)
    finally:
        if leader.poll() is None:
            os.killpg(leader.pid, signal.SIGKILL)
            leader.wait()
