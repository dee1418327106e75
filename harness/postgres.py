"""A throwaway PostgreSQL cluster on a free loopback port, with `compose/db` applied.

Used by the tests and by the embedded (`local`) stack. It runs a real server: Debian's
postgresql binaries when present, else the ones bundled in the `pgserver` wheel.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import secrets
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from harness.errors import InfrastructureError
from harness.stacks._net import free_port
from harness.stacks.watchdog import WATCHDOG

DB_DIR = Path(__file__).resolve().parent.parent / "compose" / "db"
SUPERUSER = "postgres"
AUTHENTICATOR_PASSWORD_ENV = "SIMCITY_AUTHENTICATOR_PASSWORD"


def find_pg_bin() -> Path:
    """The directory holding initdb/pg_ctl/psql, preferring Debian's newest server."""
    override = os.environ.get("SIMCITY_PG_BIN")
    candidates = [override] if override else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    # Found, not imported: importing pgserver sets up a lock dir under XDG_RUNTIME_DIR (with a
    # warning where there is none), and only its binaries are wanted.
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin:
        candidates.append(str(Path(spec.origin).parent / "pginstall" / "bin"))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "psql").exists():
            return Path(candidate)
    raise InfrastructureError("no PostgreSQL server binaries found (install postgresql-15 or pgserver)")


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root: drop to the `postgres` (or `nobody`) user when root."""
    if os.geteuid() != 0:
        return None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
            return user
        except KeyError:
            continue
    raise InfrastructureError("running as root and no unprivileged user to run PostgreSQL as")


@dataclass
class LocalPostgres:
    """A PostgreSQL cluster in a temp dir; a context manager that removes everything on exit."""

    port: int = 0
    apply_schema: bool = True
    bin_dir: Path = field(default_factory=find_pg_bin)
    root: Path | None = None
    # Fresh secrets per cluster, and password authentication on every connection: any process on
    # the machine could otherwise connect as superuser and rewrite the truth SimCity reads.
    superuser_password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    authenticator_password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self._user = _run_as()
        self._owned_root = self.root is None
        self._postmaster: int | None = None
        self._starting = False

    @property
    def run_as(self) -> str | None:
        """The unprivileged user the server runs as when SimCity runs as root."""
        return self._user

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def dsn(self, user: str = SUPERUSER, password: str | None = None, database: str = "postgres",
            address: str | None = None) -> str:
        """A connection URL; the superuser's password by default, `address` (host:port) instead
        of the server's own (e.g. a proxy in front of it)."""
        if password is None and user == SUPERUSER:
            password = self.superuser_password
        auth = f"{user}:{quote(password, safe='')}@" if password else f"{user}@"
        return f"postgresql://{auth}{address or f'127.0.0.1:{self.port}'}/{database}"

    @property
    def superuser_dsn(self) -> str:
        return self.dsn()

    @property
    def authenticator_dsn(self) -> str:
        return self.dsn("authenticator", self.authenticator_password)

    def _cmd(self, *args: str) -> list[str]:
        return (["runuser", "-u", self._user, "--"] if self._user else []) + list(args)

    def _check(self, *args: str, what: str) -> None:
        # In a process group of its own, killed whole if SimCity is stopped meanwhile: killing
        # runuser alone would leave initdb writing into a data dir that is being removed.
        proc = subprocess.Popen(self._cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=120)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        if proc.returncode != 0:
            tail = (err or out).strip().splitlines()[-3:]
            raise InfrastructureError(f"postgres: {what} failed: {' / '.join(tail)}")

    def start(self) -> "LocalPostgres":
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="simcity-pg-"))
            WATCHDOG.guard_dir(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        if self._user:
            shutil.chown(self.root, self._user)
        if not (self.data_dir / "PG_VERSION").exists():
            pwfile = self.root / "superuser.pw"
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(self.superuser_password + "\n")
            if self._user:
                shutil.chown(pwfile, self._user)
            try:
                self._check(
                    str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                    "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8", "--locale=C",
                    what="initdb",
                )
            finally:
                pwfile.unlink(missing_ok=True)
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c shared_buffers=64MB"
        )
        self._starting = True  # a stop from here on may find a server still writing its pid file
        self._check(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-o", options,
            "-l", str(self.root / "postgres.log"), "-w", "-t", "60", "start", what="start",
        )
        self._starting = False
        # The postmaster leads a session of its own (pg_ctl daemonised it): the watchdog stops it
        # should SimCity die without `close()`.
        if self._postmaster is not None:  # a server of an earlier start of this cluster
            WATCHDOG.release_group(self._postmaster)
        self._postmaster = self._postmaster_pid()
        if self._postmaster is not None:
            WATCHDOG.guard_group(self._postmaster)
        if self.apply_schema:
            self.apply(DB_DIR)
        return self

    def accepts_connections(self) -> bool:
        """The server listens on its port (it may have died under the stack)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def psql(self, *args: str, sql: str | None = None) -> str:
        """Run psql as the superuser; raise with the server's message on error."""
        # The password travels in the environment and SQL on stdin: a command line is public.
        cmd = [str(self.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
               "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, input=sql,
                              env={**os.environ, "PGPASSWORD": self.superuser_password})
        if proc.returncode != 0:
            raise InfrastructureError(f"psql failed: {proc.stderr.strip().splitlines()[-1:]}")
        return proc.stdout

    def apply(self, directory: Path) -> None:
        """Apply every `*.sql` file of a directory in name order (they are idempotent)."""
        for script in sorted(directory.glob("*.sql")):
            self.psql("-f", str(script))
        # Password auth for the login role PostgREST uses; set here, never committed in SQL.
        self.psql(sql=f"ALTER ROLE authenticator PASSWORD '{self.authenticator_password}'")

    def stop(self, mode: str = "fast") -> None:
        if self.root is None:
            return
        if self._starting:
            # Stopped while `pg_ctl start` ran: the postmaster (its own session, so not killed with
            # pg_ctl) may be up in a moment; wait for its pid file rather than leave it running.
            deadline = time.monotonic() + 5.0
            while not (self.data_dir / "postmaster.pid").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            self._starting = False
        if not (self.data_dir / "postmaster.pid").exists():
            return
        subprocess.run(
            self._cmd(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"),
            capture_output=True, timeout=60,
        )

    def _postmaster_pid(self) -> int | None:
        """The server's pid: the first line of its postmaster.pid."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        self.stop("immediate")
        if self._postmaster is not None:
            WATCHDOG.release_group(self._postmaster)
            self._postmaster = None
        if self._owned_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            WATCHDOG.release_dir(self.root)
            self.root = None

    def __enter__(self) -> "LocalPostgres":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

