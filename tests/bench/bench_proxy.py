"""simcity-toxiproxy vs a direct loopback connection.

Starts the stand-in and, in a child process, an echo server and a sink, then prints:
- 1 KiB echo round trips: p50/p99 direct, through the proxy, and the latency the proxy adds;
- 64 MiB bulk upload: MB/s direct and through the proxy, and the fraction kept;
- a 100 ms latency toxic: the measured round-trip p50;
- the server's RSS idle, and with 1,000 idle connections open through one proxy.
Targets: added p50 < 0.25 ms, throughput >= 20% of direct, latency toxic p50 within 100-103 ms.
(The real Go server: +0.11-0.16 ms p50, ~26% of direct, 100.8-100.9 ms.)
"""

from __future__ import annotations

import multiprocessing
import socket
import statistics
import struct
import threading
import time

import httpx
import psutil

from harness.stacks._net import free_port
from toxics.server import toxiproxy_process
from tests.bench.stats import percentile

ROUND_TRIPS = 3000
WARMUP = 300
PAYLOAD = b"x" * 1024
BULK = 64 * 1024 * 1024
BULK_RUNS = 3
LATENCY_TRIPS = 40
IDLE = 1000


def _echo(conn: socket.socket) -> None:
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := conn.recv(65536):
            conn.sendall(data)


def _sink(conn: socket.socket) -> None:
    """Reads an 8-byte length, then that many bytes (into one reused buffer), then answers one byte."""
    buffer = memoryview(bytearray(1 << 20))
    with conn:
        header = b""
        while len(header) < 8:
            header += conn.recv(8 - len(header))
        left = struct.unpack("!Q", header)[0]
        while left > 0:
            got = conn.recv_into(buffer, min(left, len(buffer)))
            if not got:
                return
            left -= got
        conn.sendall(b"k")


def _serve(ports: "multiprocessing.Queue[tuple[int, int]]") -> None:
    """Plain blocking servers, a thread per connection, in their own process: as fast as Python gets."""
    listeners = [socket.create_server(("127.0.0.1", 0), backlog=2048) for _ in range(2)]
    ports.put((listeners[0].getsockname()[1], listeners[1].getsockname()[1]))

    def accept(listener: socket.socket, handler: object) -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, args=(listeners[1], _sink), daemon=True).start()
    accept(listeners[0], _echo)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exactly(sock: socket.socket, size: int) -> None:
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("closed early")
        size -= len(chunk)


def _round_trips(port: int, count: int, warmup: int = WARMUP) -> list[float]:
    with _connect(port) as sock:
        samples = []
        for i in range(warmup + count):
            started = time.perf_counter()
            sock.sendall(PAYLOAD)
            _recv_exactly(sock, len(PAYLOAD))
            if i >= warmup:
                samples.append((time.perf_counter() - started) * 1000)
        return samples


def _bulk_mb_s(port: int) -> float:
    block = b"\0" * (1 << 20)
    with _connect(port) as sock:
        started = time.perf_counter()
        sock.sendall(struct.pack("!Q", BULK))
        for _ in range(BULK // len(block)):
            sock.sendall(block)
        _recv_exactly(sock, 1)
        return BULK / (time.perf_counter() - started) / 1e6



def main() -> None:
    ports: multiprocessing.Queue[tuple[int, int]] = multiprocessing.Queue()
    upstreams = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    upstreams.start()
    echo_port, sink_port = ports.get(timeout=30)
    api_port = free_port()
    try:
        with toxiproxy_process(api_port) as server, httpx.Client(base_url=f"http://127.0.0.1:{api_port}") as api:
            def proxy(name: str, upstream: int) -> int:
                body = {"name": name, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream}"}
                return int(api.post("/proxies", json=body).json()["listen"].rsplit(":", 1)[1])

            echo_proxy, sink_proxy = proxy("echo", echo_port), proxy("sink", sink_port)

            direct = _round_trips(echo_port, ROUND_TRIPS)
            proxied = _round_trips(echo_proxy, ROUND_TRIPS)
            d50, d99, p50, p99 = percentile(direct, .5), percentile(direct, .99), percentile(proxied, .5), percentile(proxied, .99)
            print(f"1 KiB echo round trip, direct : p50 {d50:.3f} ms  p99 {d99:.3f} ms")
            print(f"1 KiB echo round trip, proxied: p50 {p50:.3f} ms  p99 {p99:.3f} ms")
            print(f"added by the proxy            : p50 {p50 - d50:.3f} ms  p99 {p99 - d99:.3f} ms  (target p50 < 0.25 ms)")

            direct_mb = statistics.median(_bulk_mb_s(sink_port) for _ in range(BULK_RUNS))
            proxied_mb = statistics.median(_bulk_mb_s(sink_proxy) for _ in range(BULK_RUNS))
            print(f"64 MiB bulk, direct           : {direct_mb:8.0f} MB/s (median of {BULK_RUNS})")
            print(f"64 MiB bulk, proxied          : {proxied_mb:8.0f} MB/s = {proxied_mb / direct_mb:.0%} of direct"
                  " (target >= 20%)")

            api.post("/proxies/echo/toxics", json={"type": "latency", "attributes": {"latency": 100}})
            toxic = _round_trips(echo_proxy, LATENCY_TRIPS, warmup=2)
            print(f"latency toxic 100 ms          : p50 {percentile(toxic, .5):.2f} ms  p99 {percentile(toxic, .99):.2f} ms"
                  " (target 100-103 ms)")
            api.delete("/proxies/echo/toxics/latency_downstream")

            process = psutil.Process(server.pid)
            idle_rss = process.memory_info().rss
            held = []
            for _ in range(IDLE):
                sock = _connect(echo_proxy)
                sock.sendall(b"!")
                _recv_exactly(sock, 1)
                held.append(sock)
            loaded_rss = process.memory_info().rss
            for sock in held:
                sock.close()
            print(f"server RSS                    : {idle_rss / 1e6:.1f} MB idle, {loaded_rss / 1e6:.1f} MB with "
                  f"{IDLE} idle connections ({(loaded_rss - idle_rss) / IDLE / 1024:.1f} KiB each)")
    finally:
        upstreams.kill()


if __name__ == "__main__":
    main()
