"""Loopback TCP helpers: the API server under test, upstreams to put behind a proxy (echo, sink,
talker), and client reads."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

import httpx

from harness.process import ManagedProcess


@dataclass
class Server:
    kind: str
    process: ManagedProcess
    port: int

    def __post_init__(self) -> None:
        # One keep-alive client per server for the whole session: cheaper on a busy machine.
        self.api = httpx.Client(base_url=self.url, timeout=10.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def clean(self) -> None:
        for name in self.api.get("/proxies").json():
            self.api.delete(f"/proxies/{name}")


@dataclass
class Received:
    """What one upstream connection got, and how it ended."""

    data: bytearray = field(default_factory=bytearray)
    ended: threading.Event = field(default_factory=threading.Event)
    reset: bool = False


class Upstream:
    """A threaded server on 127.0.0.1: sends `greeting` on connect, then echoes (or just records)."""

    def __init__(self, *, echo: bool = True, greeting: bytes = b"", close_after_greeting: bool = False) -> None:
        self.echo = echo
        self.greeting = greeting
        self.close_after_greeting = close_after_greeting
        self.connections: list[Received] = []
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.port = self._sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> "Upstream":
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stopped = True
        self._sock.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            record = Received()
            self.connections.append(record)
            threading.Thread(target=self._serve, args=(conn, record), daemon=True).start()

    def _serve(self, conn: socket.socket, record: Received) -> None:
        with conn:
            try:
                if self.greeting:
                    conn.sendall(self.greeting)
                if self.close_after_greeting:
                    return
                while chunk := conn.recv(65536):
                    record.data += chunk
                    if self.echo:
                        conn.sendall(chunk)
            except ConnectionResetError:
                record.reset = True
            except OSError:
                pass
            finally:
                record.ended.set()

    def wait_connections(self, count: int, timeout_s: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.connections) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.connections


def connect(listen: str, timeout_s: float = 5.0) -> socket.socket:
    host, port = listen.rsplit(":", 1)
    sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def recv_all(sock: socket.socket) -> bytes:
    """Everything until the peer closes (a reset raises ConnectionResetError)."""
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def round_trip_s(sock: socket.socket, payload: bytes = b"ping") -> float:
    started = time.monotonic()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - started
