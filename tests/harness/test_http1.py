"""harness.http1 against a real socket server on loopback that answers with bytes of the test's
choosing: the framing rules it keeps on top of httptools' parser."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from harness import http1


@contextmanager
def answering(*chunks: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """A one-connection server at the yielded URL: it reads the request (kept in the yielded list),
    sends `chunks` one by one, then closes."""
    requests: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(5)

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                requests.append(conn.recv(65536))
                for chunk in chunks:
                    conn.sendall(chunk)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.getsockname()[1]}", requests
        thread.join(timeout=5)


@pytest.mark.parametrize(("chunks", "status", "reason", "body"), [
    pytest.param([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", b"lo"], 200, "OK", b"hello", id="length"),
    pytest.param([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", b"2\r\nde\r\n0\r\n\r\n"],
                 200, "OK", b"abcde", id="chunked"),
    # No length and not chunked: the body runs to the close (an app on a bare server may do this).
    pytest.param([b"HTTP/1.0 503 Service Unavailable\r\n\r\n{\"status\"", b": \"down\"}"],
                 503, "Service Unavailable", b'{"status": "down"}', id="to-the-close"),
    pytest.param([b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"],
                 201, "Created", b"ok", id="interim-skipped"),
    pytest.param([b"HTTP/1.1 204 No Content\r\n\r\n"], 204, "No Content", b"", id="no-content"),
])
def test_a_whole_answer_is_read(chunks: list[bytes], status: int, reason: str, body: bytes) -> None:
    with answering(*chunks) as (url, _):
        assert http1.get(url + "/x", 5) == http1.Answer(status, reason, body)


@pytest.mark.parametrize(("chunks", "message"), [
    pytest.param([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], "in the middle of the answer's body", id="short"),
    pytest.param([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"], "in the middle", id="chunk-cut"),
    pytest.param([b"HTTP/1.1 200 OK\r\nContent"], "before an answer's head ended", id="head-cut"),
    pytest.param([], "before an answer's head ended", id="nothing"),
    pytest.param([b"HTTP/1.1 100 Continue\r\n\r\n"], "in the middle", id="only-interim"),
    pytest.param([b"SSH-2.0-OpenSSH_9.2\r\n\r\n"], "not an HTTP/1.1 answer", id="not-http"),
])
def test_a_cut_or_bad_answer_is_an_error_never_an_answer(chunks: list[bytes], message: str) -> None:
    with answering(*chunks) as (url, _), pytest.raises(http1.MalformedAnswerError, match=message):
        http1.get(url, 5)


def test_the_request_names_host_port_target_and_body_and_asks_to_close() -> None:
    with answering(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") as (url, requests):
        origin = http1.Origin.of(url)
        sock = http1.connect(origin, 5)
        try:
            http1.exchange(sock, origin, "POST", "/proxies/app?x=1", headers=[("Content-Type", "application/json")],
                           body=b'{"enabled": true}')
        finally:
            sock.close()
    head, _, body = requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /proxies/app?x=1 HTTP/1.1"
    assert set(lines[1:]) == {f"Host: {url.removeprefix('http://')}", "Connection: close",
                              "Content-Type: application/json", "Content-Length: 17"}
    assert body == b'{"enabled": true}'


def test_a_silent_server_times_out_and_nothing_listening_refuses() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(TimeoutError):
            http1.get(url, 0.3)
    with pytest.raises(ConnectionRefusedError):
        http1.get(url, 1)


def test_bytes_past_the_answer_make_the_connection_unfit_for_another_request() -> None:
    reader = http1.AnswerReader()
    assert reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n")
    assert reader.answer() == http1.Answer(200, "OK", b"ok")  # the first answer, not overwritten
    assert not reader.keeps_alive()


@pytest.mark.parametrize(("answer", "keeps_alive"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok", False),  # not whole yet
])
def test_a_connection_is_kept_only_after_a_whole_answer_that_allows_it(answer: bytes, keeps_alive: bool) -> None:
    reader = http1.AnswerReader()
    reader.feed(answer)
    assert reader.keeps_alive() is keeps_alive


@pytest.mark.parametrize("header", [("Authorization", "Bearer k\r\nX-Injected: 1"), ("Bad Name", "v"), ("", "v"),
                                    ("X", "nul\0")])
def test_a_header_that_would_break_the_framing_is_refused_without_showing_its_value(header: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="has a character a header cannot carry") as caught:
        http1.encode_request("GET", "/", [header])
    assert "Bearer" not in str(caught.value) and "nul" not in str(caught.value)


@pytest.mark.parametrize(("url", "host"), [
    ("http://127.0.0.1:8474/x", "127.0.0.1:8474"), ("https://rest.example:443/", "rest.example"),
    ("http://user:pw@h:80", "h"), ("http://[::1]:9/", "[::1]:9"),
])
def test_the_host_header_names_the_port_unless_it_is_the_schemes_own(url: str, host: str) -> None:
    assert http1.Origin.of(url).host_header == host


def test_a_named_host_is_resolved_and_an_address_is_not() -> None:
    assert http1.Origin.of("http://127.0.0.1:1").family is socket.AF_INET
    assert http1.Origin.of("http://[::1]:1").family is socket.AF_INET6
    assert http1.Origin.of("http://localhost:1").family is None
    with answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") as (url, _):
        assert http1.get(url.replace("127.0.0.1", "localhost"), 5).body == b"ok"
