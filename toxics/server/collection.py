"""All proxies of the server by name, and the operations of the API on them.

Operations run one at a time (an asyncio lock), like upstream's collection mutex, so concurrent
API calls never see a proxy half started.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from toxics.server import errors
from toxics.server.jsonio import fields, go_type, typed
from toxics.server.proxy import Proxy


class _Spec:
    """A proxy as an API body gives it."""

    def __init__(self, body: Any, target: str, where: str = "") -> None:
        given = fields(body, target)
        self.name = typed(given, "name", str, "Proxy") or ""
        self.listen = typed(given, "listen", str, "Proxy") or ""
        self.upstream = typed(given, "upstream", str, "Proxy") or ""
        enabled = typed(given, "enabled", bool, "Proxy")
        self.enabled = True if enabled is None else enabled
        if not self.name:
            raise errors.MISSING_FIELD.wrap("name" + where)
        if not self.upstream:
            raise errors.MISSING_FIELD.wrap("upstream" + where)


class ProxyCollection:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise errors.PROXY_NOT_FOUND
        return proxy

    async def create(self, body: Any) -> Proxy:
        spec = _Spec(body, "toxiproxy.Proxy")
        async with self.lock:
            if spec.name in self.proxies:
                raise errors.PROXY_ALREADY_EXISTS
            proxy = Proxy(spec.name, spec.listen, spec.upstream, self.rng)
            if spec.enabled:
                await proxy.start()
            self.proxies[spec.name] = proxy
            return proxy

    async def update(self, name: str, body: Any) -> Proxy:
        async with self.lock:
            proxy = self.get(name)
            given = fields(body, "toxiproxy.Proxy")
            listen = typed(given, "listen", str, "Proxy")
            upstream = typed(given, "upstream", str, "Proxy")
            enabled = typed(given, "enabled", bool, "Proxy")
            await proxy.update(
                proxy.listen if listen is None else listen,
                proxy.upstream if upstream is None else upstream,
                proxy.enabled if enabled is None else enabled,
            )
            return proxy

    async def remove(self, name: str) -> None:
        async with self.lock:
            self.get(name).stop()
            del self.proxies[name]

    async def populate(self, body: Any) -> list[Proxy]:
        """Create or replace every proxy of a list; an identical one (same listen and upstream) stays.

        The whole list is checked before anything changes. `listen` is compared with the bound
        address, so a `:0` listen never matches and is always rebound on a new port.
        """
        if not isinstance(body, list):
            raise errors.BAD_REQUEST_BODY.wrap(
                f"json: cannot unmarshal {go_type(body)} into Go value of type []toxiproxy.Proxy"
            )
        specs = [_Spec(item, "toxiproxy.Proxy", f" at proxy {i + 1}") for i, item in enumerate(body)]
        result: list[Proxy] = []
        async with self.lock:
            for spec in specs:
                existing = self.proxies.get(spec.name)
                if existing is not None:
                    same = existing.listen == spec.listen and existing.upstream == spec.upstream
                    if same and not spec.listen.endswith(":0"):
                        result.append(existing)
                        continue
                    existing.stop()
                    del self.proxies[spec.name]
                proxy = Proxy(spec.name, spec.listen, spec.upstream, self.rng)
                if spec.enabled:
                    await proxy.start()
                self.proxies[spec.name] = proxy
                result.append(proxy)
        return result

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        async with self.lock:
            for proxy in self.proxies.values():
                await proxy.start()
                proxy.toxics.reset()

    async def toxic_add(self, name: str, body: Any) -> Any:
        async with self.lock:
            return self.get(name).toxics.add(body)

    async def toxic_update(self, proxy: str, toxic: str, body: Any) -> Any:
        async with self.lock:
            return self.get(proxy).toxics.update(toxic, body)

    async def toxic_remove(self, proxy: str, toxic: str) -> None:
        async with self.lock:
            self.get(proxy).toxics.remove(toxic)

    def stop_all(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
