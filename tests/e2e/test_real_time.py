"""Reads are intervals: the correct app passes with REST and its database far away.

The setting of a hosted Supabase project (REST 400 ms away, the database 50 ms from the app) on
the real local stack: a booking's answer arrives while a read that the database served before
the commit is still on its way back. Ordering that read at its answer (the point reads SimCity
used before format version 2) fails the correct app with ACK_NOT_HONOURED; ordering it as an
interval, as CONTRACT.md section 3 and Jepsen do, passes it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.checker import Validity, ViolationName, check
from harness.errors import UsageError
from harness.generator import Schedule, Step
from harness.history import Action, History, OpKind
from harness.runner import RunConfig, run_sc1
from harness.stacks.local import LocalStack

STEPS = ("send_book(A)", "send_book(B)", "no_op()")


def as_point_reads(history: History) -> History:
    """The same history with every read's invoke moved to its answer (the old, unsound view)."""
    reads = {op.invoke_index for op in history.ops if op.action is Action.SNAPSHOT and op.kind is not OpKind.INVOKE}
    by_index = {op.index: op for op in history.ops}
    moved = []
    for op in history.ops:
        if op.index in reads:
            continue
        if op.action is Action.SNAPSHOT and op.invoke_index in reads:
            moved.append(replace(by_index[op.invoke_index], time_s=op.time_s))
        moved.append(op)
    renumber = {op.index: new for new, op in enumerate(moved)}
    return History(history.fixtures, tuple(
        replace(op, index=renumber[op.index],
                invoke_index=renumber[op.invoke_index] if op.invoke_index is not None else None)
        for op in moved))


def test_correct_app_passes_with_rest_far_away_and_a_slow_database() -> None:
    schedule = Schedule(tuple(Step.parse(s) for s in STEPS), "far-away", "calm")
    with LocalStack({"BOOKING_STRATEGY": "atomic"}, distance={"rest": 2000, "app-db": 100}) as stack:
        result = run_sc1(stack, RunConfig(seed="far-away", iterations=len(STEPS), profile="calm",
                                          schedule=schedule))
    assert result.verdict.passed, [v.message for v in result.verdict.violations]
    # The situation this test exists for did happen: an ack landed while a read that missed it
    # was in flight, so the point-read view of the very same history is a false FAIL.
    old = check(as_point_reads(result.history))
    assert old.valid is Validity.FAIL
    assert {v.name for v in old.violations} == {ViolationName.ACK_NOT_HONOURED}


@pytest.mark.parametrize("distance", [{"dns": 5}, {"rest": -1}])
def test_bad_distance_is_refused_before_anything_starts(distance: dict[str, int]) -> None:
    with pytest.raises(UsageError, match="distance"):
        LocalStack(distance=distance)
