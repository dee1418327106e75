"""noop: passes data through untouched."""

from __future__ import annotations

from dataclasses import dataclass

from toxics.server.toxics.base import Toxic


@dataclass(frozen=True)
class Noop(Toxic):
    type_name = "noop"
