"""HTTP/1.1 for SimCity's own clients: requests encoded once, answers read with httptools.

- `AnswerReader` reads one answer from whatever bytes come (the booking client and the truth
  reader drive it from asyncio, `exchange` from a blocking socket).
- `encode_request` makes a request's bytes; a caller that sends the same request again keeps them.
- `Origin`: where a URL's requests go, parsed once.
- `connect`, `exchange` and `get`: one request on a fresh blocking connection, for the synchronous
  calls (readiness probes, the Toxiproxy API).

Why not h11 or `http.client`: a run makes one to four HTTP exchanges per action, each after the
step's pause, with cold caches. h11 (pure Python) took 47 us an exchange warm; `http.client`
parses an answer's head with the stdlib's email parser, which was half of what a Toxiproxy call
cost the harness. httptools is the C parser (llhttp, Node's) that uvicorn already brings: under
1 us for an answer. It parses; the rules of HTTP/1.1 framing it leaves to its caller are kept here:
an answer with neither a length nor chunks ends at the close, interim 1xx answers are skipped, and
bytes past the answer make the connection unfit for another request.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from harness.tls import tls_context

_READ_SIZE = 65536


class MalformedAnswerError(Exception):
    """What came back is not a whole HTTP/1.1 answer: bad bytes, or the connection closed before
    the answer's end."""


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    body: bytes


def encode_request(method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes | None = None) -> bytes:
    """A request's bytes, with Content-Length when it has a body. ValueError for a header that
    would break the request's framing (its value is not shown: it may be a key)."""
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    for name, value in headers:
        if not name or any(c in name for c in ":\r\n\0 ") or any(c in value for c in "\r\n\0"):
            raise ValueError(f"the HTTP header {name!r} has a character a header cannot carry")
        lines.append(f"{name}: {value}\r\n")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + (body or b"")


@dataclass(frozen=True)
class Origin:
    """Where a URL's requests go, and the Host header they name: the host, and the port unless it
    is the scheme's own."""

    host: str
    port: int
    tls: bool
    host_header: str

    @staticmethod
    def of(url: str) -> Origin:
        """`url`'s origin. Its callers keep it (a client, a controller), or `get`'s cache does."""
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        tls = parts.scheme == "https"
        named = f"[{host}]" if ":" in host else host
        return Origin(host, parts.port or (443 if tls else 80), tls,
                      named if parts.port in (None, 80, 443) else f"{named}:{parts.port}")

    @functools.cached_property
    def family(self) -> socket.AddressFamily | None:
        """The address family of a numeric host (None for a name, which needs resolving)."""
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                socket.inet_pton(family, self.host)
            except OSError:
                continue
            return family
        return None


class _Surplus(Exception):
    """Raised inside the parser to stop it at bytes past the answer."""


class AnswerReader:
    """httptools' callbacks for one answer (and any interim 1xx answers before it). `feed()` the
    bytes as they come, and `closed_by_server()` at the end of the stream."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.reason = ""
        self.chunks: list[bytes] = []
        self.complete = False
        self.surplus = False  # bytes came after the answer, or its end: the connection cannot carry another
        self._head_done = self._delimited = self._keep_alive = False

    def feed(self, data: bytes) -> bool:
        """Parse more of the answer; whether it is now whole. MalformedAnswerError on bad bytes."""
        if self.complete:
            self.surplus = True
            return True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _Surplus):
                raise
            self.surplus = True
        except httptools.HttpParserError as exc:
            raise MalformedAnswerError(f"not an HTTP/1.1 answer ({exc})") from None
        return self.complete

    def closed_by_server(self) -> None:
        """The stream ended: a whole answer if it was already, or if its body had no declared
        length, so runs to the close (RFC 9112, section 6.3). MalformedAnswerError otherwise."""
        self.surplus = True  # nothing more can come on a closed connection
        if self.complete:
            return
        if not self._head_done:
            raise MalformedAnswerError("the connection closed before an answer's head ended")
        if self._delimited or self.status < 200:
            raise MalformedAnswerError("the connection closed in the middle of the answer's body")
        self.complete = True

    def keeps_alive(self) -> bool:
        """Whether the connection can carry another request after this whole answer."""
        return self.complete and not self.surplus and self._keep_alive

    def answer(self) -> Answer:
        return Answer(self.status, self.reason, b"".join(self.chunks))

    # -- httptools' callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            raise _Surplus
        self.reason, self.chunks, self._head_done, self._delimited = "", [], False, False

    def on_status(self, reason: bytes) -> None:
        self.reason += reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
            self._delimited = True

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self._head_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        # An interim answer (100 Continue, 103 Early Hints) is followed by the real one.
        self.complete = self.status >= 200
        # Asked now: llhttp answers it for the message it is in (HTTP/1.0, Connection: close).
        self._keep_alive = self._parser.should_keep_alive()


def connect(origin: Origin, timeout_s: float) -> socket.socket:
    """An open connection to `origin` (TLS for https, with SimCity's one context); every later
    send and receive on it times out after `timeout_s`. OSError when it cannot open."""
    sock = _tcp(origin, timeout_s)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if origin.tls:
            return tls_context().wrap_socket(sock, server_hostname=origin.host)
    except BaseException:
        sock.close()
        raise
    return sock


def _tcp(origin: Origin, timeout_s: float) -> socket.socket:
    if origin.family is None:  # a name: resolved, each address tried
        return socket.create_connection((origin.host, origin.port), timeout=timeout_s)
    # An address: no resolver call (a third of a loopback call's CPU went there).
    sock = socket.socket(origin.family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout_s)
        sock.connect((origin.host, origin.port))
    except BaseException:
        sock.close()
        raise
    return sock


def exchange(sock: socket.socket, origin: Origin, method: str, target: str, *,
             headers: Iterable[tuple[str, str]] = (), body: bytes | None = None) -> Answer:
    """Send one request on `sock` (opened by `connect(origin, ...)`) and read its answer, asking
    the server to close the connection after it. Not for HEAD, whose answer has a length but no
    body. OSError on a network error or timeout, MalformedAnswerError on a bad or cut answer."""
    head = [("Host", origin.host_header), ("Connection", "close"), *headers]
    sock.sendall(encode_request(method, target, head, body))
    reader = AnswerReader()
    while not reader.complete:
        data = sock.recv(_READ_SIZE)
        if not data:
            reader.closed_by_server()
            break
        reader.feed(data)
    return reader.answer()


def get(url: str, timeout_s: float, *, headers: Iterable[tuple[str, str]] = ()) -> Answer:
    """GET `url` on a connection of its own, closed afterwards."""
    origin, target = _split(url)
    sock = connect(origin, timeout_s)
    try:
        return exchange(sock, origin, "GET", target, headers=headers)
    finally:
        sock.close()


@functools.lru_cache(maxsize=64)
def _split(url: str) -> tuple[Origin, str]:
    """A probed URL's origin and target, parsed once: a run probes the same few URLs thousands of times."""
    parts = urlsplit(url)
    return Origin.of(url), (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
