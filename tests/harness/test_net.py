"""Ports a stack's services are told before they bind: never one twice, in a process or across."""

from __future__ import annotations

import subprocess
import sys

from harness.stacks import _net
from harness.stacks._net import free_port

CLAIM_AND_WAIT = ("import sys; from harness.stacks._net import free_port; "
                  "print(*(free_port() for _ in range(20)), flush=True); sys.stdin.read()")


def test_free_port_never_hands_out_a_port_twice() -> None:
    # Successive calls used to return a port just closed again (521 of 2000 pairs collided).
    ports = [free_port() for _ in range(2000)]
    assert len(set(ports)) == len(ports)


def test_a_port_another_simcity_process_holds_is_not_handed_out_until_that_process_is_gone() -> None:
    other = subprocess.Popen([sys.executable, "-c", CLAIM_AND_WAIT], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None
        theirs = [int(word) for word in other.stdout.readline().split()]
        assert len(theirs) == 20
        assert [port for port in theirs if _net.claim(port)] == []
        other.kill()  # kill -9: the kernel drops its locks all the same
        other.wait(timeout=10)
    finally:
        if other.poll() is None:
            other.kill()
    assert all(_net.claim(port) for port in theirs)
