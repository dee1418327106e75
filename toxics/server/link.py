"""One proxied connection: two sockets and a link per direction between them.

A link with no active toxic copies straight from its source socket to its destination inside the
read callback (the hot path). With toxics active, chunks queue up and one task walks each chunk
through the current chain; any change to the chain interrupts sleeping toxics, which then let the
chunk through at once, so buffered data is never dropped unless a toxic drops it by definition.

Backpressure: a source stops being read while its destination's write buffer is full or while its
link's toxics hold more than `QUEUE_HIGH` bytes, so memory per connection stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from toxics.server.toxic_collection import ToxicCollection, ToxicEntry
from toxics.server.toxics import Chunk, EndStream

if TYPE_CHECKING:
    from toxics.server.proxy import Proxy

log = logging.getLogger("toxiproxy.link")

# Big reads: fewer callbacks per byte, which is what bulk throughput in Python is made of.
READ_SIZE = 256 * 1024
# Data held by a link's toxics (e.g. in flight through a latency toxic). Upstream buffers up to
# 1,024 chunks of 32 KiB there; 8 MiB keeps a 100 ms latency toxic near 80 MB/s of bulk.
QUEUE_HIGH = 8 * 1024 * 1024
QUEUE_LOW = 4 * 1024 * 1024
# The kernel takes what it can at once; this much more may wait in a socket's write buffer.
WRITE_HIGH = 256 * 1024
WRITE_LOW = 64 * 1024
_LINGER_ZERO = struct.pack("ii", 1, 0)

# Why a socket is not being read; it is read again once no reason is left.
_DIALING, _DEST_FULL, _QUEUE_FULL = 1, 2, 4


class Side(asyncio.BufferedProtocol):
    """One socket of a connection (the client's or the upstream's).

    Every socket reads into one shared buffer: the loop runs one read callback at a time, and
    each read is passed on (written, or copied into a chunk) before the next one starts.
    """

    _read_buffer = memoryview(bytearray(READ_SIZE))

    def __init__(self, conn: "Connection") -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.reads_into: Link | None = None  # the link this socket is the source of
        self.writes_from: Link | None = None  # the link this socket is the destination of
        self._paused = 0
        self.lost = False
        # Bytes (and an EOF) read before this socket's link exists. pause_reading() in
        # connection_made does not stop the first read on Python before 3.11.4 (Debian bookworm's
        # 3.11.2): a client that speaks first would otherwise lose its opening bytes.
        self.early: list[bytes] = []
        self.early_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        self.conn.side_made(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        link = self.reads_into
        if link is not None:
            link.feed(self._read_buffer[:nbytes])
        else:
            self.early.append(bytes(self._read_buffer[:nbytes]))

    def eof_received(self) -> bool:
        # Keep the socket open for writing: the other direction may still have data for it.
        if self.reads_into is not None:
            self.reads_into.feed_eof()
        else:
            self.early_eof = True
        return True

    def hand_over_early(self) -> None:
        """Pass on what was read before the link existed, in order."""
        assert self.reads_into is not None
        for chunk in self.early:
            self.reads_into.feed(memoryview(chunk))
        self.early.clear()
        if self.early_eof:
            self.reads_into.feed_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.writes_from is not None:
            self.writes_from.dest_lost()
        if self.reads_into is not None:
            self.reads_into.feed_eof()
        self.conn.side_lost(self)

    def pause_writing(self) -> None:
        if self.writes_from is not None:
            self.writes_from.dest_full(True)

    def resume_writing(self) -> None:
        if self.writes_from is not None:
            self.writes_from.dest_full(False)

    def pause(self, reason: int) -> None:
        if not self._paused and self.transport is not None:
            self.transport.pause_reading()
        self._paused |= reason

    def resume(self, reason: int) -> None:
        if not self._paused & reason:
            return
        self._paused &= ~reason
        if not self._paused and self.transport is not None and not self.lost:
            self.transport.resume_reading()

    def set_linger_zero(self) -> None:
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            except OSError:
                pass  # already closed by the peer: nothing left to reset

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class _Stub:
    """A toxic's state on one link; what the toxic sees as its `Stub`."""

    __slots__ = ("link", "entry", "active", "state", "rng")

    def __init__(self, link: "Link", entry: ToxicEntry) -> None:
        self.link = link
        self.entry = entry
        self.rng = link.rng
        self.state = entry.toxic.new_state()
        self.active = False

    def draw(self) -> None:
        """Toxicity decides, per link, whether the toxic acts at all (upstream: rand < toxicity)."""
        was = self.active
        self.active = self.rng.random() < self.entry.toxicity
        if was:
            self.entry.toxic.stop(self)
        if self.active:
            self.entry.toxic.start(self)

    def now(self) -> float:
        return self.link.loop.time()

    def sleep(self, seconds: float) -> Any:
        return self.link.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self.link.loop.call_later(seconds, callback)

    def end_stream(self) -> None:
        self.link.end_at(self.entry)


