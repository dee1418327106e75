"""The registry of booking strategies: `atomic` (correct) and the mutants, one file each.

| BOOKING_STRATEGY  | bug                                              | window (MUTANT_WINDOW_MS) | nets off        |
| ----------------- | ------------------------------------------------ | ------------------------- | --------------- |
| atomic            | none: one committed transaction per decision     | -                         | -               |
| racy              | check-then-act: read free, then insert+update    | 0 ms (its own round trips)| one confirmed   |
| flip_on_retry     | replayed loser demotes the holder, confirms      | -                         | -               |
| no_idempotency    | every request inserts a row, replays too         | -                         | intent unique   |
| split_tx          | slot claim and booking insert in 2 transactions  | 50 ms, between the two    | -               |
| ack_before_commit | answers 201, commits later in the background     | 50 ms, answer -> commit   | -               |
| in_memory_lock    | process-local lock + taken cache; fast-path 409  | -                         | one confirmed   |
"""

from __future__ import annotations

from booking_app.strategies.ack_before_commit import AckBeforeCommit
from booking_app.strategies.atomic import Atomic
from booking_app.strategies.base import Strategy
from booking_app.strategies.flip_on_retry import FlipOnRetry
from booking_app.strategies.in_memory_lock import InMemoryLock
from booking_app.strategies.no_idempotency import NoIdempotency
from booking_app.strategies.racy import Racy
from booking_app.strategies.split_tx import SplitTx

# Explicit, not self-registering: the list of what SimCity can be pointed at is readable here.
STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Atomic, Racy, FlipOnRetry, NoIdempotency, SplitTx, AckBeforeCommit, InMemoryLock)
}
MUTANTS: tuple[str, ...] = tuple(name for name in STRATEGIES if name != Atomic.name)


class UnknownStrategy(ValueError):
    pass


def strategy_class(name: str) -> type[Strategy]:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UnknownStrategy(f"unknown BOOKING_STRATEGY {name!r}; choose one of {', '.join(STRATEGIES)}") from None


__all__ = ["MUTANTS", "STRATEGIES", "Strategy", "UnknownStrategy", "strategy_class"]
