"""The toxic behaviours, one per module, keyed by the type names of `toxics.catalog`."""

from __future__ import annotations

from collections.abc import Mapping

from toxics.server.toxics.bandwidth import Bandwidth
from toxics.server.toxics.base import Chunk, EndStream, Stub, Toxic
from toxics.server.toxics.latency import Latency
from toxics.server.toxics.limit_data import LimitData
from toxics.server.toxics.noop import Noop
from toxics.server.toxics.reset_peer import ResetPeer
from toxics.server.toxics.slicer import Slicer
from toxics.server.toxics.slow_close import SlowClose
from toxics.server.toxics.timeout import Timeout

REGISTRY: Mapping[str, type[Toxic]] = {
    cls.type_name: cls
    for cls in (Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData, Noop)
}

__all__ = ["REGISTRY", "Chunk", "EndStream", "Stub", "Toxic"]