_EOF = None


class Link:
    """One direction of a connection: source socket -> toxics of `direction` -> destination socket."""

    def __init__(self, conn: "Connection", direction: str, source: Side, dest: Side,
                 toxics: ToxicCollection, rng: random.Random) -> None:
        self.conn = conn
        self.direction = direction
        self.source = source
        self.dest = dest
        self.toxics = toxics
        self.rng = rng
        self.loop = asyncio.get_running_loop()
        self.done = False
        self._ending = False
        self._stubs: dict[ToxicEntry, _Stub] = {}
        self._active = 0
        self._queue: deque[Chunk | None] = deque()
        self._queued = 0
        self._task: asyncio.Task[None] | None = None
        self._sleepers: set[asyncio.Future[bool]] = set()
        self._drained: asyncio.Future[None] | None = None
        self._dest_full = False
        source.reads_into = self
        dest.writes_from = self
        for entry in toxics.chain(direction):
            self._stubs[entry] = _Stub(self, entry)
        for stub in self._stubs.values():
            stub.draw()
        self._count_active()
        toxics.attach(self)

    def linger_wanted(self) -> bool:
        return any(entry.toxic.sets_linger for entry in self._stubs)

    # -- data in --------------------------------------------------------------------------------

    def feed(self, data: memoryview) -> None:
        """Data just read; `data` is only valid during this call (the shared read buffer)."""
        if self.done or self._ending:
            return
        if not self._active and self._task is None:
            # The transport copies whatever the kernel does not take at once.
            self.dest.transport.write(data)  # type: ignore[union-attr]
            return
        self._enqueue(Chunk(bytes(data), self.loop.time()), len(data))

    def feed_eof(self) -> None:
        if self.done or self._ending:
            return
        if not self._active and self._task is None:
            self._finish()
        elif not self._queue or self._queue[-1] is not _EOF:
            self._enqueue(_EOF, 0)

    def _enqueue(self, item: Chunk | None, size: int) -> None:
        self._queue.append(item)
        self._queued += size
        if self._queued >= QUEUE_HIGH:
            self.source.pause(_QUEUE_FULL)
        if self._task is None:
            self._task = self.loop.create_task(self._drain_queue())

    # -- destination ----------------------------------------------------------------------------

    def dest_full(self, full: bool) -> None:
        self._dest_full = full
        if full:
            self.source.pause(_DEST_FULL)
            return
        self.source.resume(_DEST_FULL)
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def dest_lost(self) -> None:
        """The destination socket is gone: nothing more can be delivered this way."""
        self._shutdown()
        self.source.resume(_DEST_FULL | _QUEUE_FULL)

    async def _emit(self, chunk: Chunk) -> None:
        transport = self.dest.transport
        if transport is None or transport.is_closing():
            return
        transport.write(chunk.data)
        while self._dest_full and not transport.is_closing():
            self._drained = self.loop.create_future()
            await self._drained

    # -- the toxic path -------------------------------------------------------------------------

    async def _drain_queue(self) -> None:
        try:
            while self._queue:
                item = self._queue.popleft()
                if item is _EOF:
                    self._ending = True
                    await self._end_through(self.toxics.chain(self.direction))
                    return
                self._queued -= len(item.data)
                if self._queued < QUEUE_LOW:
                    self.source.resume(_QUEUE_FULL)
                chain = self.toxics.chain(self.direction)
                try:
                    await self._through(chain, 0, item)
                except _Ended as ended:
                    self._ending = True
                    self._queue.clear()
                    await self._end_through(chain[ended.position + 1:])
                    return
        except Exception:
            # A bug in a toxic costs this connection, never the server or other connections.
            log.exception("link %s of proxy %s failed", self.direction, self.conn.proxy.name)
            self._finish()
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _through(self, chain: tuple[ToxicEntry, ...], index: int, chunk: Chunk) -> None:
        while index < len(chain):
            stub = self._stubs.get(chain[index])
            if stub is not None and stub.active:
                break
            index += 1
        else:
            await self._emit(chunk)
            return
        try:
            async for piece in stub.entry.toxic.pipe(chunk, stub):
                await self._through(chain, index + 1, piece)
        except EndStream:
            raise _Ended(index) from None

    async def _end_through(self, rest: tuple[ToxicEntry, ...]) -> None:
        """End of stream: each active toxic after the point where it ended may hold the close back."""
        for entry in rest:
            stub = self._stubs.get(entry)
            if stub is not None and stub.active:
                await entry.toxic.at_end(stub)
        self._finish()

    def end_at(self, entry: ToxicEntry, position: int | None = None) -> None:
        """Close the stream at `entry` from outside the data path (a timer, or a removal)."""
        if self.done or self._ending:
            return
        self._ending = True
        chain = self.toxics.chain(self.direction)
        if position is None:
            position = chain.index(entry) + 1 if entry in chain else 0
        if self._task is not None:
            self._task.cancel()
        self._queue.clear()
        self._queued = 0
        self.source.resume(_QUEUE_FULL)
        self._task = self.loop.create_task(self._end_through(chain[position:]))

    def sleep(self, seconds: float) -> "asyncio.Future[bool]":
        """A future that becomes False after `seconds`, or True at the next change of the chain."""
        waiter: asyncio.Future[bool] = self.loop.create_future()
        if seconds <= 0:
            waiter.set_result(False)
            return waiter
        timer = self.loop.call_later(seconds, _resolve, waiter, False)
        self._sleepers.add(waiter)
        waiter.add_done_callback(lambda w: (timer.cancel(), self._sleepers.discard(w)))
        return waiter

    def _interrupt(self) -> None:
        for waiter in list(self._sleepers):
            _resolve(waiter, True)

    # -- chain changes (from the API) -----------------------------------------------------------

    def _count_active(self) -> None:
        self._active = sum(1 for stub in self._stubs.values() if stub.active)

    def _redraw(self) -> None:
        for stub in self._stubs.values():
            stub.draw()
        self._count_active()

    def toxic_added(self, entry: ToxicEntry) -> None:
        if self.done:
            return
        self._stubs[entry] = _Stub(self, entry)
        self._redraw()
        self._interrupt()

    def toxic_updated(self, entry: ToxicEntry) -> None:
        if self.done:
            return
        self._redraw()
        self._interrupt()

    def toxic_removed(self, entry: ToxicEntry, position: int) -> None:
        stub = self._stubs.pop(entry, None)
        if self.done or stub is None:
            return
        if stub.active:
            entry.toxic.stop(stub)
        self._count_active()
        self._interrupt()
        if stub.active and entry.toxic.closes_on_removal():
            self.end_at(entry, position)

    # -- the end --------------------------------------------------------------------------------

    def _finish(self) -> None:
        """The stream is over: close the destination (upstream closes the whole socket)."""
        self._shutdown()
        self.dest.close()

    def _shutdown(self) -> None:
        if self.done:
            return
        self.done = True
        self.toxics.detach(self)
        for stub in self._stubs.values():
            if stub.active:
                stub.entry.toxic.stop(stub)
        self._interrupt()
        self._queue.clear()
        self._queued = 0
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            self._task = None
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)


