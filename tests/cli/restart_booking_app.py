"""A user's `--restart-cmd`, as a restart script of their own would be: crash the booking app
(SIGKILL of its process group) and start it again, its DATABASE_URL built from $SIMCITY_DB_PROXY
(the app-db proxy SimCity passes in), so the new app reaches its database through the proxy too.
$BOOKING_STRATEGY picks the build (default atomic; e.g. racy for a broken release candidate).

    python restart_booking_app.py PIDFILE PORT

Also the first start (no PIDFILE yet). Bounded: the old app's port is free within 10 s, or exit 1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from booking_app.spawn import app_env

PORT_FREE_TIMEOUT_S = 10.0


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def main(pidfile: Path, port: int) -> int:
    if pidfile.exists():
        try:
            os.killpg(int(pidfile.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass
        # The new app binds the same port: wait until the killed one no longer holds it.
        deadline = time.monotonic() + PORT_FREE_TIMEOUT_S
        while port_accepts(port):
            if time.monotonic() > deadline:
                print(f"the killed app still holds port {port}", file=sys.stderr)
                return 1
            time.sleep(0.02)
    database_url = f"postgresql://postgres@{os.environ['SIMCITY_DB_PROXY']}/postgres"
    strategy = os.environ.get("BOOKING_STRATEGY", "atomic")  # the user's build: correct, or a broken one
    log = open(pidfile.with_suffix(".log"), "ab")  # noqa: SIM115 - handed to the app, closed below
    try:
        app = subprocess.Popen([sys.executable, "-m", "booking_app"], env={**os.environ, **app_env(port, database_url, strategy)},
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    finally:
        log.close()
    pidfile.write_text(str(app.pid))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]), int(sys.argv[2])))
