"""Building a history during a run: the runner's only way to write it.

Indexes increase and times are monotonic offsets from the run's start, so index order IS real-time
order: an op recorded before another happened before it, as far as the harness can know. Every
recording errs on the safe side for the checker: an invoke is recorded before its request is sent,
a completion only once its answer is in the harness's hands, so an interval is never narrower than
the real one. Single-threaded use (one asyncio loop) is assumed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from harness.contract import JSON, SlotSnapshot, classify_booking_answer
from harness.history import Action, Details, Fixture, History, Op, OpKind, Process, outcome_of


class Recorder:
    """`on_record` is handed every op as soon as it is recorded (the runner's incremental checker)."""

    def __init__(self, fixtures: Fixture | tuple[Fixture, ...], *, clock: Callable[[], float] = time.monotonic,
                 on_record: Callable[[Op], None] | None = None) -> None:
        self.fixtures = fixtures if isinstance(fixtures, tuple) else (fixtures,)
        self._clock = clock
        self._start = clock()
        self._ops: list[Op] = []
        self._on_record = on_record

    def _append(self, **fields: Any) -> Op:
        elapsed = self._clock() - self._start
        if not math.isfinite(elapsed):
            raise ValueError("clock returned a non-finite time")
        op = Op(index=len(self._ops), time_s=elapsed, **fields)
        self._ops.append(op)
        if self._on_record is not None:
            self._on_record(op)
        return op

    def invoke(self, process: Process, action: Action, details: Details = Details()) -> Op:
        if action.is_booking and details.intent_id is None:
            # Without it the checker would take the booking this call creates for an unknown one.
            raise ValueError(f"a {action.value} invoke must carry its intent_id")
        return self._append(kind=OpKind.INVOKE, process=process, action=action, details=details)

    def complete(self, invoke: Op, kind: OpKind, details: Details = Details(),
                 snapshots: tuple[SlotSnapshot, ...] = ()) -> Op:
        if invoke.kind is not OpKind.INVOKE:
            raise ValueError(f"op {invoke.index} is not an invoke")
        return self._append(kind=kind, process=invoke.process, action=invoke.action,
                            details=details, invoke_index=invoke.index, snapshots=snapshots)

    def booking_answer(self, invoke: Op, *, status: int | None, body: JSON = None,
                       latency_ms: float | None = None, error: str | None = None,
                       params: tuple[tuple[str, int], ...] = ()) -> Op:
        """Record the answer to a booking invoke, classified per the contract; `params` add to
        the invoke's (e.g. the burst's measured send skew)."""
        answer = classify_booking_answer(status, body)
        details = replace(invoke.details, status=status, body=body, answer=answer,
                          latency_ms=latency_ms, error=error, params=invoke.details.params + params)
        return self.complete(invoke, outcome_of(answer), details)

    def read_invoke(self) -> Op:
        """A snapshot read is about to be sent: call this BEFORE the request goes out."""
        return self.invoke(Process.CHECKER, Action.SNAPSHOT)

    def read_ok(self, invoke: Op, *snapshots: SlotSnapshot) -> Op:
        """The read's answer arrived: call this as soon as it is parsed (a snapshot per slot)."""
        if len(snapshots) != len(self.fixtures):
            raise ValueError(f"a read of {len(snapshots)} slots in a run of {len(self.fixtures)}")
        return self.complete(invoke, OpKind.OK, snapshots=snapshots)

    def read_failed(self, invoke: Op, error: str) -> Op:
        """The read got no usable answer (REST unreachable, malformed): nothing was learnt."""
        return self.complete(invoke, OpKind.INFO, Details(error=error))

    def snapshot(self, snapshot: SlotSnapshot) -> Op:
        """A read whose interval is a point, for hand-built histories and tests: invoke and ok
        back to back. The runner uses `read_invoke` / `read_ok` around the real request."""
        return self.read_ok(self.read_invoke(), snapshot)

    def history(self) -> History:
        return History(self.fixtures, tuple(self._ops))
