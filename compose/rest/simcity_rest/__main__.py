"""`simcity-rest`: serve PostgREST's API from the PGRST_* environment until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable

import uvicorn

from simcity_rest.app import RestApp
from simcity_rest.config import Config
from simcity_rest.errors import RestError

log = logging.getLogger("simcity_rest")


async def serve(config: Config) -> None:
    app = RestApp(config)
    # The schema cache is loaded BEFORE the socket is bound: an open port means ready to answer.
    await app.db.start()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, app.db.request_reload)
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.server_host, port=config.server_port, lifespan="off",
        access_log=False, log_level="warning", server_header=False, date_header=False,
        # Long `in.(...)` lists make long request lines: allow what Warp (PostgREST's server) allows.
        h11_max_incomplete_event_size=1024 * 1024,
    ))
    try:
        await server.serve()
    finally:
        await app.db.close()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s simcity-rest %(levelname)s %(message)s")
    try:
        config = Config.from_env()
    except (RestError, ValueError) as exc:
        print(f"simcity-rest: bad configuration: {exc}", file=sys.stderr)
        return 2
    log.info("listening on %s:%d, schemas %s", config.server_host, config.server_port, ",".join(config.db_schemas))
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(config))
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (as with uvicorn[standard]): it halves the event loop's per-request cost."""
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up, not a dependency
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    raise SystemExit(main())
