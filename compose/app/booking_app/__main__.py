"""`booking-app`: run the reference booking service as WEB_CONCURRENCY/APP_WORKERS processes."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid

import asyncpg

from booking_app import serve
from booking_app.app import BOOT_ID_ENV
from booking_app.config import Settings
from booking_app.db import TRANSIENT_ERRORS
from booking_app.safety_nets import PENDING_NETS_ENV, SafetyNetError, disable_safety_nets
from booking_app.strategies import UnknownStrategy, strategy_class

log = logging.getLogger("booking_app")


async def prepare_database(settings: Settings, attempts: int = 4) -> bool:
    """Set the safety nets the strategy needs, once, before any worker serves; True when done.

    When the database is down (a crash-restart during a partition), the app starts anyway and
    answers 503 until it is back. A mutant that needs nets off must not serve with them up (it
    would silently look correct), so its workers set the nets on first contact before anything
    else (`PENDING_NETS_ENV`).
    """
    needs_nets_off = bool(strategy_class(settings.strategy).safety_nets_off)
    for attempt in range(attempts):
        try:
            conn = await asyncpg.connect(settings.database_url, timeout=settings.db_timeout_s)
        except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
            if not needs_nets_off:
                log.warning("database unreachable at start (%s); serving 503 until it answers", exc)
                return True
            log.warning("database unreachable (%s), attempt %d/%d", exc, attempt + 1, attempts)
            await asyncio.sleep(0.25)
            continue
        try:
            await disable_safety_nets(conn, settings.strategy)
        except asyncpg.PostgresError as exc:  # e.g. lock_timeout behind a long transaction
            raise SafetyNetError(f"could not set the safety nets for {settings.strategy!r}: {exc}") from exc
        finally:
            await conn.close()
        return True
    log.warning("mutant %r: database unreachable, its safety nets are set on first contact", settings.strategy)
    return False


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    try:
        settings = Settings.from_env()
        strategy_class(settings.strategy)
        if not asyncio.run(prepare_database(settings)):
            os.environ[PENDING_NETS_ENV] = "1"  # inherited by the workers
    except (ValueError, UnknownStrategy, SafetyNetError) as exc:
        print(f"booking-app: {exc}", file=sys.stderr)
        return 2
    os.environ[BOOT_ID_ENV] = uuid.uuid4().hex  # new at every start; the workers inherit it
    log.info("booking-app on %s:%d, strategy=%s, workers=%d, e2e=%s",
             settings.host, settings.port, settings.strategy, settings.workers, settings.e2e)
    serve.run(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
