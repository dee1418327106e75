"""`booking-app`: run the reference booking service as WEB_CONCURRENCY/APP_WORKERS processes.

The master touches no database: it listens at once, and each worker sets the schema's safety nets
on its first database contact (booking_app.safety_nets.NetsGate)."""

from __future__ import annotations

import logging
import os
import sys
import uuid

from booking_app import serve
from booking_app.app import BOOT_ID_ENV
from booking_app.config import Settings
from booking_app.strategies import UnknownStrategy, strategy_class

log = logging.getLogger("booking_app")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    try:
        settings = Settings.from_env()
        strategy_class(settings.strategy)
    except (ValueError, UnknownStrategy) as exc:
        print(f"booking-app: {exc}", file=sys.stderr)
        return 2
    os.environ[BOOT_ID_ENV] = uuid.uuid4().hex  # new at every start; the workers inherit it
    log.info("booking-app on %s:%d, strategy=%s, workers=%d, e2e=%s",
             settings.host, settings.port, settings.strategy, settings.workers, settings.e2e)
    serve.run(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
