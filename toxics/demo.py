"""`make chaos` until the harness exists: a fault profile applied and healed, with its effect measured.

Starts the Toxiproxy stand-in and a TCP echo server on free loopback ports, puts one proxy per hop
in front of the echo server, then times round trips through the `client-app` hop before, during and
after the `latency` profile, and shows a partition refusing connections until it is healed.
Bounded (every socket and API call has a timeout), stops by itself; exit 0, or 3 with a one-line
error when the infrastructure fails.
"""

from __future__ import annotations

import socket
import socketserver
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from types import TracebackType

from harness.errors import InfrastructureError
from harness.stacks._net import free_port
from toxics.control import Partition, ToxiproxyController
from toxics.profiles import load_profile
from toxics.server import toxiproxy_process

SOCKET_TIMEOUT_S = 10.0


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(SOCKET_TIMEOUT_S)
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass  # a fault cut the connection: that is the point


class _EchoTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True  # a connection a fault left hanging must not block shutdown


class EchoServer:
    """A threaded TCP echo server on a free loopback port; a context manager."""

    def __init__(self) -> None:
        self._server = _EchoTCPServer(("127.0.0.1", 0), _Echo)
        self.address = "{}:{}".format(*self._server.server_address)
        self._thread = threading.Thread(target=self._server.serve_forever, name="echo", daemon=True)

    def __enter__(self) -> EchoServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


def round_trip_s(port: int, payload: bytes = b"ping") -> float:
    """Seconds to connect to 127.0.0.1:`port`, send `payload` and read it back."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(len(payload) - len(received))
            if not chunk:
                raise ConnectionError(f"127.0.0.1:{port} closed the connection before echoing")
            received += chunk
    return time.monotonic() - started


def _median_ms(port: int, samples: int = 3) -> float:
    return statistics.median(round_trip_s(port) for _ in range(samples)) * 1000


def _refused(port: int) -> bool:
    try:
        round_trip_s(port)
    except ConnectionRefusedError:
        return True
    return False


def run() -> None:
    profile = load_profile("latency")
    api_port = free_port()
    with ExitStack() as stack:
        echo = stack.enter_context(EchoServer())
        stack.enter_context(toxiproxy_process(api_port))
        ctl = stack.enter_context(ToxiproxyController(f"http://127.0.0.1:{api_port}", retry_for_s=5.0))
        # Proxies are named after their hops; here both hops lead to the echo server.
        ports = {hop: ctl.ensure_proxy(hop, listen="127.0.0.1:0", upstream=echo.address).listen_port
                 for hop in profile.hops}
        print(f"toxiproxy stand-in {ctl.version()} at {ctl.url}; hops {', '.join(ports)} -> echo {echo.address}")
        print(f"profile {profile.name!r}: {profile.description}")
        for fault in profile.faults:
            print(f"  {fault.describe()}")

        before = _median_ms(ports["client-app"])
        with ExitStack() as faults:
            for hop in profile.hops:
                faults.enter_context(ctl.injected(hop, *profile.effects(hop)))
            during = _median_ms(ports["client-app"])
        after = _median_ms(ports["client-app"])
        print(f"round trip via client-app: before {before:.1f} ms, during {during:.1f} ms, after {after:.1f} ms (healed)")

        with ctl.injected("app-db", Partition()):
            cut = "connections refused" if _refused(ports["app-db"]) else "STILL ACCEPTING (unexpected)"
        print(f"partition of app-db: {cut}; healed: round trip {_median_ms(ports['app-db']):.1f} ms")


def main() -> int:
    try:
        run()
    except (InfrastructureError, OSError) as exc:
        print(f"chaos demo: infrastructure error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