class _Ended(Exception):
    def __init__(self, position: int) -> None:
        self.position = position


def _resolve(waiter: "asyncio.Future[bool]", value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


class Connection:
    """A client accepted by a proxy, its upstream socket, and the two links between them."""

    def __init__(self, proxy: "Proxy") -> None:
        self.proxy = proxy
        self.client = Side(self)
        self.upstream: Side | None = None
        self.links: list[Link] = []
        self._dial: asyncio.Task[None] | None = None
        self._lost = 0
        self.closed = False

    def side_made(self, side: Side) -> None:
        if side is not self.client:
            self._upstream_made()
            return
        side.pause(_DIALING)
        self.proxy.connections.add(self)
        self._dial = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        host, port = self.proxy.upstream_address()
        try:
            loop = asyncio.get_running_loop()
            await loop.create_connection(self._upstream_side, host, port)
        except (OSError, ValueError, UnicodeError):
            # Upstream unreachable: the client was accepted, and now sees the connection close.
            self.proxy.log(f"unable to open connection to upstream {self.proxy.upstream}")
            self.client.close()
            self._forget()

    def _upstream_side(self) -> Side:
        self.upstream = Side(self)
        return self.upstream

    def side_lost(self, side: Side) -> None:
        self._lost += 1
        if side is self.client and self.upstream is None:
            if self._dial is not None:
                self._dial.cancel()
            self._forget()
        elif self._lost >= 2:
            self._forget()

    def _upstream_made(self) -> None:
        assert self.upstream is not None
        if self.client.lost or self.closed:
            self.upstream.abort()
            return
        toxics, rng = self.proxy.toxics, self.proxy.rng
        self.links = [
            Link(self, "upstream", self.client, self.upstream, toxics, rng),
            Link(self, "downstream", self.upstream, self.client, toxics, rng),
        ]
        if any(link.linger_wanted() for link in self.links):
            self.client.set_linger_zero()
            self.upstream.set_linger_zero()
        self.client.hand_over_early()
        self.client.resume(_DIALING)

    def abort(self) -> None:
        """Drop the connection now (proxy disabled, deleted, or its upstream changed)."""
        self.closed = True
        if self._dial is not None:
            self._dial.cancel()
        for link in self.links:
            link.dest_lost()
        self.client.abort()
        if self.upstream is not None:
            self.upstream.abort()
        self._forget()

    def _forget(self) -> None:
        for link in self.links:
            link.dest_lost()
        self.proxy.connections.discard(self)
