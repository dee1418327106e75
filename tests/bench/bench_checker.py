"""Checker and harness cost figures (issue 15): the checker's throughput on a synthetic legal
100,000-op history, on 1 and 8 slots (CPU time, median of runs): `check()` in one pass, and the
incremental `Checker` fed op by op and asked whether an invariant fired after every read, as a run
does; the harness's own CPU per action of real SC-1 runs on the local stack at 50 and 500
iterations (waits excluded); its peak Python memory at 500 iterations x 8 slots. Targets: >= 100,000 ops/s,
<= 1 ms CPU per action, flat in the run's length."""

from __future__ import annotations

import itertools
import statistics
import time
import tracemalloc
from collections.abc import Callable

from harness.checker import Checker, check
from harness.contract import BookingRow, BookingStatus, SlotSnapshot, SlotState
from harness.history import Action, Details, History, Hop, Op, OpKind, Process
from harness.recorder import Recorder
from harness.runner import RunConfig, run_sc1
from harness.stacks.local import LocalStack
from tests.harness.builders import slot_fixture

SYNTHETIC_OPS = 100_000
REPEATS = 5


def synthetic_history(ops: int, slots: int = 1) -> History:
    """A legal run of about `ops` ops on `slots` slots: C1 wins each slot, C2 is rejected, then
    retries (some answers lost), faults, heals and crashes, each followed by a read of every slot,
    and a settle phase. It PASSes, so every op goes through the checker's whole path."""
    fixtures = tuple(slot_fixture(k) for k in range(1, slots + 1))
    ticks = itertools.count()
    rec = Recorder(fixtures, clock=lambda: next(ticks) / 1000)
    rows: list[dict[Process, BookingRow]] = [{} for _ in fixtures]

    def book(k: int, p: Process, *, answered: bool = True) -> None:
        intent = fixtures[k].intent_of(p)
        retry = p in rows[k]
        invoke = rec.invoke(p, Action.RETRY_BOOK if retry else Action.SEND_BOOK,
                            Details(intent_id=intent.intent_id))
        if p not in rows[k]:
            won = p is Process.C1
            rows[k][p] = BookingRow(intent.intent_id[:-6] + "b" + intent.intent_id[-5:], intent.intent_id,
                                    intent.slot_id, intent.customer_id,
                                    BookingStatus.CONFIRMED if won else BookingStatus.REJECTED)
        booking = rows[k][p]
        status = 409 if booking.status is BookingStatus.REJECTED else (200 if retry else 201)
        body = {"booking": {"id": booking.id, "intent_id": booking.intent_id, "slot_id": booking.slot_id,
                            "customer_id": booking.customer_id, "status": booking.status.value}}
        if status == 409:
            body["error"] = "slot_taken"
        if answered:
            rec.booking_answer(invoke, status=status, body=body, latency_ms=3.0)
        else:
            rec.booking_answer(invoke, status=None, error="timed out")

    def nemesis(action: Action, hop: Hop | None = None) -> None:
        rec.complete(rec.invoke(Process.NEMESIS, action, Details(hop=hop)), OpKind.OK, Details(hop=hop))

    def read() -> Op:
        snapshots = []
        for f, mine in zip(fixtures, rows):
            booked = any(r.status is BookingStatus.CONFIRMED for r in mine.values())
            snapshots.append(SlotSnapshot(f.slot_id, f.vendor_id, SlotState.BOOKED if booked else SlotState.FREE,
                                          tuple(mine[p] for p in (Process.C1, Process.C2) if p in mine)))
        return rec.read_ok(rec.read_invoke(), *snapshots)

    steps: list[Callable[[int], None]] = [
        lambda k: book(k, Process.C1),
        lambda k: book(k, Process.C2),
        lambda k: nemesis(Action.LATENCY, Hop.APP_DB),
        lambda k: book(k, Process.C1, answered=False),
        lambda k: nemesis(Action.HEAL, Hop.APP_DB),
        lambda k: nemesis(Action.RESTART_SIMCITY),
        lambda k: book(k, Process.C2),
    ]
    settle_ops = 4 * slots + 4
    for n in itertools.count():
        if read().index + 1 >= ops - settle_ops:
            break
        steps[n % len(steps)](n // len(steps) % slots)
    settle = rec.invoke(Process.CHECKER, Action.SETTLE)
    for k in range(slots):
        book(k, Process.C1)
        book(k, Process.C2)
    read()
    rec.complete(settle, OpKind.OK)
    return rec.history()


def median_cpu_seconds(work: Callable[[], object], repeats: int = REPEATS) -> float:
    """The median CPU time of `repeats` calls of `work`: the checker is CPU-bound, and CPU time
    stays put when other processes share the cores."""
    samples = []
    for _ in range(repeats):
        started = time.process_time()
        work()
        samples.append(time.process_time() - started)
    return statistics.median(samples)


def judged_as_a_run_does(history: History) -> None:
    """Feed `history` op by op and ask whether an invariant fired after every read's answer, as
    the runner asks after every step (to stop at the first violation), and the verdict at the end."""
    checker = Checker(history.fixtures)
    for op in history.ops:
        checker.observe(op)
        if op.snapshots:
            checker.violated()
    checker.verdict(terminal=True)


def checker_throughput() -> None:
    for slots in (1, 8):
        history = synthetic_history(SYNTHETIC_OPS, slots)
        verdict = check(history)
        assert verdict.passed, verdict.violations  # legal, so judged to its end: no FAIL cuts it short
        batch = median_cpu_seconds(lambda: check(history))
        incremental = median_cpu_seconds(lambda: judged_as_a_run_does(history))
        print(f"checker, synthetic {len(history):,}-op history, {slots} slot(s): check() "
              f"{len(history) / batch:,.0f} ops/s; fed op by op, asked after every read "
              f"{len(history) / incremental:,.0f} ops/s", flush=True)


def harness_cpu_and_memory() -> None:
    with LocalStack({"BOOKING_STRATEGY": "atomic"}) as stack:
        for iterations, slots in ((50, 1), (500, 1), (50, 8), (500, 8)):
            result = run_sc1(stack, RunConfig(seed="sc1-1", iterations=iterations, slots=slots))
            per_action_ms = result.harness_cpu_s / iterations * 1000
            print(f"SC-1 {iterations:>3} iterations x {slots} slot(s): {len(result.history):>5} ops, verdict "
                  f"{result.verdict.valid.value}, harness {per_action_ms:.2f} ms CPU/action (waits excluded)",
                  flush=True)
        # Traced apart: tracemalloc slows every allocation, so it would inflate the CPU figures.
        tracemalloc.start()
        try:
            result = run_sc1(stack, RunConfig(seed="sc1-1", iterations=500, slots=8))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        print(f"SC-1 500 iterations x 8 slots: peak Python memory of the harness {peak / 2**20:.1f} MiB "
              f"(tracemalloc), verdict {result.verdict.valid.value}", flush=True)


def main() -> None:
    checker_throughput()
    harness_cpu_and_memory()


if __name__ == "__main__":
    main()
