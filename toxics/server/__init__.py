"""simcity-toxiproxy: a stand-in for the Toxiproxy 2.12.0 server (HTTP API, proxies, toxics)."""

from __future__ import annotations

from toxics.server.api import VERSION
from toxics.server.spawn import toxiproxy_process

__all__ = ["VERSION", "toxiproxy_process"]
