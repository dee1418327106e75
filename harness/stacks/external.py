"""A user's own app and REST at given URLs. Faults reach it only through a proxy SimCity puts in
front of the app (`--proxy`); crashes only through the user's `--restart-cmd`."""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from harness.errors import StackStartError, UsageError
from harness.postgres import free_port
from harness.stacks.base import Stack, StackEndpoints, wait_healthy as wait_until_healthy

APP_PROXY = "app"


class ExternalStack(Stack):
    kind = "external"

    def __init__(
        self, target_url: str, rest_url: str, service_key: str, *,
        restart_cmd: str | None = None, proxy: bool = False, health_timeout_s: float = 30.0,
    ) -> None:
        for flag, url in (("--target-url", target_url), ("--rest-url", rest_url)):
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
                raise UsageError(f"{flag} must be an http(s) URL, got {url!r}")
        self.target_url = target_url.rstrip("/")
        self.rest_url = rest_url.rstrip("/")
        self._service_key = service_key
        self.restart_cmd = restart_cmd
        self.proxy = proxy
        self.health_timeout_s = health_timeout_s
        self._exit = ExitStack()
        self._endpoints: StackEndpoints | None = None

    @property
    def endpoints(self) -> StackEndpoints:
        if self._endpoints is None:
            raise StackStartError("the external stack is not started")
        return self._endpoints

    def describe(self) -> str:
        extra = " behind simcity-toxiproxy" if self.proxy else ""
        return f"external (app {self.target_url}{extra}, REST {self.rest_url})"

    @property
    def can_crash(self) -> bool:
        return bool(self.restart_cmd)

    def start(self) -> StackEndpoints:
        wait_until_healthy(f"{self.target_url}/health", timeout_s=self.health_timeout_s, what="target app")
        app_url, proxy_api, names = self.target_url, None, {}
        if self.proxy:
            from toxics.server import toxiproxy_process  # noqa: PLC0415

            target = urlsplit(self.target_url)
            upstream = f"{target.hostname}:{target.port or (443 if target.scheme == 'https' else 80)}"
            listen_port, api_port = free_port(), free_port()
            config = Path(self._exit.enter_context(tempfile.TemporaryDirectory(prefix="simcity-ext-"))) / "proxies.json"
            config.write_text(json.dumps([{"name": APP_PROXY, "listen": f"127.0.0.1:{listen_port}", "upstream": upstream}]))
            self._exit.enter_context(toxiproxy_process(api_port, config=config))
            app_url = urlunsplit((target.scheme, f"127.0.0.1:{listen_port}", target.path, "", ""))
            proxy_api, names = f"http://127.0.0.1:{api_port}", {"client-app": APP_PROXY}
        self._endpoints = StackEndpoints(app_url=app_url, rest_url=self.rest_url, service_key=self._service_key,
                                         proxy_api_url=proxy_api, proxy_names=names)
        return self._endpoints

    def restart_app(self, *, wait_healthy: bool = True) -> float:
        if not self.restart_cmd:
            raise UsageError("the schedule crashes the app: give --restart-cmd to say how (or --profile calm)")
        started = time.monotonic()
        proc = subprocess.run(shlex.split(self.restart_cmd), capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise StackStartError(f"--restart-cmd exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}")
        if wait_healthy:
            wait_until_healthy(f"{self.target_url}/health", timeout_s=self.health_timeout_s, what="target app")
        return time.monotonic() - started

    def close(self) -> None:
        self._exit.close()
        self._endpoints = None
