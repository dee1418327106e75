"""Reads are intervals: the correct app passes with REST and its database far away, and a far REST
does not thin out the reads (they overlap), so a mutant's window is still seen.

The setting of a hosted Supabase project (REST 400 ms away, the database 50 ms from the app) on
the real local stack: a booking's answer arrives while a read that the database served before
the commit is still on its way back. Ordering that read at its answer (the point reads SimCity
used before format version 2) fails the correct app with ACK_NOT_HONOURED; ordering it as an
interval, as CONTRACT.md section 3 and Jepsen do, passes it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.checker import Validity, ViolationName, check
from harness.expectations import EXPECTED_CATCH
from harness.errors import UsageError
from harness.generator import Schedule, Step
from harness.history import Action, History, OpKind
from harness.runner import RunConfig, run_sc1
from harness.stacks.local import LocalStack

STEPS = ("send_book(A)", "send_book(B)", "no_op()")
# A hosted Supabase project: REST 100 ms away, the database 30 ms from the app.
HOSTED = {"rest": 100, "app-db": 30}


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


def read_intervals(history: History) -> list[tuple[float, float]]:
    """(sent, answered) seconds of every read that was answered, by the time it was sent."""
    sent = {op.index: op.time_s for op in history.ops if op.action is Action.SNAPSHOT and op.kind is OpKind.INVOKE}
    return sorted((sent[op.invoke_index], op.time_s) for op in history.ops
                  if op.action is Action.SNAPSHOT and op.kind is OpKind.OK and op.invoke_index in sent)


def test_reads_go_one_pause_apart_with_rest_far_away() -> None:
    """While a step waits for its read (a REST round trip: 100 ms more), another read leaves every
    step's pause (30 ms), so reads look at the slots one pause apart, several in flight at once."""
    steps = tuple(["no_op()"] * 6)
    with LocalStack({"BOOKING_STRATEGY": "atomic"}, distance={"rest": 100}) as stack:
        result = run_sc1(stack, RunConfig(seed="far-pace", iterations=len(steps), profile="calm",
                                          schedule=Schedule(tuple(Step.parse(s) for s in steps), "far-pace", "calm")))
    assert result.verdict.passed, result.verdict
    reads = read_intervals(result.history)
    assert len(reads) > 2 * len(steps)  # a read after each step, and more while it travelled
    gaps = sorted(b[0] - a[0] for a, b in zip(reads, reads[1:]))
    assert gaps[len(gaps) // 2] < 0.08, gaps  # each took > 100 ms
    assert any(later[0] < earlier[1] for earlier, later in zip(reads, reads[1:]))  # they overlapped


def test_a_mutant_window_between_two_far_reads_is_caught() -> None:
    """split_tx leaves the slot booked with no booking for 50 ms (its vendor call between two
    transactions), starting some 60 ms after the request with the database 30 ms away: after the
    first step's read was sent, and long before the next one when only one read per step was sent
    (REST's round trip apart). Reads one pause apart land in it. (With the database 15 ms away, split_tx passed
    5 of 8 seeds of the detection bench when reads were waited for.)"""
    steps = ("send_book(A)", *["no_op()"] * 8)
    with LocalStack({"BOOKING_STRATEGY": "split_tx"}, distance=HOSTED) as stack:
        result = run_sc1(stack, RunConfig(seed="far-window", iterations=len(steps), profile="calm",
                                          schedule=Schedule(tuple(Step.parse(s) for s in steps), "far-window", "calm")))
    assert result.verdict.failed, result.verdict
    assert result.verdict.primary is not None and result.verdict.primary.name in EXPECTED_CATCH["split_tx"]


@pytest.mark.parametrize("distance", [{"dns": 5}, {"rest": -1}])
def test_bad_distance_is_refused_before_anything_starts(distance: dict[str, int]) -> None:
    with pytest.raises(UsageError, match="distance"):
        LocalStack(distance=distance)
