"""The server process: proxies and the HTTP API in one asyncio loop."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

import uvicorn

from toxics.server.api import Api
from toxics.server.collection import ProxyCollection
from toxics.server.errors import ApiError
from toxics.server.jsonio import decode

log = logging.getLogger("toxiproxy")


async def populate_from_file(collection: ProxyCollection, path: Path) -> None:
    """`-config`: errors are logged and the server carries on, as upstream."""
    try:
        body = path.read_bytes()
    except OSError as exc:
        log.error("error reading config file %s: %s", path, exc)
        return
    try:
        proxies = await collection.populate(decode(body))
    except ApiError as exc:
        log.error("failed to populate proxies from file %s: %s", path, exc.message)
        return
    log.info("populated %d proxies from file %s", len(proxies), path)


async def serve(host: str, port: int, config: Path | None, seed: int) -> None:
    collection = ProxyCollection(random.Random(seed))
    if config is not None:
        await populate_from_file(collection, config)
    server = uvicorn.Server(uvicorn.Config(
        Api(collection), host=host, port=port, lifespan="off", access_log=False,
        log_level="warning", server_header=False, timeout_keep_alive=60,
    ))
    log.info("starting Toxiproxy HTTP server on %s:%d (seed %d)", host, port, seed)
    try:
        await server.serve()
    finally:
        collection.stop_all()


def run(host: str, port: int, config: Path | None, seed: int) -> None:
    asyncio.run(serve(host, port, config, seed))
