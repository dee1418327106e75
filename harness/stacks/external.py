"""A user's own app and REST at given URLs. Faults reach it only through SimCity's own proxy
(`--proxy`): in front of the app (hop client-app) and, with `--db-upstream`, between the app and
its database (hop app-db, listening on the fixed `--db-listen` address the app is pointed at);
crashes only through the user's `--restart-cmd`."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from harness.errors import StackStartError, UsageError
from harness.stacks._net import free_port
from harness.stacks._wait import HttpReady
from harness.stacks.reaper import OWNER_ENV
from harness.stacks.base import Stack, StackEndpoints, wait_healthy as wait_until_healthy

APP_PROXY = "app"
DB_PROXY = "app_db"
# Fixed, not a free port: the user points the app's DATABASE_URL here before SimCity starts, and
# every restart of the app must reach its database through the proxy again.
DEFAULT_DB_LISTEN = "127.0.0.1:25432"
# What `--restart-cmd` finds in its environment, so a restart script can rebuild DATABASE_URL.
RESTART_ENV_TARGET_URL = "SIMCITY_TARGET_URL"
RESTART_ENV_DB_PROXY = "SIMCITY_DB_PROXY"


def host_port(flag: str, address: str) -> str:
    """`address` when it is HOST:PORT (`[::1]:5432` for IPv6, a port of 1..65535); else a
    UsageError naming `flag`."""
    parts = urlsplit(f"//{address}")
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = None
    if not parts.hostname or not port or parts.netloc != address or "@" in address:
        raise UsageError(f"{flag} wants HOST:PORT, got {address!r}")
    return address


class ExternalStack(Stack):
    kind = "external"

    def __init__(
        self, target_url: str, rest_url: str, service_key: str, *,
        restart_cmd: str | None = None, proxy: bool = False,
        db_upstream: str | None = None, db_listen: str | None = None, health_timeout_s: float = 30.0,
    ) -> None:
        super().__init__()
        for flag, url in (("--target-url", target_url), ("--rest-url", rest_url)):
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
                raise UsageError(f"{flag} must be an http(s) URL, got {url!r}")
        if db_listen and not db_upstream:
            raise UsageError("--db-listen is where the app-db proxy listens: it needs --db-upstream")
        if db_upstream and not proxy:
            raise UsageError("--db-upstream needs --proxy: the app-db proxy is part of SimCity's proxy")
        self.target_url = target_url.rstrip("/")
        self.rest_url = rest_url.rstrip("/")
        self._service_key = service_key
        self.restart_cmd = restart_cmd
        self.proxy = proxy
        self.db_upstream = host_port("--db-upstream", db_upstream) if db_upstream else None
        self.db_listen = host_port("--db-listen", db_listen or DEFAULT_DB_LISTEN) if db_upstream else None
        self.health_timeout_s = health_timeout_s
        self._exit = ExitStack()

    def describe(self) -> str:
        extra = " behind simcity-toxiproxy" if self.proxy else ""
        if self.db_listen:
            extra += f", its database through {self.db_listen} -> {self.db_upstream}"
        return f"external (app {self.target_url}{extra}, REST {self.rest_url})"

    @property
    def db_proxy_notice(self) -> str | None:
        """The one thing the user must have done before the run, when the app-db hop is proxied."""
        if not self.db_listen:
            return None
        return f"app-db proxy: point your app's database at {self.db_listen} (upstream {self.db_upstream})"

    @property
    def can_crash(self) -> bool:
        return bool(self.restart_cmd)

    def app_health_url(self) -> str:
        return f"{self.target_url}/health"

    def _start(self) -> StackEndpoints:
        app_url, proxy_api, names = self.target_url, None, {}
        if self.proxy:
            app_url, proxy_api, names = self._start_proxy()
        # After the proxy: an app whose database sits behind it cannot be healthy before it listens.
        what = f"target app (its database through {self.db_listen})" if self.db_listen else "target app"
        wait_until_healthy(self.app_health_url(), timeout_s=self.health_timeout_s, what=what)
        return StackEndpoints(app_url=app_url, rest_url=self.rest_url, service_key=self._service_key,
                              proxy_api_url=proxy_api, proxy_names=names)

    def _start_proxy(self) -> tuple[str, str, dict[str, str]]:
        """simcity-toxiproxy with proxy `app` (any free port) in front of the app and, with
        --db-upstream, proxy `app_db` on --db-listen; returns the app URL through the proxy, the
        proxy's API URL and hop -> proxy name. Proxies are made through the API, not a config
        file: the server only logs a config it cannot bind, the API answers with the reason."""
        from toxics import ToxiproxyController  # noqa: PLC0415
        from toxics.control import ToxiproxyAPIError  # noqa: PLC0415
        from toxics.server import toxiproxy_process  # noqa: PLC0415

        api_port = free_port()
        self._exit.enter_context(toxiproxy_process(api_port))
        api_url = f"http://127.0.0.1:{api_port}"
        target = urlsplit(self.target_url)
        upstream = f"{target.hostname}:{target.port or (443 if target.scheme == 'https' else 80)}"
        controller = ToxiproxyController(api_url)
        try:
            app_proxy = controller.create_proxy(APP_PROXY, listen="127.0.0.1:0", upstream=upstream)
            names = {"client-app": APP_PROXY}
            if self.db_listen and self.db_upstream:
                try:
                    controller.create_proxy(DB_PROXY, listen=self.db_listen, upstream=self.db_upstream)
                except ToxiproxyAPIError as exc:
                    raise StackStartError(f"the app-db proxy cannot listen on {self.db_listen} "
                                          f"(--db-listen): {exc.message}") from exc
                names["app-db"] = DB_PROXY
        finally:
            controller.close()
        app_url = urlunsplit((target.scheme, f"127.0.0.1:{app_proxy.listen_port}", target.path, "", ""))
        return app_url, api_url, names

    def restart_app(self, *, wait_healthy: bool = True) -> float:
        if not self.restart_cmd:
            raise UsageError("the schedule crashes the app: give --restart-cmd to say how (or --profile calm)")
        # Without SimCity's owner mark: the app this restarts is the user's, not a leftover of ours.
        env = {**{k: v for k, v in os.environ.items() if k != OWNER_ENV}, RESTART_ENV_TARGET_URL: self.target_url}
        if self.db_listen:
            env[RESTART_ENV_DB_PROXY] = self.db_listen
        started = time.monotonic()
        proc = subprocess.run(shlex.split(self.restart_cmd), capture_output=True, text=True, timeout=120, env=env)
        if proc.returncode != 0:
            raise StackStartError(f"--restart-cmd exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}")
        # Its database cut off, the app cannot be healthy: then an answer of any kind says it serves.
        ready = HttpReady(self.app_health_url(), "target app", any_status=not wait_healthy)
        return self._wait_restarted(ready, self.health_timeout_s, started=started)

    def _close(self) -> None:
        self._exit.close()


@dataclass(frozen=True)
class ExternalTarget:
    """A user's own app as the command line names it: enough to start an ExternalStack for each
    certify job, to replay a run, and to say in a certificate which release was certified."""

    target_url: str
    rest_url: str
    restart_cmd: str | None = None
    proxy: bool = False
    db_upstream: str | None = None
    db_listen: str | None = None
    version: str | None = None  # what the user calls this release candidate
    checkout: Path | None = None  # the app's git checkout; None: the current dir, if it is one

    def stack(self, service_key: str) -> ExternalStack:
        return ExternalStack(self.target_url, self.rest_url, service_key, restart_cmd=self.restart_cmd,
                             proxy=self.proxy, db_upstream=self.db_upstream, db_listen=self.db_listen)

    def flags(self) -> list[str]:
        """The `simcity sc1` flags that attack this target again."""
        flags = ["--target-url", self.target_url, "--rest-url", self.rest_url]
        if self.restart_cmd:
            flags += ["--restart-cmd", self.restart_cmd]
        if self.proxy:
            flags.append("--proxy")
        if self.db_upstream:
            flags += ["--db-upstream", self.db_upstream, "--db-listen", self.db_listen or DEFAULT_DB_LISTEN]
        return flags

    def to_json(self) -> dict[str, object]:
        """What a run's run.json keeps to attack this target again (`simcity replay`)."""
        return {"target_url": self.target_url, "rest_url": self.rest_url, "restart_cmd": self.restart_cmd,
                "proxy": self.proxy, "db_upstream": self.db_upstream, "db_listen": self.db_listen}

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> "ExternalTarget":
        def text(key: str) -> str | None:
            value = obj.get(key)
            return value if isinstance(value, str) and value else None

        target_url, rest_url = text("target_url"), text("rest_url")
        if target_url is None or rest_url is None:
            raise UsageError("run.json names no target_url and rest_url for its external app")
        return cls(target_url, rest_url, restart_cmd=text("restart_cmd"), proxy=obj.get("proxy") is True,
                   db_upstream=text("db_upstream"), db_listen=text("db_listen"))

    def identity(self) -> dict[str, object]:
        """What is certified: the app's address (without credentials), the version the user
        named, and the commit of its checkout."""
        from harness.runinfo import checkout_sha  # noqa: PLC0415 - runinfo sits above the stacks

        parts = urlsplit(self.target_url)
        address = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
        return {"target_url": address, "target_version": self.version,
                "target_git_sha": checkout_sha(self.checkout or Path.cwd())}
