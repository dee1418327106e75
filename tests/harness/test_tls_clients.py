"""SimCity's own HTTP clients over TLS against a real TLS server on loopback: a certificate is
verified (an unknown one is refused), and with a trusted one the blocking client (probes, the
Toxiproxy API) and the asyncio one (bookings, kept-alive snapshot reads) speak HTTP through it.

The certificates come from trustme (a throwaway CA). SimCity's one TLS context trusts certifi's
bundle only, so the tests that need a trusted server point the clients at a context that also
trusts that CA (monkeypatched: the process-wide context is never changed)."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest
import trustme

from harness import client, http1
from harness.http1 import Origin, encode_request
from tests.loopback import QuietHandler

BODY = b'{"status": "ok"}'


class Handler(QuietHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a REST server does
    connections = 0

    def setup(self) -> None:  # once per connection
        type(self).connections += 1
        super().setup()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_url(ca: trustme.CA) -> Iterator[str]:
    Handler.connections = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def trusting(ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    for module in (http1, client):
        monkeypatch.setattr(module, "tls_context", lambda: context)


def test_a_certificate_nobody_vouches_for_is_refused(https_url: str) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        http1.get(https_url + "/health", 5)


@pytest.mark.usefixtures("trusting")
def test_the_blocking_client_speaks_http_over_tls(https_url: str) -> None:
    assert http1.get(https_url + "/health", 5) == http1.Answer(200, "OK", BODY)
    # By name too: the certificate is checked against the name asked for.
    assert http1.get(https_url.replace("127.0.0.1", "localhost") + "/health", 5).body == BODY


@pytest.mark.usefixtures("trusting")
def test_the_asyncio_client_speaks_http_over_tls_and_keeps_the_connection(https_url: str) -> None:
    async def scenario() -> None:
        origin = Origin.of(https_url)
        request = encode_request("GET", "/health", [("Host", origin.host_header), ("Connection", "close")])
        assert await client.exchange(origin, request) == (200, BODY)
        kept = client.KeptAliveConnections(https_url, [])
        try:
            assert [await kept.get("/slots") for _ in range(3)] == [(200, BODY)] * 3
        finally:
            await kept.aclose()

    asyncio.run(scenario())
    assert Handler.connections == 2  # the exchange's own, and one TLS connection for the three reads
