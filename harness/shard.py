"""`--shard i/n`: an exact split of the expanded matrix over n machines.

Shard i (1-based, 1 <= i <= n) takes the runs at positions i-1, i-1+n, i-1+2n, ... of the matrix's
fixed expansion order: every run lands in exactly one shard, shard sizes differ by at most one, and
round-robin spreads each seed's profiles over the shards so no shard gets all the slow storms.
A Kubernetes Indexed Job passes `$((JOB_COMPLETION_INDEX + 1))/n`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from harness.errors import UsageError

T = TypeVar("T")
_SHARD_RE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise UsageError(f"--shard wants i/n with 1 <= i <= n, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> "Shard":
        match = _SHARD_RE.fullmatch(text)
        if match is None:
            raise UsageError(f"--shard wants i/n (e.g. 2/4, 1-based), got {text!r}")
        return cls(int(match[1]), int(match[2]))

    def select(self, items: Sequence[T]) -> tuple[T, ...]:
        return tuple(items[self.index - 1::self.count])

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE = Shard(1, 1)
