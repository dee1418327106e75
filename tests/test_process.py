import sys

import pytest

from harness.errors import StackStartError
from harness.stacks._net import free_port
from harness.process import ManagedProcess, Ready


def _http_server(port: int) -> ManagedProcess:
    return ManagedProcess("echo", [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                          health_url=f"http://127.0.0.1:{port}/")


def test_start_restart_stop_real_process() -> None:
    port = free_port()
    with _http_server(port) as proc:
        first = proc.pid
        took = proc.restart()
        assert proc.pid != first and proc.running()
        assert took > 0
    assert not proc.running()


def test_exit_while_starting_is_a_stack_start_error_with_log_tail() -> None:
    proc = ManagedProcess("dies", [sys.executable, "-c", "print('boom'); raise SystemExit(7)"], port=free_port())
    with pytest.raises(StackStartError, match="exited with code 7.*boom"):
        proc.start()


# Accepts connections and never answers a request: an app whose every answer waits on a database
# that is cut off.
SILENT_LISTENER = """
import socket, sys, time
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
held = []
while True:
    held.append(server.accept()[0])
"""


def test_listening_is_ready_when_the_port_accepts_while_health_never_answers() -> None:
    port = free_port()
    proc = ManagedProcess("silent", [sys.executable, "-c", SILENT_LISTENER, str(port)],
                          health_url=f"http://127.0.0.1:{port}/health", ready_timeout_s=1.5)
    with pytest.raises(StackStartError, match=r"not serving at .*/health after 2 s"):
        proc.start(ready=Ready.SERVING)
    try:
        proc.start(ready=Ready.LISTENING)
        assert proc.running() and proc.ready_answer is None
        proc.restart(ready=Ready.LISTENING)
        assert proc.running()
    finally:
        proc.stop()
