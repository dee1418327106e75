"""What every toxic is: frozen parameters plus how it treats the chunks of one link direction.

A toxic sees each chunk as an async generator step (`pipe`), so it can delay, cut, drop or end the
stream. Per-connection state (toxicity draw, counters, timers) lives in the `Stub` the link hands
it, so one toxic object serves every connection, as in Toxiproxy.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


@dataclass(slots=True)
class Chunk:
    """Bytes read from a socket, stamped with the loop time they arrived (latency counts from it)."""

    data: bytes
    timestamp: float


class EndStream(Exception):
    """Raised by a toxic's `pipe` to close the stream after what it already yielded."""


class Stub(Protocol):
    """The per-link, per-toxic handle a toxic works through."""

    state: Any
    rng: random.Random

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> bool:
        """Sleep; True when cut short because the stream's toxics changed (an interrupt)."""

    def end_stream(self) -> None:
        """Close the stream from a timer: everything after this toxic sees end-of-stream."""

    def call_later(self, seconds: float, callback: Any) -> Any: ...


class Toxic:
    """Base of the toxic parameter dataclasses. Subclasses are frozen dataclasses."""

    type_name: ClassVar[str]
    # JSON attribute name (as in toxics.catalog) -> dataclass field name (with its unit).
    fields: ClassVar[Mapping[str, str]] = {}
    # reset_peer: a connection opened while such a toxic exists closes with RST (SO_LINGER 0).
    sets_linger: ClassVar[bool] = False

    @classmethod
    def from_attributes(cls, values: Mapping[str, int]) -> "Toxic":
        return cls(**{field: values[name] for name, field in cls.fields.items()})

    def attributes(self) -> dict[str, int]:
        return {name: getattr(self, field) for name, field in self.fields.items()}

    def new_state(self) -> Any:
        """Fresh per-link state, kept across updates of the toxic (limit_data's byte count)."""
        return None

    def start(self, stub: Stub) -> None:
        """The toxic became active on a link (added, drawn, or updated)."""

    def stop(self, stub: Stub) -> None:
        """The toxic stopped being active on a link: cancel its timers."""

    def closes_on_removal(self) -> bool:
        """True when removing the toxic closes the links it was active on (timeout)."""
        return False

    async def pipe(self, chunk: Chunk, stub: Stub) -> AsyncIterator[Chunk]:
        yield chunk

    async def at_end(self, stub: Stub) -> None:
        """The stream ended (EOF or closed by an earlier toxic); return to let it close."""
