"""One TLS context for every HTTP client SimCity makes, created once per process, and the
standard-library connections that use it (`http_connection`).

httpx builds a context for each new client (loading certifi's CA bundle: ~23 ms of CPU), for
http:// URLs too; a health poll or a crash that made a client each time paid that again and again.
The context is httpx's own default (verification on, certifi's bundle), so nothing about what is
verified changes."""

from __future__ import annotations

import functools
import http.client
import ssl
from urllib.parse import urlsplit

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def http_connection(url: str, timeout_s: float) -> http.client.HTTPConnection:
    """A standard-library connection to `url`'s host, not opened yet; https with this context."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if parts.scheme == "https":
        return http.client.HTTPSConnection(host, parts.port, timeout=timeout_s, context=tls_context())
    return http.client.HTTPConnection(host, parts.port, timeout=timeout_s)
