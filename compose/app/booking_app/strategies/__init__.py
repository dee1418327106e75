"""The registry of booking strategies: `atomic` (correct) and the mutants, one file each."""

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
