import sys

import pytest

from harness.errors import StackStartError
from harness.stacks._net import free_port
from harness.process import ManagedProcess


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
