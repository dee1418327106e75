"""One TLS context for every HTTP client SimCity makes, created once per process.

httpx builds a context for each new client (loading certifi's CA bundle: ~23 ms of CPU), for
http:// URLs too; a health poll or a crash that made a client each time paid that again and again.
The context is httpx's own default (verification on, certifi's bundle), so nothing about what is
verified changes."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
