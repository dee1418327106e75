"""The embedded stack: every service a real process on free loopback ports, no Docker needed.

    harness --(proxy `app`)--> booking-app (2+ processes) --(proxy `app_db`)--> PostgreSQL
    harness -----------------> simcity-rest ------------------------------------^  (truth, no faults)

`distance` places REST and the database far away, as a hosted Supabase project is: a second
simcity-toxiproxy (the "WAN", which the nemesis never heals) adds a steady latency per round trip
to harness -> REST (`rest`) and to app -> database (`app-db`, behind the faultable proxy).

Crash = SIGKILL of the app's whole process group and a respawn, as CONTRACT.md section 4 asks.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from harness.auth import mint_key, new_jwt_secret
from harness.errors import StackStartError, UsageError
from harness.postgres import LocalPostgres
from harness.stacks._net import free_port
from harness.process import ManagedProcess, Ready
from harness.stacks.watchdog import WATCHDOG
from harness.stacks.base import Stack, StackEndpoints, check_app_env, wait_healthy
from harness.stacks.reaper import DETACHED, OWNER_ENV, stop_marked
from toxics import ToxiproxyController
from toxics.control import Toxic

if TYPE_CHECKING:
    from booking_app.spawn import ForkedApp

_Process = TypeVar("_Process", bound=ManagedProcess)

APP_PROXY = "app"
DB_PROXY = "app_db"
# The hops `distance` can lengthen: harness -> REST, and app -> database.
DISTANCE_HOPS = ("rest", "app-db")


class LocalStack(Stack):
    """PostgreSQL + simcity-toxiproxy + simcity-rest + booking-app as child processes."""

    kind = "local"

    def __init__(
        self,
        app_env: Mapping[str, str] | None = None,
        *,
        with_app: bool = True,
        root: Path | None = None,
        seed: int | None = None,
        distance: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        unknown = set(distance or {}) - set(DISTANCE_HOPS)
        if unknown:
            raise UsageError(f"distance: unknown hop(s) {', '.join(sorted(unknown))}; known: {', '.join(DISTANCE_HOPS)}")
        if any(ms < 0 for ms in (distance or {}).values()):
            raise UsageError("distance: a latency must be >= 0 ms")
        self.distance = {hop: ms for hop, ms in (distance or {}).items() if ms > 0}
        check_app_env(app_env or {})
        self.app_env = dict(app_env or {})
        self.with_app = with_app
        self.seed = seed
        self._root = root
        self._own_root = root is None
        self._exit = ExitStack()
        self._app: ForkedApp | None = None
        self._processes: list[ManagedProcess] = []
        self._postgres: LocalPostgres | None = None
        self.jwt_secret = new_jwt_secret()

    @property
    def restartable(self) -> bool:
        # A root of the caller's keeps the first start's PostgreSQL data dir; an own one is new each time.
        return self._own_root

    @property
    def root(self) -> Path:
        assert self._root is not None
        return self._root

    def describe(self) -> str:
        strategy = self.app_env.get("BOOKING_STRATEGY", "atomic")
        far = "".join(f", {hop} {ms} ms away" for hop, ms in self.distance.items())
        return f"local (PostgreSQL, simcity-rest, simcity-toxiproxy, booking-app[{strategy}]{far})"

    def _spawn(self, process: _Process) -> _Process:
        self._processes.append(process)
        return self._exit.enter_context(process)

    def _start(self) -> StackEndpoints:
        # Imported here: each service package is only needed once a local stack really starts.
        from booking_app.spawn import app_process  # noqa: PLC0415
        from simcity_rest.spawn import rest_process  # noqa: PLC0415
        from toxics.server import toxiproxy_process  # noqa: PLC0415

        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="simcity-stack-"))
            WATCHDOG.guard_dir(self._root)
            # PostgreSQL runs as an unprivileged user when we are root: it must reach its data dir.
            self._root.chmod(0o711)
        logs = self.root / "logs"
        self._postgres = self._exit.enter_context(LocalPostgres(root=self.root / "pg"))
        pg = self._postgres

        api_port, db_listen, app_listen, app_port, rest_port = (free_port() for _ in range(5))
        rest_url = f"http://127.0.0.1:{rest_port}"
        db_upstream = f"127.0.0.1:{pg.port}"
        if self.distance:
            far = self._far_away({"rest": f"127.0.0.1:{rest_port}", "app-db": db_upstream})
            rest_url = f"http://{far.get('rest', rest_url.removeprefix('http://'))}"
            db_upstream = far.get("app-db", db_upstream)
        proxies = [{"name": DB_PROXY, "listen": f"127.0.0.1:{db_listen}", "upstream": db_upstream}]
        if self.with_app:
            proxies.append({"name": APP_PROXY, "listen": f"127.0.0.1:{app_listen}", "upstream": f"127.0.0.1:{app_port}"})
        config = self.root / "toxiproxy.json"
        config.write_text(json.dumps(proxies))
        self._spawn(toxiproxy_process(api_port, config=config, seed=self.seed, log_dir=self.root / "logs"))

        rest_env = {
            "PGRST_DB_URI": pg.authenticator_dsn,
            "PGRST_DB_SCHEMAS": "public",
            "PGRST_DB_ANON_ROLE": "anon",
            "PGRST_JWT_SECRET": self.jwt_secret,
            "PGRST_SERVER_HOST": "127.0.0.1",
            "PGRST_SERVER_PORT": str(rest_port),
        }
        self._spawn(rest_process(rest_port, rest_env, log_dir=logs))

        # The app's database traffic crosses the `app_db` proxy, so app-db faults reach it.
        database_url = pg.dsn(address=f"127.0.0.1:{db_listen}")
        app_url = f"http://127.0.0.1:{app_listen}"
        if self.with_app:
            env = dict(self.app_env)
            strategy = env.pop("BOOKING_STRATEGY", "atomic")
            self._app = self._spawn(
                app_process(app_port, database_url, strategy=strategy, e2e=True, extra_env=env, log_dir=logs)
            )
            try:
                wait_healthy(f"{app_url}/health", what="app through the proxy")
            except StackStartError as exc:
                self._name_a_dead_database(exc)
                raise
        return StackEndpoints(
            app_url=app_url,
            rest_url=rest_url,
            service_key=mint_key(self.jwt_secret, "service_role"),
            proxy_api_url=f"http://127.0.0.1:{api_port}",
            proxy_names={"client-app": APP_PROXY, "app-db": DB_PROXY} if self.with_app else {"app-db": DB_PROXY},
            database_url=database_url,
        )

    def _far_away(self, upstreams: Mapping[str, str]) -> dict[str, str]:
        """Start the WAN proxy: for each hop of `distance`, a listener whose answers arrive that
        many ms late. Returns hop -> the address to use instead of the upstream."""
        from toxics.server import toxiproxy_process  # noqa: PLC0415

        api_port = free_port()
        listens = {hop: f"127.0.0.1:{free_port()}" for hop in self.distance}
        config = self.root / "wan.json"
        config.write_text(json.dumps([{"name": f"far_{hop.replace('-', '_')}", "listen": listens[hop],
                                       "upstream": upstreams[hop]} for hop in self.distance]))
        self._spawn(toxiproxy_process(api_port, config=config, seed=self.seed, log_dir=self.root / "logs"))
        wan = ToxiproxyController(f"http://127.0.0.1:{api_port}")
        try:  # not `with`: that heals on exit, and these toxics are meant to stay
            for hop, ms in self.distance.items():
                # Downstream: every request/answer exchange takes `ms` longer, i.e. one round trip.
                wan.add_toxic(f"far_{hop.replace('-', '_')}", Toxic("latency", name="distance",
                                                                    attributes={"latency": ms}))
        finally:
            wan.close()
        return listens

    @property
    def watches_crashes(self) -> bool:
        # The kill is SIGKILL of the app's whole process group, and the restart waits until no
        # process of that group lives, then forks a new one.
        return True

    def restart_app(self, *, wait_healthy: bool = True) -> float:
        """With `wait_healthy=False` (its database cut off), until the new app listens on its own
        socket: any answer of its /health would wait on its own database ping first (1 s for the
        reference app), and a crash under such a fault gains nothing from that second."""
        if self._app is None:
            raise StackStartError("this local stack runs no app to restart")
        try:
            took = self._app.restart(ready=Ready.HEALTHY if wait_healthy else Ready.LISTENING)
            self.restart_answer = self._app.ready_answer
            return took
        except StackStartError as exc:
            self._name_a_dead_database(exc)
            raise

    def _name_a_dead_database(self, exc: StackStartError) -> None:
        """An app that cannot get ready because PostgreSQL died is reported as that."""
        if self._postgres is not None and not self._postgres.accepts_connections():
            raise StackStartError(f"PostgreSQL of the local stack is not running (port {self._postgres.port} "
                                  f"refuses connections), so the app cannot get ready: {exc}") from exc

    def app_health_url(self) -> str | None:
        return self._app.health_url if self._app is not None else None

    @property
    def app_direct_url(self) -> str:
        """The app itself, not through the proxy (as a user's own app would be reached)."""
        if self._app is None or self._app.health_url is None:
            raise StackStartError("this local stack runs no app")
        return self._app.health_url.removesuffix("/health")

    def app_log_tail(self, lines: int = 20) -> str:
        return self._app.log_tail(lines) if self._app else ""

    def _close(self) -> None:
        try:
            self._exit.close()
        finally:
            if self._own_root and self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
                WATCHDOG.release_dir(self._root)
                self._root = None

    # `simcity stack up` leaves the stack running after the command exits: these two hand it over.
    def detach(self, state_file: Path) -> None:
        """Stop managing the processes and record how to find them later (`stack down`): the mark
        every one of them carries (the caller set a detached one before `start`) and the root."""
        mark = os.environ.get(OWNER_ENV, "")
        if not mark.startswith(DETACHED):
            raise StackStartError("a stack to detach must be started under a detached mark")
        state_file.write_text(json.dumps({"kind": self.kind, "mark": mark, "root": str(self.root)}))
        if self._app is not None:
            self._app.release()
        self._exit.pop_all()
        self._own_root = False
        WATCHDOG.release_all()  # what is left running now outlives this process on purpose


def stop_detached(state: Mapping[str, object]) -> None:
    """Stop a stack left running by `detach` (see harness.stacks.detached). The state only names
    a mark: what is killed is every process that itself carries that mark, and the only directory
    removed is a SimCity stack root in the temp dir, so a planted or stale file harms nothing."""
    mark = state.get("mark")
    if isinstance(mark, str) and mark.startswith(DETACHED):
        stop_marked(mark)
    root = Path(str(state.get("root", "")))
    if (root.parent == Path(tempfile.gettempdir()) and root.name.startswith("simcity-stack-")
            and root.is_dir() and not root.is_symlink()):
        shutil.rmtree(root, ignore_errors=True)
